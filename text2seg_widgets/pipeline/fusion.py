"""Fusion: the candidates of all branches -> one de-duplicated list and one label map.

The rules, in order:

1. **Size.** Candidates whose mask has fewer than ``min_area`` pixels are dropped.
2. **Agreement.** Within each class, candidates are taken by descending score; one whose mask
   IoU with an already kept candidate of the same class is at least ``dedupe_iou`` is merged
   into it: the kept (higher-scoring) mask stays, its ``extra["votes"]`` counts the distinct
   branches that proposed it and ``extra["branches"]`` names them.
3. **Vote.** Candidates supported by fewer than ``min_votes`` branches are dropped
   (``min_votes=1``, the default, is the union of the branches).
4. **Label map.** Each pixel takes the class of the highest-scoring candidate covering it; pixels
   no candidate covers, or covered only by candidates scoring at most ``background_score``, are
   background (0). Overlaps between classes are therefore resolved by score.
5. **Score maps.** ``score_maps[c]`` (c >= 1) is the highest score of class c's candidates at each
   pixel, ``score_maps[0]`` is ``background_score``; the label map is their arg-max, so soft
   stitching across tiles and the hard label map agree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from text2seg_widgets.core import Candidate, mask_iou

__all__ = ["FusionResult", "fuse"]


@dataclass
class FusionResult:
    candidates: list[Candidate]
    label_map: np.ndarray
    score_maps: np.ndarray


def _box_overlaps(a: list[float], b: list[float]) -> bool:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    return ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah


def fuse(candidates: list[Candidate], class_names: list[str], height: int, width: int, *,
         min_area: int = 16, dedupe_iou: float = 0.5, min_votes: int = 1,
         background_score: float = 0.0) -> FusionResult:
    """Apply the module's rules; the returned candidates are sorted by class, then score."""
    index = {name: i for i, name in enumerate(class_names)}
    kept: list[tuple[Candidate, np.ndarray]] = []
    for cand in sorted((c for c in candidates if c.area >= min_area), key=lambda c: -c.score):
        mask = cand.mask()
        merged = False
        for other, other_mask in kept:
            if other.class_name != cand.class_name or not _box_overlaps(other.bbox, cand.bbox):
                continue
            if mask_iou(mask, other_mask, empty=0.0) >= dedupe_iou:
                branches = other.extra.setdefault("branches", [other.branch])
                if cand.branch not in branches:
                    branches.append(cand.branch)
                other.extra["votes"] = len(branches)
                merged = True
                break
        if not merged:
            cand.extra.setdefault("branches", [cand.branch])
            cand.extra["votes"] = len(cand.extra["branches"])
            kept.append((cand, mask))
    kept = [(c, m) for c, m in kept if c.extra["votes"] >= min_votes]

    score_maps = np.zeros((len(class_names) + 1, height, width), dtype=np.float32)
    score_maps[0] = background_score
    for cand, mask in kept:
        layer = score_maps[index[cand.class_name] + 1]
        np.maximum(layer, np.where(mask, np.float32(cand.score), np.float32(0)), out=layer)
    label_map = score_maps.argmax(axis=0).astype(np.uint8)
    ordered = sorted((c for c, _ in kept), key=lambda c: (index[c.class_name], -c.score))
    return FusionResult(ordered, label_map, score_maps)
