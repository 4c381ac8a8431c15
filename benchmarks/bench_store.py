"""Project store and export benchmark (issue 4).

Measures:

1. actions per second the store sustains: a mixed series of user actions (accept, reject,
   relabel, edit mask, add manual mask) on a 512 x 512 image, each one committed transaction
   (WAL; synchronous=FULL, the default, and NORMAL), plus the undo/redo rate;
2. export time for 10,000 annotations: COCO (RLE and polygons), semantic dataset, vectors;
3. the crash soak: SIGKILL a child doing actions at random moments (``--kills``, default 300),
   reopen after each kill and count acknowledged actions lost (must be 0).

    .venv/bin/python benchmarks/bench_store.py                 # everything (several minutes)
    .venv/bin/python benchmarks/bench_store.py --kills 30 --annotations 2000   # quick look

Saves ``benchmarks/results/bench_store.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the crash harness lives in tests/store

RESULT = ROOT / "benchmarks" / "results" / "bench_store.json"


def _mask(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), bool)
    y, x = rng.integers(0, h - 40), rng.integers(0, w - 40)
    m[y:y + rng.integers(4, 40), x:x + rng.integers(4, 40)] = True
    return m


def bench_actions(folder: Path, n: int, synchronous: str = "FULL") -> dict[str, Any]:
    from tests.store.helpers import write_png
    from text2seg_widgets import Candidate
    from text2seg_widgets.store import Project

    rng = np.random.default_rng(0)
    p = Project.create(folder / f"actions-{synchronous}", classes=["building", "road", "tree"],
                       synchronous=synchronous)
    rec = p.add_image(write_png(folder / "a.png", 512, 512))
    cands = [Candidate.from_mask(_mask(rng, 512, 512), class_name="building", score=0.5,
                                 branch="detector") for _ in range(n)]
    cand_ids = p.add_candidates(rec.id, cands)
    ann_ids: list[int] = []
    start = time.perf_counter()
    for i in range(n):
        kind = i % 6
        if kind in (0, 1) or not ann_ids:
            ann_ids.append(p.accept(cand_ids[i]))
        elif kind == 2:
            p.reject(cand_ids[i])
        elif kind == 3:
            p.relabel(ann_ids[-1], ("road", "tree")[i % 2])
        elif kind == 4:
            p.update_annotation_mask(ann_ids[-1], _mask(rng, 512, 512))
        else:
            ann_ids.append(p.add_annotation(rec.id, _mask(rng, 512, 512), "tree"))
    actions_s = time.perf_counter() - start
    start = time.perf_counter()
    undone = sum(p.undo() is not None for _ in range(min(500, n)))
    redone = sum(p.redo() is not None for _ in range(undone))
    undo_s = time.perf_counter() - start
    assert p.integrity_check() == "ok"
    p.close()
    return {"actions": n, "seconds": round(actions_s, 3),
            "actions_per_second": round(n / actions_s, 1),
            "undo_redo_per_second": round((undone + redone) / undo_s, 1),
            "synchronous": synchronous, "journal_mode": "WAL"}


def _big_project(folder: Path, n_annotations: int, per_image: int = 500) -> Any:
    from tests.store.helpers import write_geotiff
    from text2seg_widgets.store import Project

    rng = np.random.default_rng(1)
    p = Project.create(folder / "big", classes=["building", "road", "tree", "water"])
    n_images = max(1, n_annotations // per_image)
    for i in range(n_images):
        rec = p.add_image(write_geotiff(folder / f"img{i}.tif", 512, 512, seed=i))
        count = min(per_image, n_annotations - i * per_image)
        p.add_annotations([{"image_id": rec.id, "mask": _mask(rng, 512, 512),
                            "class_name": ("building", "road", "tree", "water")[k % 4],
                            "score": float(rng.random())} for k in range(count)])
        p.set_state(rec.id, "done")
    return p


def bench_exports(folder: Path, n_annotations: int) -> dict[str, Any]:
    from text2seg_widgets.export import export_coco, export_semantic, export_vectors

    start = time.perf_counter()
    p = _big_project(folder, n_annotations)
    build_s = time.perf_counter() - start
    assert len(p.annotations()) == n_annotations
    out: dict[str, Any] = {"annotations": n_annotations, "images": len(p.images()),
                           "build_project_seconds": round(build_s, 2)}
    runs = {"coco_rle": lambda o: export_coco(p, o),
            "coco_polygons": lambda o: export_coco(p, o, polygons=True),
            "semantic_png_geotiff": lambda o: export_semantic(p, o),
            "vectors_gpkg_geojson": lambda o: export_vectors(p, o)}
    for name, run in runs.items():
        start = time.perf_counter()
        manifest = run(folder / name)
        out[f"{name}_seconds"] = round(time.perf_counter() - start, 2)
        counts = manifest["counts"]
        if name.startswith("coco"):
            assert counts["annotations"] == n_annotations, counts
    p.close()
    return out


def bench_crash(folder: Path, kills: int) -> dict[str, Any]:
    from tests.store.crash_harness import make_project, run_kills

    project = folder / "crash"
    image_id = make_project(project, folder / "crash.png")
    start = time.perf_counter()
    result = run_kills(project, image_id, kills=kills, seed=7)
    result["seconds"] = round(time.perf_counter() - start, 1)
    result["kills_survived"] = kills if result["actions_lost"] == 0 else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=3000)
    parser.add_argument("--annotations", type=int, default=10000)
    parser.add_argument("--kills", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        result = {"machine": {"python": platform.python_version(), "cpus": __import__("os")
                              .cpu_count(), "platform": platform.platform()},
                  "store_actions": bench_actions(folder, args.actions),
                  "store_actions_normal_sync": bench_actions(folder, args.actions, "NORMAL"),
                  "exports": bench_exports(folder, args.annotations),
                  "crash_soak": bench_crash(folder, args.kills)}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
