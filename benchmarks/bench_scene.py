"""Peak memory and wall time of ``segment_scene`` on generated scenes of growing size.

Each size runs in its own subprocess (so peak RSS is that run's own), on a GeoTIFF generated
window by window (the generator never holds the scene). The goal (issue 3): peak RSS at 20k within
1.5x of the 2k run, and time growing linearly with the pixel count.

    .venv/bin/python benchmarks/bench_scene.py                     # tiny models, heatmap branch
    .venv/bin/python benchmarks/bench_scene.py --pipeline fake     # no models: I/O + stitching only
    .venv/bin/python benchmarks/bench_scene.py --sizes 2000 8000

Saves ``benchmarks/results/bench_scene.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULT = ROOT / "benchmarks" / "results" / "bench_scene.json"


def generate_scene(path: Path, side: int, block: int = 1024) -> Path:
    """A 3-band uint8 UTM GeoTIFF: a grid of bright 'buildings' and a 'road' every 1000 px."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = dict(driver="GTiff", width=side, height=side, count=3, dtype="uint8", crs="EPSG:32633",
                   transform=from_origin(500000.0, 5000000.0, 0.5, 0.5), tiled=True, blockxsize=256,
                   blockysize=256, compress="deflate", BIGTIFF="IF_SAFER")
    with rasterio.open(path, "w", **profile) as ds:
        for top in range(0, side, block):
            h = min(block, side - top)
            rows = np.arange(top, top + h)[:, None]
            cols = np.arange(side)[None, :]
            building = ((rows % 300) < 120) & ((cols % 300) < 160)
            road = ((rows % 1000) < 24) | ((cols % 1000) < 24)
            red = np.where(building, 210, np.where(road, 120, 60)).astype(np.uint8)
            green = np.where(building, 90, np.where(road, 120, 140)).astype(np.uint8)
            blue = np.where(building, 80, np.where(road, 120, 70)).astype(np.uint8)
            ds.write(np.stack([red, green, blue]), window=Window(0, top, side, h))
    return path


class _FakePipeline:
    """Thresholds the red band: the run's cost without any model (I/O, stitching, merging)."""

    def __init__(self) -> None:
        self.classes = SimpleNamespace(names=["building"], colors=[(230, 25, 75)])

    def run(self, rgb: np.ndarray) -> SimpleNamespace:
        from scipy import ndimage

        from text2seg_widgets.imagery.instances import crop_to_scene_rle
        from text2seg_widgets.core import Candidate, rle_bbox

        fg = rgb[..., 0] >= 200
        blobs, _ = ndimage.label(fg)
        cands = []
        h, w = fg.shape
        for i, sl in enumerate(ndimage.find_objects(blobs), start=1):
            crop = blobs[sl] == i  # RLE straight from the crop: no tile-sized array per blob
            rle = crop_to_scene_rle(crop, sl[1].start, sl[0].start, h, w)
            cands.append(Candidate("building", rle, rle_bbox(rle), int(crop.sum()), 0.9, "filter"))
        scores = np.stack([np.full(fg.shape, 0.5, np.float32), fg.astype(np.float32)])
        return SimpleNamespace(candidates=cands, label_map=fg.astype(np.uint8), score_maps=scores)


def _rss_mb() -> float:
    """Peak RSS of this process image (VmHWM). ru_maxrss is not used: on Linux it keeps the
    parent's peak across fork + exec, so the generator's memory would leak into the number."""
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def child(args: argparse.Namespace) -> None:
    """One measured run (in its own process); prints one JSON line."""
    import logging

    logging.disable(logging.WARNING)
    from text2seg_widgets.engines.scene import segment_scene

    if args.pipeline == "fake":
        pipe = _FakePipeline()
    else:
        from text2seg_widgets.models.tiny import tiny_model_set
        from text2seg_widgets.pipeline import ClassSet, PipelineConfig, Text2SegPipeline

        branches = "auto" if args.branches == "auto" else tuple(args.branches.split(","))
        pipe = Text2SegPipeline(tiny_model_set(), ClassSet.from_names(["building", "road"]),
                                PipelineConfig(branches=branches))
        pipe.run(np.zeros((64, 64, 3), np.uint8))  # warm up: text features, lazy imports
    rss_ready = _rss_mb()
    start = time.perf_counter()
    out = segment_scene(args.scene, pipe, args.out, tile_size=args.tile_size, overlap=args.overlap,
                        progress=False)
    wall = time.perf_counter() - start
    print(json.dumps({"wall_s": round(wall, 2), "peak_rss_mb": round(_rss_mb(), 1),
                      "rss_before_run_mb": round(rss_ready, 1), "n_tiles": out.n_tiles,
                      "n_candidates": out.n_candidates}))


def run_size(side: int, args: argparse.Namespace, work: Path) -> dict:
    t0 = time.perf_counter()
    scene = generate_scene(work / f"scene_{side}.tif", side)
    gen_s = time.perf_counter() - t0
    cmd = [sys.executable, __file__, "--child", "--scene", str(scene), "--out", str(work / f"out_{side}"),
           "--pipeline", args.pipeline, "--branches", args.branches, "--tile-size", str(args.tile_size),
           "--overlap", str(args.overlap)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"run for {side} px failed:\n{proc.stderr[-3000:]}")
    rec = json.loads(proc.stdout.strip().splitlines()[-1])
    processed = rec["n_tiles"] * min(args.tile_size, side) ** 2 / 1e6  # overlaps counted twice
    rec.update(side=side, megapixels=round(side * side / 1e6, 2), generate_s=round(gen_s, 1),
               s_per_megapixel=round(rec["wall_s"] / (side * side / 1e6), 4),
               processed_megapixels=round(processed, 1), s_per_processed_megapixel=round(rec["wall_s"] / processed, 4),
               scene_file_mb=round(scene.stat().st_size / 2**20, 1))
    scene.unlink()
    return rec


def format_table(rows: list[dict]) -> str:
    lines = [f"{'side':>6} {'Mpx':>7} {'tiles':>5} {'wall s':>8} {'s/Mpx':>7} {'s/tile-Mpx':>10} "
             f"{'peak RSS MB':>11} {'before MB':>9} {'RSS x':>6}"]
    for r in rows:
        lines.append(f"{r['side']:>6} {r['megapixels']:>7} {r['n_tiles']:>5} {r['wall_s']:>8} "
                     f"{r['s_per_megapixel']:>7} {r.get('s_per_processed_megapixel', ''):>10} "
                     f"{r['peak_rss_mb']:>11} {r['rss_before_run_mb']:>9} {r['rss_vs_first']:>6}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", type=int, nargs="+", default=[2000, 8000, 20000])
    ap.add_argument("--pipeline", choices=["tiny", "fake"], default="tiny")
    ap.add_argument("--branches", default="heatmap", help="tiny pipeline branches ('auto' = all four)")
    ap.add_argument("--tile-size", type=int, default=2048)
    ap.add_argument("--overlap", type=int, default=128)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--scene", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child(args)
        return
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench_scene_") as tmp:
        for side in args.sizes:
            rows.append(run_size(side, args, Path(tmp)))
            print(f"done {side} px: {rows[-1]}", file=sys.stderr)
    base = rows[0]
    for r in rows:
        r["rss_vs_first"] = round(r["peak_rss_mb"] / base["peak_rss_mb"], 3)
        r["time_per_px_vs_first"] = round(r["s_per_megapixel"] / base["s_per_megapixel"], 3)
    result = {"benchmark": "segment_scene peak RSS and wall time", "pipeline": args.pipeline,
              "branches": args.branches if args.pipeline == "tiny" else None, "tile_size": args.tile_size,
              "overlap": args.overlap, "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
              "goal": "peak RSS at the largest size <= 1.5x the smallest; s/Mpx roughly constant",
              "rss_goal_met": rows[-1]["rss_vs_first"] <= 1.5, "runs": rows}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2))
    print(format_table(rows))
    print(f"saved {RESULT}")


if __name__ == "__main__":
    main()
