"""The random-weight model sets: deterministic per seed, every role present, real sizes for benchmarks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_models import synthetic_rgb
from text2seg_widgets.models.protocols import (ClipScorer, ConceptSegmenter, MaskGenerator, PromptableSegmenter,
                                               TextBoxDetector)
from text2seg_widgets.models.tiny import real_size_random_model_set, tiny_model_set


def _weights(models) -> dict[str, torch.Tensor]:
    out = {}
    for role in ("segmenter", "detector", "clip", "concept"):
        for key, value in getattr(models, role).model.state_dict().items():
            out[f"{role}.{key}"] = value
    return out


def test_tiny_set_roles_and_seeds(tiny_models):
    assert isinstance(tiny_models.segmenter, PromptableSegmenter)
    assert isinstance(tiny_models.mask_generator, MaskGenerator)
    assert isinstance(tiny_models.detector, TextBoxDetector)
    assert isinstance(tiny_models.clip, ClipScorer)
    assert isinstance(tiny_models.concept, ConceptSegmenter)
    assert tiny_models.mask_generator.points_per_side == 8
    again, other = _weights(tiny_model_set(seed=0)), _weights(tiny_model_set(seed=1))
    same = _weights(tiny_models)
    assert same.keys() == again.keys() == other.keys()
    assert all(torch.equal(same[k], again[k]) for k in same)
    # every randomly initialised tensor changes with the seed (norms, biases and buffers do not)
    assert sum(not torch.equal(same[k], other[k]) for k in same) > 300
    for key in ("segmenter.image_encoder.patch_embed.proj.weight", "clip.visual.conv1.weight",
                "concept.vision_encoder.backbone.embeddings.patch_embeddings.projection.weight"):
        assert not torch.equal(same[key], other[key]), key


def test_tiny_set_segments_a_1024_tile(tiny_models):
    image = synthetic_rgb(1024, 1024, seed=40)
    masks = tiny_models.mask_generator.generate(image)
    assert masks and all(m.mask.shape == (1024, 1024) for m in masks)
    pred = tiny_models.segmenter.predict_boxes(np.array([[100, 100, 400, 300]]))
    assert pred.masks.shape == (1, 1024, 1024)


@pytest.mark.slow
def test_real_size_random_set():
    models = real_size_random_model_set(seed=0)
    counts = {role: sum(p.numel() for p in getattr(models, role).model.parameters()) / 1e6
              for role in ("segmenter", "detector", "clip")}
    # SAM ViT-B ~94 M, Grounding DINO Swin-T + BERT-base ~172 M, CLIP ViT-B/16 ~150 M parameters
    assert 90 < counts["segmenter"] < 100 and 165 < counts["detector"] < 180 and 145 < counts["clip"] < 155
    assert models.mask_generator.segmenter is models.segmenter and models.concept is None
    assert models.segmenter.model.image_encoder.img_size == 1024 and models.clip.grid_size == (14, 14)
