"""text2seg-widgets: text-prompted pseudo-labels for remote-sensing segmentation, reviewed in JupyterLab.

The flat public API is listed in ``__all__``; submodules hold the rest. Importing this package is
cheap: the records and errors load at once; ``Project``, ``Annotator``, ``load_models`` and the
pipeline names load on first use (so torch, the model libraries and ipywidgets load only when a
model or a widget is built).

>>> from text2seg_widgets import Project, Annotator, load_models            # doctest: +SKIP
>>> annotator = Annotator(Project.open("my-project"), models=load_models("tiny"))
"""

from __future__ import annotations

import importlib
import logging
from typing import Any

from text2seg_widgets.core import Candidate, mask_to_rle, rle_to_mask
from text2seg_widgets.errors import (
    InputError,
    MissingExtraError,
    MissingWeightsError,
    Text2SegError,
)

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

#: name -> module it loads from on first use
_LAZY = {
    "Project": "text2seg_widgets.store.project",
    "Annotator": "text2seg_widgets.widgets.annotator",
    "load_models": "text2seg_widgets.models.factory",
    "ClassSet": "text2seg_widgets.pipeline.classes",
    "PipelineConfig": "text2seg_widgets.pipeline.config",
    "Text2SegPipeline": "text2seg_widgets.pipeline.pipeline",
    "segment_array": "text2seg_widgets.pipeline.tiles",
    "open_scene": "text2seg_widgets.imagery.scene",
}

__all__ = [
    "__version__",
    "Candidate",
    "mask_to_rle",
    "rle_to_mask",
    "Text2SegError",
    "InputError",
    "MissingWeightsError",
    "MissingExtraError",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'text2seg_widgets' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
