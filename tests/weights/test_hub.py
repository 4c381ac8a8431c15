"""Hub sources: huggingface_hub pointed at a local fake hub (HF_ENDPOINT) on 127.0.0.1."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from tests.weights.fake_server import FakeServer, add_hub_repo
from text2seg_widgets.errors import ChecksumError, MissingWeightsError
from text2seg_widgets.models import weights
from text2seg_widgets.models.download import DownloadError
from text2seg_widgets.models.weights import HubSource, WeightSpec

REV = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture
def hub(server: FakeServer, monkeypatch: pytest.MonkeyPatch) -> FakeServer:
    """The fake hub; tests/conftest.py sets HF_HUB_OFFLINE=1 before huggingface_hub is imported,
    which freezes it into huggingface_hub.constants, so it is switched off here explicitly."""
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", server.root)
    return server


def test_single_file_hub_spec(hub: FakeServer, isolated: Path) -> None:
    data = bytes(range(256)) * 1000
    add_hub_repo(hub, "acme/rs-clip", REV, {"ckpt/rs.pt": data, "other.pt": b"not wanted"})
    weights.register(WeightSpec("rs-clip", "clip", "ViT-B-32", "file",
                                HubSource("acme/rs-clip", REV, ("ckpt/rs.pt",))))
    path = weights.fetch("rs-clip", progress=False)
    assert path == isolated / "rs-clip" / "ckpt" / "rs.pt" and path.read_bytes() == data
    assert not (isolated / "rs-clip" / "other.pt").exists()
    assert len(hub.gets(f"/acme/rs-clip/resolve/{REV}/ckpt/rs.pt")) == 1
    assert {s.path.split("/resolve/")[0] for s in hub.state.seen} == {"/acme/rs-clip"}
    assert weights.local_path("rs-clip") == path


def test_folder_hub_spec_snapshot_with_patterns(hub: FakeServer, isolated: Path) -> None:
    files = {"config.json": b'{"model_type": "grounding-dino"}', "preprocessor_config.json": b"{}",
             "model.safetensors": b"\x01" * 4096, "pytorch_model.bin": b"\x02" * 4096, "README.md": b"hi"}
    add_hub_repo(hub, "acme/gd", REV, files)
    weights.register(WeightSpec("gd", "grounding-dino", "", "folder",
                                HubSource("acme/gd", REV, ("*.json", "*.safetensors"),
                                          ("config.json", "model.safetensors"))))
    assert not weights.is_cached("gd")
    path = weights.fetch("gd", progress=False)
    assert path == isolated / "gd"
    got = sorted(p.name for p in path.iterdir() if p.is_file())
    assert got == ["config.json", "model.safetensors", "preprocessor_config.json"]
    assert (path / "model.safetensors").read_bytes() == files["model.safetensors"]
    result = weights.verify("gd")
    assert result.ok and result.size_actual == sum(len(files[n]) for n in got)


def test_gated_repo_error_says_how_to_get_access(hub: FakeServer, isolated: Path) -> None:
    gated_path = f"/acme/gated/resolve/{REV}/model.pt"
    hub.state.status[gated_path] = 401
    hub.state.headers[gated_path] = {"X-Error-Code": "GatedRepo", "X-Error-Message": "gated"}
    weights.register(WeightSpec("gated", "sam3", "", "file",
                                HubSource("acme/gated", REV, ("model.pt",), gated=True)))
    with pytest.raises(DownloadError, match="gated repository: accept its licence") as info:
        weights.fetch("gated", progress=False)
    assert "hf auth login" in str(info.value)
    assert not weights.is_cached("gated")


def test_builtin_hub_specs_offline(hub: FakeServer, monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    messages = {}
    for name in ("grounding-dino-tiny", "sam3", "clip-vit-b-16", "remoteclip-vit-b-32"):
        with pytest.raises(MissingWeightsError) as info:
            weights.fetch(name)
        messages[name] = message = str(info.value)
        assert f"text2seg-widgets weights fetch {name}" in message and str(isolated / name) in message
        assert weights.get_spec(name).source.revision in message and "Offline mode is on" in message
    assert "gated: accept its licence" in messages["sam3"]
    assert "gated" not in messages["grounding-dino-tiny"]
    assert hub.state.seen == []


def test_builtin_spec_fetches_its_pinned_revision(hub: FakeServer, isolated: Path) -> None:
    """The shipped grounding-dino-tiny spec asks the hub for exactly its pinned revision and files."""
    spec = weights.get_spec("grounding-dino-tiny")
    files = {"config.json": b"{}", "preprocessor_config.json": b"{}", "tokenizer.json": b"{}",
             "vocab.txt": b"[PAD]\n", "model.safetensors": b"\x00" * 100, "pytorch_model.bin": b"\x00"}
    add_hub_repo(hub, spec.source.repo_id, spec.source.revision, files)
    path = weights.fetch("grounding-dino-tiny", progress=False)
    assert path == isolated / "grounding-dino-tiny"
    assert not (path / "pytorch_model.bin").exists() and (path / "vocab.txt").read_bytes() == b"[PAD]\n"
    assert hub.gets(f"/api/models/IDEA-Research/grounding-dino-tiny/tree/{spec.source.revision}")


def test_hub_file_with_a_recorded_checksum(hub: FakeServer, isolated: Path) -> None:
    data = b"\x07" * 3000
    add_hub_repo(hub, "acme/sums", REV, {"w.pt": data})
    good = hashlib.sha256(data).hexdigest()
    weights.register(WeightSpec("sums", "clip", "ViT-B-32", "file",
                                HubSource("acme/sums", REV, ("w.pt",), sha256="f" * 64)))
    with pytest.raises(ChecksumError, match=f"sha256 {good} != expected {'f' * 64}"):
        weights.fetch("sums", progress=False)
    assert not (isolated / "sums" / "w.pt").exists()
    weights.register(WeightSpec("sums", "clip", "ViT-B-32", "file",
                                HubSource("acme/sums", REV, ("w.pt",), sha256=good, size=3000)), replace=True)
    path = weights.fetch("sums", progress=False)
    assert path.read_bytes() == data and weights.verify("sums").message == "sha256 matches"
    gets = len(hub.gets(f"/acme/sums/resolve/{REV}/w.pt"))
    weights.fetch("sums", progress=False)  # present: no request
    assert len(hub.gets(f"/acme/sums/resolve/{REV}/w.pt")) == gets
    weights.fetch("sums", progress=False, force=True)  # force: the hub is asked again
    assert len(hub.gets(f"/acme/sums/resolve/{REV}/w.pt")) == gets + 1
