"""Device and precision selection on this CPU-only machine."""

from __future__ import annotations

import pytest
import torch

from text2seg_widgets.errors import InputError
from text2seg_widgets.models.device import autocast, resolve_device, resolve_dtype


def test_auto_is_cpu_here():
    assert not torch.cuda.is_available(), "these tests describe the CPU-only CI machine"
    assert resolve_device("auto") == torch.device("cpu")
    assert resolve_device(None) == torch.device("cpu")
    assert resolve_dtype("auto", torch.device("cpu")) is None
    assert resolve_dtype("bf16", torch.device("cpu")) is None


@pytest.mark.parametrize("device, message", [
    ("cuda", "'cuda' was requested but this machine has no CUDA GPU"),
    ("cuda:7", "'cuda:7' was requested but this machine has no CUDA GPU"),
    ("tpu", "unknown device 'tpu'; use auto, cpu, cuda, cuda:N"),
    ("meta", "'meta' is not supported"),
])
def test_a_device_this_machine_lacks_is_a_clear_error(device, message):
    with pytest.raises(InputError, match=message):
        resolve_device(device)


@pytest.mark.parametrize("device", ["cuda", "cuda:7", "tpu"])
def test_cli_device_errors_are_one_line_not_a_traceback(device, tmp_path, rs_samples):
    from click.testing import CliRunner

    from text2seg_widgets.cli import main

    image = sorted((rs_samples / "potsdam" / "images").glob("*.png"))[0]
    result = CliRunner().invoke(main, ["segment", str(image), "--classes", "building", "--models",
                                       "tiny", "--device", device, "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and result.output.startswith("Error: "), result.output
    assert "Traceback" not in result.output and device in result.output


def test_autocast_on_cpu_is_plain_inference():
    with autocast(torch.device("cpu"), None):
        x = torch.ones(2, requires_grad=True) * 2
    assert x.dtype == torch.float32 and not x.requires_grad


@pytest.mark.parametrize("env, message", [
    ({"TEXT2SEG_EMBED_CACHE_GB": "abc"}, "TEXT2SEG_EMBED_CACHE_GB='abc' is not a number"),
    ({"TEXT2SEG_EMBED_CACHE": "{file}", "TEXT2SEG_EMBED_CACHE_GB": "1"}, "is a file, not a folder"),
    ({"TEXT2SEG_EMBED_CACHE": "{file}/sub", "TEXT2SEG_EMBED_CACHE_GB": "1"}, "is not writable"),
])
def test_bad_cache_settings_are_one_line_errors(env, message, tmp_path, rs_samples, monkeypatch):
    from click.testing import CliRunner

    from text2seg_widgets.cli import main

    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    for key, value in env.items():
        monkeypatch.setenv(key, value.format(file=afile))
    image = sorted((rs_samples / "potsdam" / "images").glob("*.png"))[0]
    for args in (["segment", str(image), "--out", str(tmp_path / "o")],
                 ["pseudo-label", str(tmp_path / "p"), str(image), "--no-progress"]):
        result = CliRunner().invoke(main, [*args, "--classes", "building", "--models", "tiny"])
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "p").exists()
