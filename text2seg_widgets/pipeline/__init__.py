"""Text prompts -> candidate masks: class sets, the four branches, fusion, and the pipeline.

Only the torch-free parts load eagerly (the Candidate record, class sets, settings), so the store
and exporters can import ``text2seg_widgets.pipeline.candidate`` without pulling in torch; the
pipeline itself loads on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from text2seg_widgets.pipeline.candidate import Candidate, mask_to_rle, rle_to_mask

__all__ = ["Candidate", "mask_to_rle", "rle_to_mask", "ClassSet", "ClassSpec", "PipelineConfig",
           "ALL_BRANCHES", "Text2SegPipeline", "PipelineResult", "fuse"]

_LAZY = {
    "ClassSet": "classes", "ClassSpec": "classes", "PipelineConfig": "config", "ALL_BRANCHES": "config",
    "Text2SegPipeline": "pipeline", "PipelineResult": "pipeline", "fuse": "fusion",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"text2seg_widgets.pipeline.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'text2seg_widgets.pipeline' has no attribute {name!r}")
