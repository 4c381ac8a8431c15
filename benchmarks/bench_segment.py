"""CPU and wall time of one `segment` call (segment_scene) on a real 1024 px LoveDA tile.

Two model sets: the tiny random models (all four branches) and LiteMedSAM, the one real SAM-family
checkpoint that installs offline, behind a tiny Grounding DINO (LiteMedSAM takes boxes only, so it
serves the detector branch). Model loading is timed separately from the call itself.

Usage: python benchmarks/bench_segment.py [--repeat N]; saves benchmarks/results/bench_segment.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import torch

from text2seg_widgets.models.factory import load_models
from text2seg_widgets.pipeline import ClassSet, PipelineConfig, Text2SegPipeline
from text2seg_widgets.engines.scene import segment_scene

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("TEXT2SEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
TILE = DATA / "rs-samples" / "loveda" / "images" / "0.png"
SETS = {
    "tiny (all branches)": ("tiny", PipelineConfig()),
    "litemedsam + tiny detector": ({"segmenter": "litemedsam", "detector": "tiny"},
                                   PipelineConfig(branches="detector", box_threshold=0.0, text_threshold=0.0)),
}


def measure(models_spec, config: PipelineConfig, repeat: int) -> dict:
    t0 = time.perf_counter()
    models = load_models(models_spec, device="cpu")
    load_s = time.perf_counter() - t0
    pipe = Text2SegPipeline(models, ClassSet.parse("building,road,water", background=True), config)
    runs = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            cpu0, wall0 = time.process_time(), time.perf_counter()
            result = segment_scene(TILE, pipe, out, progress=False)
            runs.append({"wall_s": time.perf_counter() - wall0, "cpu_s": time.process_time() - cpu0,
                         "candidates": result.n_candidates})
    return {"load_s": round(load_s, 2), "branches": list(pipe.branches),
            "wall_s": [round(r["wall_s"], 2) for r in runs], "cpu_s": [round(r["cpu_s"], 2) for r in runs],
            "candidates": runs[-1]["candidates"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if not TILE.is_file():
        raise SystemExit(f"sample tile not found: {TILE} (set TEXT2SEG_SHARED_DATA)")
    results = {name: measure(spec, cfg, args.repeat) for name, (spec, cfg) in SETS.items()}
    report = {"tile": str(TILE.relative_to(DATA)), "size": "1024x1024", "threads": torch.get_num_threads(),
              "cpu": platform.processor() or platform.machine(), "results": results}
    out = ROOT / "benchmarks" / "results" / "bench_segment.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"{'model set':32} {'load s':>7} {'wall s':>14} {'cpu s':>14} candidates")
    for name, r in results.items():
        print(f"{name:32} {r['load_s']:7.1f} {str(r['wall_s']):>14} {str(r['cpu_s']):>14} {r['candidates']}")
    print(f"saved {out}")


if __name__ == "__main__":
    main()
