"""The offline first run teaches: every missing weight at once with its fetch command, what works
offline and what needs weights, and no library warning spam when LiteMedSAM loads."""

from __future__ import annotations

import subprocess
import sys

import pytest

from text2seg_widgets.errors import MissingWeightsError
from text2seg_widgets.models import factory, weights
from text2seg_widgets.models.modelset import ModelSet

DEFAULT_MISSING = ["sam-vit-b", "grounding-dino-tiny", "clip-vit-b-16", "sam3"]


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def no_builds(monkeypatch):
    """Record builder calls: a preset with missing weights must fail before building anything."""
    calls: list[str] = []
    for family in list(factory.BUILDERS):
        monkeypatch.setitem(factory.BUILDERS, family, lambda spec, *a, **k: calls.append(spec.name))
    return calls


def _bullets(message: str) -> list[str]:
    return [line for line in message.splitlines() if line.startswith("  - ")]


def test_default_preset_lists_every_missing_weight_at_once(empty_cache, no_builds):
    with pytest.raises(MissingWeightsError) as info:
        factory.load_models("default")
    message = str(info.value)
    assert message.splitlines()[0] == "load_models('default') needs 4 weight(s) that are not on this machine:"
    bullets = _bullets(message)
    assert [b.split()[1] for b in bullets] == DEFAULT_MISSING
    roles = {"sam-vit-b": "(segmenter, mask_generator)", "grounding-dino-tiny": "(detector)",
             "clip-vit-b-16": "(clip)", "sam3": "(concept)"}
    for name, line in zip(DEFAULT_MISSING, bullets):
        assert line.startswith(f"  - {name} {roles[name]}: expected at ")
        assert f"fetch with `text2seg-widgets weights fetch {name}`" in line  # the command beside its weight
        assert str(weights.expected_path(name)) in line and str(empty_cache) in line
    assert "the offline preset (CLI: --models offline; Python: load_models('offline')) works now" in message
    assert no_builds == []  # nothing was built (no half-loaded model set, no wasted minutes)


def test_mapping_lists_only_its_missing_weights(empty_cache, no_builds):
    with pytest.raises(MissingWeightsError) as info:
        factory.load_models({"segmenter": "litemedsam", "detector": "grounding-dino-tiny", "clip": "clip-vit-b-16"})
    bullets = _bullets(str(info.value))
    assert [b.split()[1] for b in bullets] == ["grounding-dino-tiny", "clip-vit-b-16"]
    assert str(info.value).startswith("this model mapping needs 2 weight(s)")
    assert no_builds == []


@pytest.mark.parametrize("spec, expected", [
    ("default", DEFAULT_MISSING),
    ("offline", []),
    ("tiny", []),
    ({"segmenter": "litemedsam"}, []),
    ({"segmenter": "sam-vit-b", "mask_generator": "sam-vit-b", "concept": "sam3"}, ["sam-vit-b", "sam3"]),
    ({"segmenter": "tiny", "clip": "remoteclip-vit-b-32"}, ["remoteclip-vit-b-32"]),
])
def test_missing_weights_table(empty_cache, spec, expected):
    assert factory.missing_weights(spec) == expected


def test_offline_preset_says_what_works_and_what_needs_weights(empty_cache):
    models = factory.load_models("offline", device="cpu")
    assert models.names() == {"segmenter": "litemedsam"}
    fetch = "`text2seg-widgets weights fetch {}`".format
    assert factory.capabilities(models).splitlines() == [
        "Works now, offline:",
        "  - review: accept, reject, relabel stored candidates, move between images, export",
        "  - polygons drawn by hand (add to a mask or cut from it)",
        "  - box prompts -> masks with litemedsam",
        "Needs weights (fetch on a machine with internet, then copy the cache folder here):",
        f"  - +/- point clicks: sam-vit-b ({fetch('sam-vit-b')})",
        f"  - text prompts, detector branch: grounding-dino-tiny ({fetch('grounding-dino-tiny')})",
        f"  - text prompts, heatmap branch: clip-vit-b-16 ({fetch('clip-vit-b-16')}), sam-vit-b ({fetch('sam-vit-b')})",
        f"  - text prompts, filter branch: sam-vit-b ({fetch('sam-vit-b')}), clip-vit-b-16 ({fetch('clip-vit-b-16')})",
        f"  - text prompts, concept branch: sam3 ({fetch('sam3')})",
    ]


def test_capabilities_of_full_and_empty_model_sets():
    full = factory.capabilities(factory.load_models("tiny"))
    assert "Needs weights" not in full and full.count("text prompts,") == 4
    assert "+/- point clicks that refine a mask" in full
    empty = factory.capabilities(ModelSet())
    assert empty == factory.capabilities(None)
    assert "  - box prompts: sam-vit-b (`text2seg-widgets weights fetch sam-vit-b`) or load_models('offline')" in empty
    assert len(_bullets(empty)) == 2 + 6  # review + polygons work; boxes, points, 4 branches need weights


def test_every_pipeline_branch_has_its_roles_in_one_table():
    from text2seg_widgets.models.modelset import BRANCH_ROLES
    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
    from text2seg_widgets.pipeline.branches import BRANCH_FUNCTIONS

    assert set(BRANCH_FUNCTIONS) == set(BRANCH_ROLES)
    lite = ModelSet(segmenter=LiteMedSamSegmenter.from_checkpoint(device="cpu"))
    assert lite.missing_roles("detector") == ["detector"]
    assert lite.missing_roles("heatmap") == ["clip", "segmenter"]  # box-only: no point prompts
    assert ModelSet().missing_roles("concept") == ["concept"]


def test_litemedsam_load_prints_no_timm_warnings():
    """The two timm FutureWarnings are filtered by message, category and module; others still show."""
    code = ("import warnings\n"
            "from text2seg_widgets.models.factory import load_models\n"
            "load_models('offline', device='cpu')\n"
            "warnings.warn('Importing from somewhere is deprecated', FutureWarning)\n")
    run = subprocess.run([sys.executable, "-W", "always", "-c", code], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    assert "timm" not in run.stderr, run.stderr
    assert "FutureWarning: Importing from somewhere is deprecated" in run.stderr  # the filter is narrow
