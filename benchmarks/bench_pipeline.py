"""Pipeline cost per 1024 px tile on this machine, at real model sizes (random weights).

Models: ``real_size_random_model_set()`` (SAM ViT-B, Grounding DINO Swin-T with a BERT-base text
tower, CLIP ViT-B/16; ``--sam3`` adds SAM 3). Image: the real 1024 x 1024 LoveDA tile ``0.png``.
Classes: three classes with two prompts each, plus the three default background prompts.

For each branch alone and for all branches together (a fresh image each time: the segmenter's
embedding cache is cleared), the tile goes through :class:`Text2SegPipeline`. Every model
adapter call is timed (outermost calls only, so the mask generator's own ``set_image`` is not
counted twice); the *model sum* is the time spent inside those calls, i.e. the sum of the model
forward passes (with each adapter's own pre/post-processing) that the run made. Overhead =
wall time - model sum: the pipeline's own work (prompt bookkeeping, crops, RLE, fusion).
Text features are computed once per class set, before the timed run (a batch run pays them once).

Naive flow: the original Text2Seg code runs every branch once per prompt, re-encoding the image
for SAM in every branch and running the detector and CLIP per prompt. Its cost is estimated from
the measured components, not run (it would take tens of minutes here):
``P x (3 x SAM encoder + Grounding DINO with one prompt + CLIP Surgery map with one class +
automatic masks from a cached embedding + CLIP on their crops) + the same mask decoding``,
with P the number of target prompts; each component is measured once.

Random weights make the detector and the mask generator unrealistically prolific: an untrained
Grounding DINO scores about every one of its 900 queries above the box threshold, and an untrained
SAM's quality filter passes about every automatic mask. A trained pair returns tens of boxes and
up to a hundred-odd masks on a 1024 px aerial tile, so the benchmark keeps the best
``--max-boxes`` (30) detections and ``--max-masks`` (100) automatic masks; the mask decoding and
CLIP crop scoring that follow then do the amount of work a real run does.

Usage: ``python benchmarks/bench_pipeline.py [--branches detector,heatmap,filter] [--sam3]
[--max-boxes 30] [--max-masks 100] [--tiny]``;
prints a table
and writes ``benchmarks/results/bench_pipeline.json``. Timings are single runs (the SAM encoder
alone takes ~20 s on 2 CPUs), so expect a few percent of noise on a quiet machine, more on a busy one.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("TEXT2SEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "bench_pipeline.json"
CLASSES = "building: building, roof\nroad: road, street\nwater: water, river"
METHODS = {
    "segmenter": ("set_image", "predict", "predict_boxes"),
    "mask_generator": ("generate",),
    "detector": ("detect",),
    "clip": ("encode_text", "encode_crops", "similarity_map"),
    "concept": ("segment",),
}


def cap_outputs(models: Any, max_boxes: int, max_masks: int) -> None:
    """Keep the best ``max_boxes`` detections and ``max_masks`` automatic masks (see the module docs)."""
    from text2seg_widgets.models.protocols import Detections

    detect, generate = models.detector.detect, models.mask_generator.generate

    def capped_detect(*args: Any, **kwargs: Any) -> Any:
        found = detect(*args, **kwargs)
        return Detections(found.boxes[:max_boxes], found.scores[:max_boxes], list(found.phrases[:max_boxes]))

    def capped_generate(*args: Any, **kwargs: Any) -> Any:
        return generate(*args, **kwargs)[:max_masks]

    models.detector.detect, models.mask_generator.generate = capped_detect, capped_generate


class Meter:
    """Times adapter method calls; nested calls inside a timed call are not counted again."""

    def __init__(self) -> None:
        self.depth = 0
        self.calls: list[tuple[str, float]] = []

    def _timed(self, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            self.depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1
                if self.depth == 0:
                    self.calls.append((key, time.perf_counter() - start))
        return wrapper

    def instrument(self, models: Any) -> None:
        for role, names in METHODS.items():
            obj = getattr(models, role)
            if obj is None:
                continue
            for name in names:
                setattr(obj, name, self._timed(f"{role}.{name}", getattr(obj, name)))

    def clear(self) -> None:
        self.calls.clear()

    def by_key(self) -> dict[str, dict[str, float]]:
        out: dict[str, list[float]] = defaultdict(list)
        for key, sec in self.calls:
            out[key].append(sec)
        return {k: {"calls": len(v), "seconds": round(sum(v), 3)} for k, v in sorted(out.items())}

    def total(self) -> float:
        return sum(sec for _, sec in self.calls)


def run_config(models: Any, classes: Any, branches: tuple[str, ...], rgb: np.ndarray, meter: Meter,
               box_threshold: float) -> dict[str, Any]:
    from text2seg_widgets.pipeline import PipelineConfig, Text2SegPipeline

    pipeline = Text2SegPipeline(models, classes, PipelineConfig(branches=branches, box_threshold=box_threshold))
    _ = pipeline.text_features  # once per class set, outside the per-tile cost
    models.segmenter.reset_image()
    meter.clear()
    start = time.perf_counter()
    result = pipeline.run(rgb)
    wall = time.perf_counter() - start
    model = meter.total()
    return {"branches": list(branches), "wall_s": round(wall, 2), "model_sum_s": round(model, 2),
            "overhead_s": round(wall - model, 2), "overhead_pct": round(100 * (wall - model) / model, 1),
            "candidates": len(result.candidates),
            "by_branch": {k: len(v) for k, v in result.by_branch.items()},
            "branch_seconds": {k: round(v, 2) for k, v in result.seconds.items()}, "calls": meter.by_key()}


def components(models: Any, classes: Any, rgb: np.ndarray, meter: Meter, all_run: dict[str, Any]) -> dict[str, float]:
    """Single forward passes: SAM encoder, detector and CLIP map with ONE prompt/class."""
    calls = all_run["calls"]
    seg = models.segmenter
    seg.reset_image()
    meter.clear()
    seg.set_image(rgb)
    enc = meter.total()
    meter.clear()
    prompt = classes.prompt_table()[0][1]
    models.detector.detect(rgb, [prompt])
    gdino_one = meter.total()
    meter.clear()
    feats = models.clip.encode_text([prompt])
    meter.clear()
    models.clip.similarity_map(rgb, feats)
    clip_one = meter.total()
    return {
        "sam_encoder_s": round(enc, 2),
        "detector_one_prompt_s": round(gdino_one, 2),
        "detector_all_prompts_s": calls.get("detector.detect", {}).get("seconds", 0.0),
        "clip_map_one_class_s": round(clip_one, 2),
        "clip_map_all_classes_s": calls.get("clip.similarity_map", {}).get("seconds", 0.0),
        "mask_generator_cached_s": calls.get("mask_generator.generate", {}).get("seconds", 0.0),
        "clip_crops_s": calls.get("clip.encode_crops", {}).get("seconds", 0.0),
        "sam_decode_boxes_s": calls.get("segmenter.predict_boxes", {}).get("seconds", 0.0),
        "sam_decode_points_s": calls.get("segmenter.predict", {}).get("seconds", 0.0),
    }


def naive_estimate(parts: dict[str, float], n_prompts: int, branches: tuple[str, ...]) -> float:
    """The per-prompt flow for ``branches``: every SAM branch re-encodes the image for every prompt,
    the detector and CLIP run once per prompt; mask decoding as measured."""
    sam_branches = [b for b in branches if b in ("detector", "heatmap", "filter")]
    per_prompt = len(sam_branches) * parts["sam_encoder_s"]
    if "detector" in branches:
        per_prompt += parts["detector_one_prompt_s"]
    if "heatmap" in branches:
        per_prompt += parts["clip_map_one_class_s"]
    if "filter" in branches:
        per_prompt += parts["mask_generator_cached_s"] + parts["clip_crops_s"]
    return n_prompts * per_prompt + parts["sam_decode_boxes_s"] + parts["sam_decode_points_s"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--sam3", action="store_true", help="also SAM 3 (concept branch; ~50 s encoder on 2 CPUs)")
    ap.add_argument("--box-threshold", type=float, default=0.35)
    ap.add_argument("--max-boxes", type=int, default=30)
    ap.add_argument("--max-masks", type=int, default=100)
    ap.add_argument("--tiny", action="store_true", help="tiny random models: a quick check of this script")
    ap.add_argument("--branches", default="detector,heatmap,filter",
                    help="branches to measure alone and then all together (the filter branch's automatic "
                         "masks take ~20 min per tile on a busy 2-CPU machine)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from text2seg_widgets.imagery.scene import open_scene
    from text2seg_widgets.models.tiny import real_size_random_model_set, tiny_model_set
    from text2seg_widgets.pipeline import ClassSet

    tile = SHARED / "rs-samples" / "loveda" / "images" / "0.png"
    with open_scene(tile) as scene:
        rgb = scene.read_rgb()
    classes = ClassSet.parse(CLASSES, background=True)
    n_prompts = sum(1 for i, _ in classes.prompt_table() if i >= 0)
    start = time.perf_counter()
    models = tiny_model_set(device="cpu") if args.tiny else real_size_random_model_set(device="cpu", sam3=args.sam3)
    load_s = time.perf_counter() - start
    cap_outputs(models, args.max_boxes, args.max_masks)
    meter = Meter()
    meter.instrument(models)
    chosen = [b.strip() for b in args.branches.split(",") if b.strip()] + (["concept"] if args.sam3 else [])
    configs = [(b,) for b in chosen]
    if len(configs) > 1:
        configs.append(tuple(chosen))
    runs = []
    with torch.inference_mode():
        for branches in configs:
            runs.append(run_config(models, classes, branches, rgb, meter, args.box_threshold))
            r = runs[-1]
            print(f"{'+'.join(branches):32s} wall {r['wall_s']:7.2f} s  models {r['model_sum_s']:7.2f} s  "
                  f"overhead {r['overhead_pct']:5.1f} %  candidates {r['candidates']}", flush=True)
        parts = components(models, classes, rgb, meter, runs[-1])
    naive = naive_estimate(parts, n_prompts, configs[-1])
    together = runs[-1]["wall_s"]
    branch_sum = sum(r["wall_s"] for r in runs[:-1]) if len(runs) > 1 else together
    doc = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "load_avg": os.getloadavg(),
                    "python": platform.python_version(), "torch": torch.__version__, "device": "cpu"},
        "tile": str(tile.relative_to(SHARED)), "tile_px": list(rgb.shape[:2]), "classes": classes.to_dict(),
        "target_prompts": n_prompts, "models": models.names(), "load_s": round(load_s, 1),
        "box_threshold": args.box_threshold, "max_boxes": args.max_boxes, "max_masks": args.max_masks, "runs": runs, "components": parts,
        "all_together_s": together, "sum_of_branches_alone_s": round(branch_sum, 2),
        "naive_estimate_s": round(naive, 1), "naive_over_ours": round(naive / together, 2),
        "overhead_goal_pct": 30,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"components: {json.dumps(parts)}")
    print(f"all together {together:.1f} s vs branches alone summed {branch_sum:.1f} s; "
          f"naive per-prompt flow (estimated) {naive:.1f} s = {naive / together:.1f}x")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
