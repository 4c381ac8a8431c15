"""The model factory: presets, role -> spec mappings, builders resolved through the weight registry."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from text2seg_widgets.errors import InputError, MissingWeightsError, UnknownModelError
from text2seg_widgets.models import factory, weights
from text2seg_widgets.models import sam as sam_module
from text2seg_widgets.models.clip import OpenClipScorer
from text2seg_widgets.models.grounding_dino import GroundingDinoDetector
from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
from text2seg_widgets.models.fast_amg import FastMaskGenerator
from text2seg_widgets.models.sam import SamSegmenter
from text2seg_widgets.models.tiny import tiny_grounding_dino, tiny_sam, write_tiny_clip_dir


@pytest.fixture()
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(weights.CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_tiny_preset_has_all_roles_and_shares_sam():
    models = factory.load_models("tiny")
    assert models.names() == {"segmenter": "tiny-sam", "mask_generator": "tiny-sam",
                              "detector": "tiny-grounding-dino", "clip": "tiny-clip", "concept": "tiny-sam3"}
    assert models.mask_generator.segmenter is models.segmenter


def test_unknown_preset_role_spec_and_family():
    with pytest.raises(UnknownModelError, match="unknown model preset 'fast'.*tiny, offline, default"):
        factory.load_models("fast")
    with pytest.raises(InputError, match="unknown model role.*'segmentor'.*roles are"):
        factory.load_models({"segmentor": "litemedsam"})
    with pytest.raises(UnknownModelError, match="Unknown weight spec 'sam-vit-q'"):
        factory.load_models({"segmenter": "sam-vit-q"})
    with pytest.raises(InputError, match="cannot serve as detector.*grounding-dino"):
        factory.load_models({"detector": "litemedsam"})
    with pytest.raises(InputError, match="cannot serve as mask_generator"):
        factory.load_models({"mask_generator": "litemedsam"})
    with pytest.raises(InputError, match="non-empty mapping"):
        factory.load_models({})


def test_default_preset_offline_names_the_missing_weights(empty_cache):
    with pytest.raises(MissingWeightsError) as info:
        factory.load_models("default")
    message = str(info.value)
    assert "sam-vit-b" in message and str(empty_cache) in message
    assert "text2seg-widgets weights fetch sam-vit-b" in message
    assert len(factory.missing_for("default")) == 4  # sam-vit-b, grounding-dino-tiny, clip-vit-b-16, sam3


def test_offline_preset_is_litemedsam_plus_cached(empty_cache):
    models = factory.load_models("offline", device="cpu")
    assert isinstance(models.segmenter, LiteMedSamSegmenter)
    assert models.names() == {"segmenter": "litemedsam"}


def test_mapping_builds_through_local_path(tmp_path, monkeypatch):
    """SAM from a (tiny) checkpoint file, CLIP from a local-dir folder, Grounding DINO from a folder,
    all found through weights.local_path; the SAM segmenter and generator share one embedding."""
    sam_file = tmp_path / "sam.pth"
    torch.save(tiny_sam(seed=21).state_dict(), sam_file)
    clip_dir = write_tiny_clip_dir(tmp_path / "clip", seed=22)
    det = tiny_grounding_dino(seed=23)
    det.model.save_pretrained(tmp_path / "gd")
    det.processor.save_pretrained(tmp_path / "gd")
    paths = {"sam-vit-b": sam_file, "clip-vit-b-16": clip_dir, "grounding-dino-tiny": tmp_path / "gd"}
    monkeypatch.setattr(weights, "local_path", lambda spec, **_: paths[weights.get_spec(spec).name])
    monkeypatch.setitem(sam_module.sam_model_registry,
                        "vit_b", lambda checkpoint=None: tiny_sam(seed=0))
    models = factory.load_models({"segmenter": "sam-vit-b", "mask_generator": "sam-vit-b",
                                  "detector": "grounding-dino-tiny", "clip": "clip-vit-b-16"}, device="cpu")
    assert isinstance(models.segmenter, SamSegmenter) and isinstance(models.mask_generator, FastMaskGenerator)
    assert models.mask_generator.segmenter is models.segmenter
    assert isinstance(models.clip, OpenClipScorer) and isinstance(models.detector, GroundingDinoDetector)
    assert models.names() == {"segmenter": "sam-vit-b", "mask_generator": "sam-vit-b",
                              "detector": "grounding-dino-tiny", "clip": "clip-vit-b-16"}
    for key, value in tiny_sam(seed=21).state_dict().items():
        assert torch.equal(models.segmenter.model.state_dict()[key], value), key
    image = np.full((40, 60, 3), 120, np.uint8)
    assert models.clip.similarity_map(image, models.clip.encode_text(["a", "b"])).shape == (2, 8, 8)


def test_registered_local_spec(tmp_path):
    """A user-registered spec (LocalSource) for a CLIP checkpoint FILE needs its open_clip arch."""
    ckpt = write_tiny_clip_dir(tmp_path / "clip", seed=1) / "open_clip_pytorch_model.bin"
    spec = weights.WeightSpec("test-clip-file", "clip", "", "file", weights.LocalSource(str(ckpt)))
    weights.register(spec, replace=True)
    try:
        with pytest.raises(InputError, match="names no open_clip architecture"):
            factory.load_models({"clip": "test-clip-file"})
    finally:
        weights.unregister("test-clip-file")


def test_tiny_role_in_a_mapping():
    models = factory.load_models({"segmenter": "tiny", "mask_generator": "tiny", "clip": "tiny"})
    assert models.mask_generator.segmenter is models.segmenter
    assert set(models.names()) == {"segmenter", "mask_generator", "clip"}
