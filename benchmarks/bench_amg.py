"""Filter branch per 1024 px tile: segment-anything's automatic mask generator (the reference) vs
:class:`~text2seg_widgets.models.fast_amg.FastMaskGenerator`, in ONE run on the same tile and the
same image embedding, SAM ViT-B and CLIP ViT-B/16 at real size with RANDOM weights, on the CPU.

The tile is the real LoveDA ``0.png`` (1024 x 1024). SAM ViT-B is built from segment_anything's
registry without a checkpoint, CLIP ViT-B/16 from open_clip without weights (seeded). The image is
encoded ONCE (timed as ``encode_s``); every filter-branch run below decodes against that cached
embedding, as in a pipeline run where the detector branch encoded it first. ``filter_s`` is the
wall time of :func:`text2seg_widgets.pipeline.branches.run_filter` (automatic masks + CLIP on the
masked crops + candidates); ``generate_s`` is the mask generator's share of it. ``with_encoder_s``
adds the encode for a run in which the filter branch is the only SAM user.

Runs, in this order (results are written after each one, so a cut-short run keeps what finished):

1. ``fast``: the fast generator at the reference's settings (``--points-per-side``, default 32,
   no crop layers, box NMS 0.7, quality filters as below; mask-IoU de-duplication 0.9);
2. ``fast-cpu-default``: the fast generator at its CPU default grid (16 x 16);
3. ``reference``: ``SamAutomaticMaskGenerator`` (via ``SamMaskGenerator(full_resolution=True)``)
   at ``--ref-points-per-side`` (default 32: the same settings as run 1). On a busy shared machine
   the 32 x 32 reference takes hours; ``--ref-points-per-side 16`` runs it on the CPU default grid,
   and the ratio is then taken against the fast run on that same grid (run 2), never extrapolated.

Quality filters: on this random ViT-B, SAM's defaults (predicted IoU 0.88, stability 0.95) pass
NO mask (measured at an 8 x 8 grid: 0 masks for both generators, and no upsampling or CLIP work
at all), so both run with the filters off by default (``--pred-iou-thresh 0
--stability-score-thresh 0``): every decoded mask (3 per point) goes on, the prolific workload of
the 1107 s measurement in issue 12; a trained SAM keeps tens to a hundred-odd. Both generators' outputs are
therefore cut to the best ``--max-masks`` (100) masks before CLIP scores their crops, so CLIP does
the amount of work a real run does: the reference after generating (it has no such setting), the
fast generator before upsampling (its ``max_masks`` setting). Mask agreement between the
reference and the fast run at the same grid is reported on the masks both kept (IoU >= 0.9).

Usage: ``nice -n 5 python benchmarks/bench_amg.py [--ref-points-per-side 32] [--skip-reference]
[--max-masks 100] [--tiny]``; writes ``benchmarks/results/bench_amg.json``. Single runs on a shared
2-CPU machine: the load average is recorded before and after each run, and beside each wall time
the process CPU time (``cpu_s``: all threads; a quiet 2-core machine's wall time lies between CPU / 2
and CPU: the ViT-B encoder here takes 26 s CPU and took 19-26 s wall when quiet), which a
busy machine inflates much less than the wall time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("TEXT2SEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "bench_amg.json"
CLASSES = "building: building, roof\nroad: road, street\nwater: water, river"


class Timed:
    """Wraps a mask generator: times ``generate`` and keeps its last output (cut to ``cap``)."""

    def __init__(self, gen: Any, cap: int | None) -> None:
        self.gen, self.cap, self.name = gen, cap, gen.name
        self.seconds, self.cpu_seconds, self.last, self.raw_count = 0.0, 0.0, [], 0

    def generate(self, image: np.ndarray) -> list:
        start, cpu_start = time.perf_counter(), time.process_time()
        masks = self.gen.generate(image)
        self.seconds, self.cpu_seconds = time.perf_counter() - start, time.process_time() - cpu_start
        self.raw_count = len(masks)
        self.last = masks[:self.cap] if self.cap else masks
        return self.last


def build(tiny: bool) -> tuple[Any, Any]:
    from segment_anything import sam_model_registry

    from text2seg_widgets.models.sam import SamSegmenter
    from text2seg_widgets.models.tiny import tiny_clip, tiny_sam_segmenter

    torch.manual_seed(0)
    if tiny:
        return tiny_sam_segmenter(), tiny_clip()
    import open_clip

    from text2seg_widgets.models.clip import OpenClipScorer

    seg = SamSegmenter(sam_model_registry["vit_b"](checkpoint=None), name="random-sam-vit-b", device="cpu")
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-16", pretrained=None)
    clip = OpenClipScorer(model, preprocess, open_clip.get_tokenizer("ViT-B-16"), name="random-clip-vit-b-16",
                          device="cpu")
    return seg, clip


def agreement(a: list, b: list, thresh: float = 0.9) -> dict[str, Any]:
    """Share of masks of ``a`` with a mask of ``b`` at IoU >= thresh, and vice versa."""
    def best(xs: list, ys: list) -> list[float]:
        out = []
        for x in xs:
            ious = [float((x.mask & y.mask).sum()) / max(1.0, float((x.mask | y.mask).sum())) for y in ys]
            out.append(max(ious, default=0.0))
        return out
    ab, ba = best(a, b), best(b, a)
    return {"iou_threshold": thresh, "reference_matched": f"{sum(v >= thresh for v in ab)}/{len(ab)}",
            "fast_matched": f"{sum(v >= thresh for v in ba)}/{len(ba)}",
            "reference_min_best_iou": round(min(ab, default=1.0), 3), "fast_min_best_iou": round(min(ba, default=1.0), 3)}


def run_one(label: str, gen: Any, rgb: np.ndarray, ctx: Any, encode_s: float, cap: int | None,
            settings: dict[str, Any]) -> tuple[dict[str, Any], list]:
    from text2seg_widgets.pipeline.branches import run_filter

    timed = Timed(gen, None if settings.get("max_masks") else cap)
    ctx.models.mask_generator = timed
    load_before = os.getloadavg()
    start, cpu_start = time.perf_counter(), time.process_time()
    with torch.inference_mode():
        cands = run_filter(rgb, ctx)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    row = {"run": label, "settings": settings, "filter_s": round(wall, 2), "generate_s": round(timed.seconds, 2),
           "clip_and_rest_s": round(wall - timed.seconds, 2), "with_encoder_s": round(wall + encode_s, 2),
           "cpu_s": round(cpu, 1), "generate_cpu_s": round(timed.cpu_seconds, 1),
           "masks_generated": timed.raw_count, "masks_scored": len(timed.last), "candidates": len(cands),
           "load_avg_before": [round(v, 2) for v in load_before],
           "load_avg_after": [round(v, 2) for v in os.getloadavg()]}
    print(f"{label:18s} filter {wall:8.1f} s wall, {cpu:8.1f} s CPU  (generate {timed.seconds:8.1f} s)  masks {timed.raw_count} -> "
          f"{len(timed.last)}  load {row['load_avg_after']}", flush=True)
    return row, timed.last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--points-per-side", type=int, default=32)
    ap.add_argument("--ref-points-per-side", type=int, default=None, help="reference grid (default: --points-per-side)")
    ap.add_argument("--max-masks", type=int, default=100)
    ap.add_argument("--skip-reference", action="store_true")
    ap.add_argument("--pred-iou-thresh", type=float, default=0.0)
    ap.add_argument("--stability-score-thresh", type=float, default=0.0)
    ap.add_argument("--no-cpu-default", action="store_true", help="skip the run at the CPU default grid")
    ap.add_argument("--tiny", action="store_true", help="tiny random models: a quick check of this script")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    from PIL import Image

    from text2seg_widgets.models.fast_amg import FastMaskGenerator, amg_defaults
    from text2seg_widgets.models.modelset import ModelSet
    from text2seg_widgets.models.sam import SamMaskGenerator
    from text2seg_widgets.pipeline import ClassSet
    from text2seg_widgets.pipeline.branches import BranchContext
    from text2seg_widgets.pipeline.config import PipelineConfig

    tile = SHARED / "rs-samples" / "loveda" / "images" / "0.png"
    rgb = np.asarray(Image.open(tile).convert("RGB"))
    seg, clip = build(args.tiny)
    classes = ClassSet.parse(CLASSES, background=True)
    ctx = BranchContext(ModelSet(segmenter=seg, clip=clip), classes, PipelineConfig(), prompt_rows=classes.prompt_table())
    ctx.text_features = np.asarray(clip.encode_text([p for _, p in ctx.prompt_rows]), dtype=np.float64)
    start, cpu_start = time.perf_counter(), time.process_time()
    seg.set_image(rgb)
    encode_s, encode_cpu = time.perf_counter() - start, time.process_time() - cpu_start
    print(f"encode {encode_s:.1f} s wall, {encode_cpu:.1f} s CPU  load {os.getloadavg()}", flush=True)
    pps, ref_pps = args.points_per_side, args.ref_points_per_side or args.points_per_side
    doc: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(), "python": platform.python_version(),
                    "torch": torch.__version__, "device": "cpu", "nice": os.nice(0)},
        "tile": str(tile.relative_to(SHARED)), "tile_px": list(rgb.shape[:2]),
        "models": {"sam": seg.name, "clip": clip.name}, "max_masks": args.max_masks,
        "encode_s": round(encode_s, 2), "encode_cpu_s": round(encode_cpu, 1), "runs": [],
    }

    def save() -> None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(doc, indent=2))

    common = dict(pred_iou_thresh=args.pred_iou_thresh, stability_score_thresh=args.stability_score_thresh,
                  box_nms_thresh=0.7)
    cpu = amg_defaults("cpu")["points_per_side"]
    grids = [("fast", pps)] + ([("fast-cpu-default", cpu)] if cpu != pps and not args.no_cpu_default else [])
    fast_masks: dict[int, list] = {}
    for label, grid in grids:
        gen = FastMaskGenerator(seg, points_per_side=grid, crop_n_layers=0, max_masks=args.max_masks, **common)
        row, fast_masks[grid] = run_one(label, gen, rgb, ctx, encode_s, args.max_masks,
                                        {"points_per_side": grid, "crop_n_layers": 0, "max_masks": args.max_masks,
                                         **common})
        doc["runs"].append(row)
        save()
    if not args.skip_reference:
        ref = SamMaskGenerator(seg, points_per_side=ref_pps, full_resolution=True, **common)
        row, ref_masks = run_one("reference", ref, rgb, ctx, encode_s, args.max_masks,
                                 {"points_per_side": ref_pps, "crop_n_layers": 0, "full_resolution": True, **common})
        doc["runs"].append(row)
        same = next((r for r in doc["runs"] if r["run"] != "reference"
                     and r["settings"]["points_per_side"] == ref_pps), None)
        if same is not None:
            doc["agreement_reference_vs_fast_same_grid"] = agreement(ref_masks, fast_masks[ref_pps])
            ratio = row["filter_s"] / max(same["filter_s"], 1e-9)
            doc["reference_over_fast_same_grid"] = {"points_per_side": ref_pps, "ratio": round(ratio, 1)}
            print(f"reference / fast at {ref_pps} points per side = {ratio:.1f}x; "
                  f"agreement {doc['agreement_reference_vs_fast_same_grid']}", flush=True)
        save()
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
