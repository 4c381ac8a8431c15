"""Text prompts -> candidate masks: class sets, the four branches, fusion, and the pipeline.

The Candidate record and mask helpers live one floor down, in :mod:`text2seg_widgets.core`.
Class sets and settings are torch-free; the pipeline itself loads on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = ["ClassSet", "ClassSpec", "PipelineConfig",
           "ALL_BRANCHES", "Text2SegPipeline", "PipelineResult", "fuse"]

_LAZY = {
    "ClassSet": "classes", "ClassSpec": "classes", "PipelineConfig": "config", "ALL_BRANCHES": "config",
    "Text2SegPipeline": "pipeline", "PipelineResult": "pipeline", "fuse": "fusion",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"text2seg_widgets.pipeline.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'text2seg_widgets.pipeline' has no attribute {name!r}")
