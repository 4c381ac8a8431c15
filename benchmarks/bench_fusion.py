"""Which overlap rule should fusion use? Semantic mIoU of each rule on the shared labelled tiles.

For every labelled tile of ``rs-samples`` (LoveDA, Potsdam, Vaihingen, EPFL roads), oracle-style
candidates are built for every class of the dataset's eval preset (except the preset's catch-all
``background`` class): one candidate per ground-truth connected component (4-connected, at least
``min_area`` = 16 pixels), whose mask is LiteMedSAM's (real weights) answer to the component's box
and whose score is LiteMedSAM's predicted IoU. The candidates of a tile are fused with
:func:`text2seg_widgets.pipeline.fusion.fuse` under each overlap rule:

- ``score``: higher score on top;
- ``smaller-on-top``: the smaller mask on top;
- ``priority``: a fixed, hand-made class order, countable objects before linear features before
  land cover: ``car, building, water, road / impervious_surface, tree / forest, clutter, barren,
  low_vegetation, agriculture`` (the classes a dataset has, in that order).

The label map is scored against the ground truth with :mod:`text2seg_widgets.eval` (one confusion
matrix per dataset and rule; pixels that no candidate covers are the preset's background class
where it has one, else a miss). Masks are identical across rules; only the overlap rule differs.
EPFL roads has a single target class, so its rules cannot differ; only its first ``--epfl-tiles``
(default 20) of 100 tiles are used to keep the run short.

Usage: ``python benchmarks/bench_fusion.py [--epfl-tiles 20]``; prints a table per dataset and
writes ``benchmarks/results/bench_fusion.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("TEXT2SEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "bench_fusion.json"
DATASETS = {"loveda": "loveda", "potsdam": "potsdam", "vaihingen": "vaihingen", "epfl_roads": "epfl_roads"}
PRIORITY = ["car", "building", "water", "road", "impervious_surface", "tree", "forest", "clutter", "barren",
            "low_vegetation", "agriculture"]
RULES = ("score", "smaller-on-top", "priority")
MIN_AREA = 16


def oracle_candidates(seg: Any, rgb: np.ndarray, gt: np.ndarray, classes: list[str], mapping: Any) -> list:
    """One LiteMedSAM candidate per ground-truth component of every target class."""
    from text2seg_widgets.core import Candidate

    boxes, owners = [], []
    for name in classes:
        components, n = ndimage.label(gt == mapping.classes.index(name))
        for k, sl in enumerate(ndimage.find_objects(components), start=1):
            if sl is None or int((components[sl] == k).sum()) < MIN_AREA:
                continue
            boxes.append([sl[1].start, sl[0].start, sl[1].stop, sl[0].stop])
            owners.append(name)
    if not boxes:
        return []
    seg.set_image(rgb)
    pred = seg.predict_boxes(np.asarray(boxes, dtype=np.float64))
    return [Candidate.from_mask(pred.masks[k], class_name=owners[k], score=float(pred.scores[k]), branch="detector",
                                box=[float(v) for v in boxes[k]])
            for k in range(len(boxes)) if pred.masks[k].any()]


def to_mapping(label_map: np.ndarray, classes: list[str], mapping: Any) -> np.ndarray:
    """Fusion label map (0 = background, i = classes[i-1]) -> the mapping's class indices (255 = none)."""
    from text2seg_widgets.eval.confusion import IGNORE_INDEX

    bg = mapping.background_index
    lut = np.array([IGNORE_INDEX if bg is None else bg] + [mapping.classes.index(c) for c in classes], dtype=np.uint8)
    return lut[label_map]


def run_dataset(name: str, seg: Any, limit: int | None) -> dict[str, Any]:
    from text2seg_widgets.eval import evaluate_arrays
    from text2seg_widgets.eval.labels import load_label, load_mapping
    from text2seg_widgets.pipeline.fusion import fuse

    mapping = load_mapping(DATASETS[name])
    folder = SHARED / "rs-samples" / name
    images = sorted((folder / "images").glob("*.png"))[:limit]
    classes = [c for c in mapping.classes if c != mapping.background]
    pairs: dict[str, list] = {rule: [] for rule in RULES}
    n_cands = 0
    for path in images:
        rgb = np.asarray(Image.open(path).convert("RGB"))
        gt = load_label(folder / "labels" / path.name, mapping)
        cands = oracle_candidates(seg, rgb, gt, classes, mapping)
        n_cands += len(cands)
        priority = [c for c in PRIORITY if c in classes] + [c for c in classes if c not in PRIORITY]
        for rule in RULES:
            fused = fuse(cands, classes, *gt.shape, overlap=rule, priority=priority)
            pairs[rule].append((path.stem, gt, to_mapping(fused.label_map, classes, mapping)))
    out: dict[str, Any] = {"tiles": len(images), "candidates": n_cands, "classes": classes, "rules": {}}
    for rule in RULES:
        res = evaluate_arrays(pairs[rule], mapping.classes)
        out["rules"][rule] = {"miou": round(float(res.miou), 4),
                              "iou": {c: (None if np.isnan(v) else round(float(v), 4))
                                      for c, v in zip(mapping.classes, res.iou)}}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--epfl-tiles", type=int, default=20)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter

    seg = LiteMedSamSegmenter.from_checkpoint(device="cpu")
    start = time.perf_counter()
    results = {}
    for name in DATASETS:
        results[name] = run_dataset(name, seg, args.epfl_tiles if name == "epfl_roads" else None)
        r = results[name]
        print(f"{name:11s} tiles {r['tiles']:3d} candidates {r['candidates']:5d}  " +
              "  ".join(f"{rule} {r['rules'][rule]['miou']:.4f}" for rule in RULES), flush=True)
    multi = [n for n in DATASETS if len(results[n]["classes"]) > 1]
    mean = {rule: round(float(np.mean([results[n]["rules"][rule]["miou"] for n in multi])), 4) for rule in RULES}
    winner = max(RULES, key=lambda r: mean[r])
    doc = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "segmenter": seg.name,
           "load_avg": [round(v, 2) for v in os.getloadavg()], "seconds": round(time.perf_counter() - start, 1),
           "min_area": MIN_AREA, "priority": PRIORITY, "datasets": results,
           "mean_miou_multiclass_datasets": mean, "datasets_in_mean": multi, "winner": winner}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"mean mIoU over {', '.join(multi)}: {mean}; winner {winner}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
