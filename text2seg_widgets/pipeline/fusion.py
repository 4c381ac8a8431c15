"""Fusion: the candidates of all branches -> one de-duplicated list and one label map.

The rules, in order:

1. **Size.** Candidates whose mask has fewer than ``min_area`` pixels are dropped.
2. **Agreement.** Within each class, candidates are taken by descending score; one whose mask
   IoU with an already kept candidate of the same class is at least ``dedupe_iou`` is merged
   into it: the kept (higher-scoring) mask stays, its ``extra["votes"]`` counts the distinct
   branches that proposed it and ``extra["branches"]`` names them.
3. **Vote.** Candidates supported by fewer than ``min_votes`` branches are dropped
   (``min_votes=1``, the default, is the union of the branches).
4. **Label map.** Candidates scoring at most ``background_score`` are kept for review but never
   painted. Where the others overlap, the ``overlap`` rule decides which class a pixel takes:

   - ``"score"``: the highest-scoring candidate covering the pixel;
   - ``"smaller-on-top"`` (default): the candidate with the smaller mask (fewer pixels), so a small
     object (a car, a house) stays visible on a large region mask (a road, a field) that also
     covers it; equal areas go to the higher score;
   - ``"priority"``: the class listed first in ``priority`` (class names; unlisted classes come
     after every listed one), equal priority going to the higher score.

   Pixels no painted candidate covers are background (0).
5. **Score maps.** ``score_maps[c]`` (c >= 1) is the highest score of class c's candidates at each
   pixel, ``score_maps[0]`` is ``background_score``; where the overlap rule gave a pixel to a
   class that does not have the highest score there, the other classes' values are lowered to
   just below the winner's. Invariant: ``score_maps.argmax(0) == label_map``, so soft stitching
   across tiles and the hard label map agree.

Choosing the default (``benchmarks/bench_fusion.py``, results in ``benchmarks/results/bench_fusion.json``):
oracle-style candidates for every class of the shared labelled tiles, one LiteMedSAM (real
weights) mask per ground-truth connected component, prompted with the component's box and scored
with LiteMedSAM's predicted IoU, fused under each rule; semantic mIoU with :mod:`text2seg_widgets.eval`.

Measured 2026-11-29 (LiteMedSAM real weights; 3 LoveDA, 1 Potsdam, 1 Vaihingen and the first 20
of 100 EPFL tiles; one candidate per ground-truth component of >= 16 px; ``priority`` order: car,
building, water, road / impervious_surface, tree / forest, clutter, barren, low_vegetation,
agriculture). Semantic mIoU:

============  ==========  =======  ==============  ========  ================================
dataset       candidates  score    smaller-on-top  priority  building IoU (score -> smaller)
============  ==========  =======  ==============  ========  ================================
LoveDA        40          0.5066   **0.5583**      0.5289    0.394 -> 0.607
Potsdam       20          0.6101   **0.6431**      0.5016    0.364 -> 0.392
Vaihingen     27          0.4632   **0.5553**      0.5353    0.082 -> 0.218 (car 0.343 -> 0.668)
EPFL roads    29          0.3146   0.3146          0.3146    (one class: the rules cannot differ)
mean (3)                  0.5266   **0.5856**      0.5219
============  ==========  =======  ==============  ========  ================================

``smaller-on-top`` is best on every multi-class dataset and is the default. What it costs: a
large class loses the pixels its small neighbours' masks over-reach into (LoveDA road 0.213 ->
0.158, Vaihingen impervious surface 0.521 -> 0.424); the buildings and cars it keeps outweigh that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from text2seg_widgets.core import Candidate, boxes_overlap, mask_iou
from text2seg_widgets.errors import InputError

__all__ = ["FusionResult", "fuse", "OVERLAP_RULES", "DEFAULT_OVERLAP"]

#: how overlaps between classes are resolved in the label map (see the module docs)
OVERLAP_RULES = ("score", "smaller-on-top", "priority")
#: the rule with the best mean semantic mIoU in the measurement above
DEFAULT_OVERLAP = "smaller-on-top"


@dataclass
class FusionResult:
    candidates: list[Candidate]
    label_map: np.ndarray
    score_maps: np.ndarray


def fuse(candidates: list[Candidate], class_names: list[str], height: int, width: int, *,
         min_area: int = 16, dedupe_iou: float = 0.5, min_votes: int = 1,
         background_score: float = 0.0, overlap: str = DEFAULT_OVERLAP,
         priority: Sequence[str] = ()) -> FusionResult:
    """Apply the module's rules; the returned candidates are sorted by class, then score."""
    index = {name: i for i, name in enumerate(class_names)}
    _check_overlap(overlap, priority, index)
    kept = _dedupe(candidates, min_area, dedupe_iou)
    kept = [(c, m) for c, m in kept if c.extra["votes"] >= min_votes]

    score_maps = np.zeros((len(class_names) + 1, height, width), dtype=np.float32)
    score_maps[0] = background_score
    for cand, mask in kept:
        layer = score_maps[index[cand.class_name] + 1]
        np.maximum(layer, np.where(mask, np.float32(cand.score), np.float32(0)), out=layer)
    if overlap == "score":
        label_map = score_maps.argmax(axis=0).astype(np.uint8)
    else:
        label_map = _paint(kept, index, overlap, priority, background_score, (height, width))
        _agree(score_maps, label_map)
    ordered = sorted((c for c, _ in kept), key=lambda c: (index[c.class_name], -c.score))
    return FusionResult(ordered, label_map, score_maps)


def _check_overlap(overlap: str, priority: Sequence[str], index: dict[str, int]) -> None:
    if overlap not in OVERLAP_RULES:
        raise InputError(f"unknown overlap rule {overlap!r}; use one of {', '.join(OVERLAP_RULES)}")
    if isinstance(priority, str):
        raise InputError("priority is a list of class names, e.g. ['car', 'building'], not one string")
    unknown = [p for p in priority if p not in index]
    if unknown:
        raise InputError(f"priority names unknown class(es) {unknown}; classes are {', '.join(index)}")
    if overlap == "priority" and not priority:
        raise InputError("overlap='priority' needs a priority list of class names (top first), e.g. "
                         "priority=['car', 'building']")


def _dedupe(candidates: list[Candidate], min_area: int, dedupe_iou: float) -> list[tuple[Candidate, np.ndarray]]:
    """Rules 1 and 2: drop small candidates, merge same-class duplicates into the best one."""
    kept: list[tuple[Candidate, np.ndarray]] = []
    for cand in sorted((c for c in candidates if c.area >= min_area), key=lambda c: -c.score):
        mask = cand.mask()
        merged = False
        for other, other_mask in kept:
            if other.class_name != cand.class_name or not boxes_overlap(other.bbox, cand.bbox):
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
    return kept


def _paint(kept: list[tuple[Candidate, np.ndarray]], index: dict[str, int], overlap: str,
           priority: Sequence[str], background_score: float, shape: tuple[int, int]) -> np.ndarray:
    """Label map painted bottom to top, so the candidate the rule prefers is painted last."""
    rank = {name: k for k, name in enumerate(priority)}
    if overlap == "smaller-on-top":
        def key(c: Candidate) -> tuple:
            return (-c.area, c.score)
    else:
        def key(c: Candidate) -> tuple:
            return (-rank.get(c.class_name, len(rank)), c.score)
    label_map = np.zeros(shape, dtype=np.uint8)
    for cand, mask in sorted((pair for pair in kept if pair[0].score > background_score), key=lambda p: key(p[0])):
        label_map[mask] = index[cand.class_name] + 1
    return label_map


def _agree(score_maps: np.ndarray, label_map: np.ndarray) -> None:
    """Lower, in place, every other layer to just below the painted class's value where the rule
    gave a pixel to a class without the highest score, so that ``argmax == label_map``."""
    painted = label_map > 0
    if not painted.any():
        return
    winner = np.take_along_axis(score_maps, label_map[None].astype(np.intp), axis=0)[0]
    below = np.nextafter(winner, np.float32(-np.inf))
    layers = np.arange(score_maps.shape[0])[:, None, None]
    lower = painted[None] & (layers != label_map[None]) & (score_maps >= winner[None])
    np.copyto(score_maps, np.broadcast_to(below, score_maps.shape), where=lower)
