"""text2seg-widgets: text-prompted pseudo-labels for remote-sensing segmentation, reviewed in JupyterLab.

The flat public API is listed in ``__all__``; submodules hold the rest. Importing this package is
cheap: torch and the model libraries load only when a model is built.
"""

from __future__ import annotations

import logging

from text2seg_widgets.errors import (
    InputError,
    MissingExtraError,
    MissingWeightsError,
    Text2SegError,
)
from text2seg_widgets.core import Candidate, mask_to_rle, rle_to_mask

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())

__all__ = [
    "__version__",
    "Candidate",
    "mask_to_rle",
    "rle_to_mask",
    "Text2SegError",
    "InputError",
    "MissingWeightsError",
    "MissingExtraError",
]
