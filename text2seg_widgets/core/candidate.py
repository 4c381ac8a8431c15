"""The Candidate record shared by every stage.

A :class:`Candidate` is one proposed (or accepted) instance: a class, a binary mask stored as
COCO compressed RLE (``counts`` is always a ``str``), the xywh bbox and area derived from that
mask, a score, the branch that produced it and the prompt that was used. Masks are in the pixel
coordinates of the image (or scene) they belong to; ``size`` is ``[height, width]`` as in COCO.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from text2seg_widgets.core.masks import mask_to_rle, rle_area, rle_bbox, rle_to_mask

__all__ = ["Candidate", "BRANCHES"]

#: The names of the pseudo-labelling branches; ``manual`` marks annotator-made masks.
BRANCHES = ("detector", "heatmap", "filter", "concept", "manual", "import")


@dataclass
class Candidate:
    """One instance proposal. Build it with :meth:`from_mask` so bbox and area follow the mask."""

    class_name: str
    rle: dict[str, Any]
    bbox: list[float]
    area: int
    score: float
    branch: str
    prompt: str = ""
    model: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_mask(cls, mask: np.ndarray, *, class_name: str, score: float, branch: str,
                  prompt: str = "", model: str = "", **extra: Any) -> "Candidate":
        rle = mask_to_rle(mask)
        return cls(class_name=class_name, rle=rle, bbox=rle_bbox(rle), area=rle_area(rle),
                   score=float(score), branch=branch, prompt=prompt, model=model, extra=dict(extra))

    @property
    def height(self) -> int:
        return int(self.rle["size"][0])

    @property
    def width(self) -> int:
        return int(self.rle["size"][1])

    def mask(self) -> np.ndarray:
        return rle_to_mask(self.rle)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Candidate":
        return cls(**data)
