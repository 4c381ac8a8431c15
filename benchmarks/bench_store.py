"""Project store and export benchmark (issue 4).

Measures:

1. actions per second the store sustains: a mixed series of user actions (accept, reject,
   relabel, edit mask, add manual mask) on a 512 x 512 image, each one committed transaction
   (WAL; synchronous=FULL, the default, and NORMAL), plus the undo/redo rate;
2. export time for 10,000 annotations: COCO (RLE and polygons), semantic dataset, vectors;
3. the crash soak: SIGKILL a child doing actions at random moments (``--kills``, default 300),
   reopen after each kill and count acknowledged actions lost (must be 0);
4. restore under misuse (issue 15): SIGKILL a child restoring a backup at random moments
   (``--restore-kills``, default 100): after each kill the project must open whole, holding either
   the backup's or the live state; and restores attempted while a session has the project open
   (all refused, the session's writes all kept);
5. two ``pseudo-label`` processes started at once on one project (``--pl-pairs`` rounds, tiny
   models, four real tiles and sixteen windows): candidates stored versus one uninterrupted run
   (duplicates must be 0), and how the images were split between the two processes.

    .venv/bin/python benchmarks/bench_store.py                 # everything (several minutes)
    .venv/bin/python benchmarks/bench_store.py --kills 30 --annotations 2000 --restore-kills 20 --pl-pairs 2

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


_RESTORE_CHILD = """
import sys
from text2seg_widgets.store import restore_backup
flip = [sys.argv[2], sys.argv[3]]
k = 0
while True:
    restore_backup(sys.argv[1], flip[k % 2], yes=True)
    k += 1
"""


def bench_restore(folder: Path, kills: int, seed: int = 11) -> dict[str, Any]:
    """Kill restores at random moments; restore while a session is open (see the module doc)."""
    import os
    import signal
    import subprocess

    from tests.store.helpers import rect, write_png
    from text2seg_widgets.errors import InputError
    from text2seg_widgets.store import Project

    rng = np.random.default_rng(seed)
    p = Project.create(folder / "restore", classes=["building"])
    rec = p.add_image(write_png(folder / "r.png", 256, 256))
    items = [{"image_id": rec.id, "mask": rect(256, 256, k % 200, 0, k % 200 + 20, 30 + k % 100),
              "class_name": "building"} for k in range(300)]
    p.add_annotations(items[:100])
    small = p.backup(folder / "small.sqlite")
    p.add_annotations(items[100:])
    large = p.backup(folder / "large.sqlite")
    refused = kept = 0
    for k in range(10):  # a session writes while restores are attempted
        try:
            from text2seg_widgets.store import restore_backup

            restore_backup(folder / "restore", small, yes=True)
        except InputError:
            refused += 1
        p.add_annotation(rec.id, rect(256, 256, 0, 0, 5 + k, 5), "building")
    kept = len(p.annotations())
    p.close()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    whole = other = 0
    start = time.perf_counter()
    for _ in range(kills):
        child = subprocess.Popen([sys.executable, "-c", _RESTORE_CHILD, str(folder / "restore"), str(small),
                                  str(large)], env=env, cwd=ROOT)
        time.sleep(float(rng.uniform(0.3, 1.5)))
        child.send_signal(signal.SIGKILL)
        child.wait()
        with Project.open(folder / "restore") as q:
            n = len(q.annotations())
            ok = q.integrity_check() == "ok"
        whole += ok and n in (100, 300, 310)
        other += not (ok and n in (100, 300, 310))
    return {"kills": kills, "whole_after_kill": whole, "missing_or_wrong_after_kill": other,
            "restores_while_open": 10, "refused_while_open": refused,
            "session_writes_kept": kept == 310, "seconds": round(time.perf_counter() - start, 1)}


def bench_two_pseudo_label_runs(folder: Path, rounds: int) -> dict[str, Any]:
    """Two `pseudo-label` processes at once, ``rounds`` times, against one uninterrupted run."""
    import subprocess

    from tests.engines.helpers import CLI_OPTIONS, candidates_by_path, new_project

    samples = ROOT.parent / "shared" / "data" / "rs-samples"
    images = [samples / "epfl_roads" / "images" / "satImage_001.png",
              samples / "epfl_roads" / "images" / "satImage_002.png",
              *sorted((samples / "potsdam" / "images").glob("*.png"))[:1],
              samples / "loveda" / "images" / "0.png"]
    cmd = [sys.executable, "-c", "from text2seg_widgets.cli import main; main()", "pseudo-label"]

    def run(project: Path, n: int) -> list[dict[str, Any]]:
        procs = [subprocess.Popen([*cmd, str(project), *CLI_OPTIONS, "--no-progress"], cwd=ROOT,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(n)]
        outs = []
        for proc in procs:
            out, err = proc.communicate()
            if proc.returncode != 0:
                raise RuntimeError(err.decode()[-2000:])
            text = out.decode()
            outs.append(json.loads(text[text.index("{"):]))
        return outs

    def project_of(name: str) -> Path:
        """The four tiles plus sixteen 256 px windows of the LoveDA tile: enough work to share."""
        from text2seg_widgets.store import Project

        path = new_project(folder / name, images)
        with Project.open(path) as p:
            for row in range(0, 1024, 256):
                for col in range(0, 1024, 256):
                    p.add_image(images[-1], window=(col, row, 256, 256))
        return path

    reference = project_of("pl-ref")
    run(reference, 1)
    expected = candidates_by_path(reference)
    stored = duplicates = identical = shared = 0
    split: list[list[int]] = []
    start = time.perf_counter()
    for r in range(rounds):
        project = project_of(f"pl-{r}")
        a, b = run(project, 2)
        split.append([a["images_done"], b["images_done"]])
        got = candidates_by_path(project)
        stored += sum(len(v) for v in got.values())
        duplicates += sum(len(v) for v in got.values()) - sum(len(v) for v in expected.values())
        identical += got == expected
        shared += a["images_done"] > 0 and b["images_done"] > 0
    return {"rounds": rounds, "images": len(images) + 16, "images_done_per_process": split,
            "candidates_expected_per_round":
            sum(len(v) for v in expected.values()), "candidates_stored": stored,
            "duplicates": duplicates, "rounds_identical_to_one_run": identical,
            "rounds_where_both_processes_did_work": shared, "seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=3000)
    parser.add_argument("--annotations", type=int, default=10000)
    parser.add_argument("--kills", type=int, default=300)
    parser.add_argument("--restore-kills", type=int, default=100)
    parser.add_argument("--pl-pairs", type=int, default=5)
    parser.add_argument("--only", choices=["restore", "pseudo-label"], default=None,
                        help="Run one of the issue-15 scenarios alone (merged into the saved JSON).")
    args = parser.parse_args()
    if args.only is not None:
        saved = json.loads(RESULT.read_text()) if RESULT.is_file() else {}
        with tempfile.TemporaryDirectory() as d:
            if args.only == "restore":
                saved["restore_soak"] = bench_restore(Path(d), args.restore_kills)
            else:
                saved["two_pseudo_label_runs"] = bench_two_pseudo_label_runs(Path(d), args.pl_pairs)
        RESULT.write_text(json.dumps(saved, indent=2))
        print(json.dumps(saved, indent=2))
        return
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        result = {"machine": {"python": platform.python_version(), "cpus": __import__("os")
                              .cpu_count(), "platform": platform.platform()},
                  "store_actions": bench_actions(folder, args.actions),
                  "store_actions_normal_sync": bench_actions(folder, args.actions, "NORMAL"),
                  "exports": bench_exports(folder, args.annotations),
                  "crash_soak": bench_crash(folder, args.kills),
                  "restore_soak": bench_restore(folder, args.restore_kills),
                  "two_pseudo_label_runs": bench_two_pseudo_label_runs(folder, args.pl_pairs)}
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
