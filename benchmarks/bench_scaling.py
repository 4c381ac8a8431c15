"""Throughput of batch pseudo-labelling: the local engine vs the Ray engine with 1 and 2 workers.

Same images for every engine: ``--images`` real EPFL road tiles (400 x 400 px, one tile each)
from ``../shared/data/rs-samples``, tiny models, the detector and heatmap branches. Each engine
writes into its own fresh project. Reported per engine: wall time of ``engine.run`` and tiles/s.
For the local engine the model load is timed apart (it happens once per process); the Ray
engine's wall time includes starting its actor pool and loading one model replica per actor
(Ray Data builds a new pool for each run), but not ``ray.init`` (once per driver, timed apart).
The candidates of every engine are checked to be identical.

Usage: ``python benchmarks/bench_scaling.py [--images 12]``; prints a table and writes
``benchmarks/results/bench_scaling.json``. On this 2-CPU machine two workers get half a CPU each
(see DESIGN.md); the number to look at on a cluster is how tiles/s grows with workers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("TEXT2SEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "bench_scaling.json"


def settings() -> Any:
    from text2seg_widgets.engines import BatchSettings
    from text2seg_widgets.pipeline import ClassSet, PipelineConfig

    return BatchSettings(ClassSet.parse("building,road", background=True), models="tiny", device="cpu",
                         config=PipelineConfig(branches=("detector", "heatmap")))


def project_with(folder: Path, images: list[Path]) -> Path:
    from text2seg_widgets.store import Project

    with Project.create(folder) as project:
        for path in images:
            project.add_image(path)
    return folder


def candidates(folder: Path) -> list[tuple]:
    from text2seg_widgets.store import Project

    with Project.open(folder) as project:
        return sorted((Path(project.image(c.image_id).path).name, c.class_name, c.candidate.rle["counts"])
                      for c in project.candidates())


def timed_run(engine: Any, folder: Path) -> tuple[Any, float]:
    from text2seg_widgets.store import Project

    with Project.open(folder) as project:
        start = time.perf_counter()
        report = engine.run(project)
        return report, time.perf_counter() - start


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()

    import ray

    from text2seg_widgets.engines import LocalEngine, RayEngine
    from text2seg_widgets.engines.ray_engine import init_local

    images = sorted((SHARED / "rs-samples" / "epfl_roads" / "images").glob("*.png"))[:args.images]
    rows: list[dict[str, Any]] = []
    results: dict[str, list[tuple]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        local = LocalEngine(settings(), progress=False)
        start = time.perf_counter()
        _ = local.runner
        load_s = time.perf_counter() - start
        folder = project_with(Path(tmp) / "local", images)
        report, wall = timed_run(local, folder)
        rows.append({"engine": "local", "workers": 1, "wall_s": round(wall, 2), "model_load_s": round(load_s, 2),
                     "tiles": report.tiles, "tiles_per_s": round(report.tiles / wall, 3)})
        results["local"] = candidates(folder)
        start = time.perf_counter()
        init_local(ray)
        init_s = time.perf_counter() - start
        for workers in (1, 2):
            folder = project_with(Path(tmp) / f"ray{workers}", images)
            report, wall = timed_run(RayEngine(settings(), workers=workers, progress=False), folder)
            rows.append({"engine": "ray", "workers": workers, "wall_s": round(wall, 2), "ray_init_s": round(init_s, 2),
                         "tiles": report.tiles, "tiles_per_s": round(report.tiles / wall, 3)})
            results[f"ray{workers}"] = candidates(folder)
        ray.shutdown()
    same = all(v == results["local"] for v in results.values())
    for r in rows:
        print(f"{r['engine']:6s} x{r['workers']}  {r['tiles']:3d} tiles  {r['wall_s']:7.2f} s  "
              f"{r['tiles_per_s']:.3f} tiles/s")
    print(f"identical candidates across engines: {same}")
    doc = {"when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "machine": {"cpus": os.cpu_count(), "load_avg": os.getloadavg(), "python": platform.python_version()},
           "images": len(images), "image_px": [400, 400], "models": "tiny", "branches": ["detector", "heatmap"],
           "runs": rows, "identical_candidates": same}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
