"""The Candidate record shared by every stage, and the mask <-> COCO RLE helpers.

A :class:`Candidate` is one proposed (or accepted) instance: a class, a binary mask stored as
COCO compressed RLE (``counts`` is always a ``str``), the xywh bbox and area derived from that
mask, a score, the branch that produced it and the prompt that was used. Masks are in the pixel
coordinates of the image (or scene) they belong to; ``size`` is ``[height, width]`` as in COCO.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["Candidate", "mask_to_rle", "rle_to_mask", "rle_area", "rle_bbox", "BRANCHES"]

#: The names of the pseudo-labelling branches; ``manual`` marks annotator-made masks.
BRANCHES = ("detector", "heatmap", "filter", "concept", "manual", "import")


def mask_to_rle(mask: np.ndarray) -> dict[str, Any]:
    """Encode a 2-D boolean mask as COCO compressed RLE with ``counts`` as a str."""
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"mask must be 2-D (height, width), got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])],
            "counts": counts.decode("ascii") if isinstance(counts, bytes) else counts}


def _as_coco(rle: dict[str, Any]) -> dict[str, Any]:
    counts = rle["counts"]
    if isinstance(counts, list):  # uncompressed RLE
        return mask_utils.frPyObjects(rle, rle["size"][0], rle["size"][1])
    return {"size": list(rle["size"]),
            "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def rle_to_mask(rle: dict[str, Any]) -> np.ndarray:
    """Decode COCO RLE (compressed or not, ``counts`` str or bytes) to a boolean mask."""
    return mask_utils.decode(_as_coco(rle)).astype(bool)


def rle_area(rle: dict[str, Any]) -> int:
    return int(mask_utils.area(_as_coco(rle)))


def rle_bbox(rle: dict[str, Any]) -> list[float]:
    """The tight xywh box of the mask (pycocotools convention), ``[0, 0, 0, 0]`` when empty."""
    return [float(v) for v in mask_utils.toBbox(_as_coco(rle))]


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
