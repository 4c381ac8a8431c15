"""A stand-in for a pseudo-labelling run, for benchmarks and demos on labelled tiles.

The text branches cannot run without their weights, so this module *simulates* what they would
propose on a tile whose ground truth is known, and what a reviewer would decide. It is not
text-branch output and must never be reported as such.

- :func:`gt_objects`: ground-truth objects = connected components of each class in a label map.
- :func:`plan_prompts`: the boxes a run would prompt a box segmenter with. Each object gets a
  ``detector`` box jittered by ``jitter`` (each side moved by a uniform 10-30 % of the object's
  width or height, in or out); a share of them also a second, independently jittered ``heatmap``
  box (the two branches then agree or disagree like real ones). False positives are added so that
  ``fp_rate[class]`` of that class's boxes are wrong by construction: half on an object of another
  class (wrong class), half on a random spot (wrong object). Prompts (synonyms) are drawn from
  ``prompts[class]``; a prompt listed in ``bad_prompts`` is used only by false positives (half of
  its class's false positives), so it only ever produces wrong boxes.
- :func:`reviewer_accepts`: the simulated reviewer accepts a candidate when its IoU with the best
  ground-truth object of its class is at least ``min_iou`` (0.5).

Everything is seeded (``numpy.random.Generator``); the same inputs give the same plan.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from text2seg_widgets.core import mask_iou
from text2seg_widgets.errors import InputError

__all__ = ["GTObject", "PromptPlan", "gt_objects", "plan_prompts", "reviewer_accepts", "best_iou"]


@dataclass(frozen=True)
class GTObject:
    """One ground-truth object: class, mask (full image size) and xyxy box (exclusive end)."""

    class_name: str
    mask: np.ndarray
    box: tuple[int, int, int, int]


@dataclass(frozen=True)
class PromptPlan:
    """One box a stand-in branch sends to the segmenter, and what it is by construction.

    ``kind``: ``true`` (jittered box of ``target``, an object of this class), ``wrong-class``
    (box of ``target``, an object of another class) or ``wrong-object`` (random box, no target).
    """

    class_name: str
    branch: str
    prompt: str
    box: tuple[float, float, float, float]
    kind: str
    target: int | None


def gt_objects(label: np.ndarray, classes: Mapping[str, Sequence[int]], *, min_area: int = 64,
               max_per_class: int | None = None, rng: np.random.Generator | None = None) -> list[GTObject]:
    """Connected components (8-connected) of each class's label values, at least ``min_area``
    pixels; at most ``max_per_class`` per class (a seeded random choice, largest kept when no rng)."""
    from scipy import ndimage

    out: list[GTObject] = []
    for name, values in classes.items():
        comps, n = ndimage.label(np.isin(label, list(values)), structure=np.ones((3, 3), bool))
        found = []
        for index, sl in enumerate(ndimage.find_objects(comps), start=1):
            if sl is None:
                continue
            mask = comps == index
            area = int(np.count_nonzero(mask))
            if area >= min_area:
                found.append((area, GTObject(name, mask, (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop))))
        found.sort(key=lambda item: -item[0])
        if max_per_class is not None and len(found) > max_per_class:
            if rng is None:
                found = found[:max_per_class]
            else:
                keep = sorted(rng.choice(len(found), size=max_per_class, replace=False))
                found = [found[i] for i in keep]
        out += [obj for _, obj in found]
    return out


def _jitter(box: Sequence[float], rng: np.random.Generator, jitter: tuple[float, float],
            width: int, height: int) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = (float(v) for v in box)
    w, h = max(x1 - x0, 1.0), max(y1 - y0, 1.0)
    moves = rng.uniform(jitter[0], jitter[1], 4) * rng.choice((-1.0, 1.0), 4) * np.array([w, h, w, h])
    nx0, ny0, nx1, ny1 = x0 + moves[0], y0 + moves[1], x1 + moves[2], y1 + moves[3]
    nx0, nx1 = sorted((nx0, nx1))
    ny0, ny1 = sorted((ny0, ny1))
    nx0, ny0 = min(max(nx0, 0.0), width - 2.0), min(max(ny0, 0.0), height - 2.0)
    nx1, ny1 = min(max(nx1, nx0 + 2.0), float(width)), min(max(ny1, ny0 + 2.0), float(height))
    return round(nx0, 1), round(ny0, 1), round(nx1, 1), round(ny1, 1)


def _random_box(rng: np.random.Generator, size: tuple[float, float], width: int,
                height: int) -> tuple[float, float, float, float]:
    w, h = min(size[0], width - 2), min(size[1], height - 2)
    x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
    return round(x0, 1), round(y0, 1), round(x0 + w, 1), round(y0 + h, 1)


def plan_prompts(objects: Sequence[GTObject], shape: tuple[int, int], rng: np.random.Generator, *,
                 classes: Sequence[str], fp_rate: Mapping[str, float], prompts: Mapping[str, Sequence[str]],
                 bad_prompts: Mapping[str, Sequence[str]] | None = None, jitter: tuple[float, float] = (0.1, 0.3),
                 second_branch: float = 0.5) -> list[PromptPlan]:
    """The stand-in run's boxes for one image (see the module doc)."""
    height, width = shape
    bad = {c: list(v) for c, v in (bad_prompts or {}).items()}
    plans: list[PromptPlan] = []
    for cls in classes:
        rate = float(fp_rate.get(cls, 0.0))
        if not 0.0 <= rate < 1.0:
            raise InputError(f"fp_rate for {cls!r} must be in [0, 1), got {rate}")
        good = [p for p in prompts.get(cls, [cls]) if p not in bad.get(cls, [])] or [cls]
        mine = [i for i, o in enumerate(objects) if o.class_name == cls]
        n_true = 0
        for i in mine:
            branches = ["detector"] + (["heatmap"] if rng.random() < second_branch else [])
            for branch in branches:
                plans.append(PromptPlan(cls, branch, str(rng.choice(good)),
                                        _jitter(objects[i].box, rng, jitter, width, height), "true", i))
                n_true += 1
        n_fp = int(round(rate / (1.0 - rate) * n_true)) if n_true else 0
        others = [i for i, o in enumerate(objects) if o.class_name != cls]
        sizes: list[tuple[float, float]] = [(float(o.box[2] - o.box[0]), float(o.box[3] - o.box[1]))
                                            for o in objects] or [(width / 8, height / 8)]
        for k in range(n_fp):
            # half of a class's false positives come from its bad prompts (when it has any)
            prompt = str(rng.choice(bad[cls]) if bad.get(cls) and rng.random() < 0.5 else rng.choice(good))
            branch = str(rng.choice(("detector", "heatmap")))
            if others and k % 2 == 0:
                target = int(rng.choice(others))
                plans.append(PromptPlan(cls, branch, prompt, _jitter(objects[target].box, rng, jitter, width, height),
                                        "wrong-class", target))
            else:
                size = sizes[int(rng.integers(len(sizes)))]
                plans.append(PromptPlan(cls, branch, prompt, _random_box(rng, size, width, height),
                                        "wrong-object", None))
    return plans


def best_iou(mask: np.ndarray, class_name: str, objects: Sequence[GTObject]) -> float:
    """The highest IoU of ``mask`` with a ground-truth object of ``class_name`` (0 if none)."""
    return max((mask_iou(mask, o.mask, empty=0.0) for o in objects if o.class_name == class_name), default=0.0)


def reviewer_accepts(mask: np.ndarray, class_name: str, objects: Sequence[GTObject], min_iou: float = 0.5) -> bool:
    """The simulated reviewer: accept when the best IoU with a same-class object is >= ``min_iou``."""
    return best_iou(mask, class_name, objects) >= min_iou
