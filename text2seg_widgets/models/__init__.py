"""Model adapters behind small Protocols (see :mod:`.protocols`), the weight registry, and the
factory that builds a :class:`ModelSet` from presets or weight specs.

Names are imported lazily: ``import text2seg_widgets.models`` does not import torch, so the
weight registry and the CLI stay quick to load. Typical use::

    from text2seg_widgets.models import load_models, tiny_model_set
    models = load_models("offline")          # LiteMedSAM + whatever weights are cached
    toy = tiny_model_set()                   # random weights: meaningless masks, for tests/demos
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    # records and protocols
    "MaskPrediction", "Detections", "AutoMask", "ConceptResult",
    "PromptableSegmenter", "MaskGenerator", "TextBoxDetector", "ClipScorer", "ConceptSegmenter",
    "ModelSet",
    # adapters
    "SamSegmenter", "SamMaskGenerator", "LiteMedSamSegmenter", "GroundingDinoDetector",
    "OpenClipScorer", "Sam3ConceptSegmenter", "heatmap_points",
    # building model sets
    "load_models", "build_adapter", "tiny_model_set", "real_size_random_model_set",
    # device
    "resolve_device", "resolve_dtype",
]

_WHERE = {
    **{name: "protocols" for name in ("MaskPrediction", "Detections", "AutoMask", "ConceptResult",
                                      "PromptableSegmenter", "MaskGenerator", "TextBoxDetector",
                                      "ClipScorer", "ConceptSegmenter")},
    "ModelSet": "modelset",
    "SamSegmenter": "sam", "SamMaskGenerator": "sam",
    "LiteMedSamSegmenter": "litemedsam",
    "GroundingDinoDetector": "grounding_dino",
    "OpenClipScorer": "clip", "heatmap_points": "clip",
    "Sam3ConceptSegmenter": "sam3",
    "load_models": "factory", "build_adapter": "factory",
    "tiny_model_set": "tiny", "real_size_random_model_set": "tiny",
    "resolve_device": "device", "resolve_dtype": "device",
}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
