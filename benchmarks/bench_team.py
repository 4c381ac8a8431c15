"""Team projects: PostgreSQL against SQLite on this machine, and the fault soak (issue 18).

1. Throughput and latency: 1, 4 and 8 annotator processes on one project (each: Next, accept or
   reject every candidate, sometimes draw, finish) plus one reviewer, for ``--seconds`` each, on
   SQLite (a folder) and on PostgreSQL 15 (a local server, fsync on): acknowledged actions per
   second and p50/p95 action latency.
2. The fault soak: 8 annotators and a reviewer on PostgreSQL for ``--soak-seconds``, a random
   annotator killed with SIGKILL every ``--kill-every`` seconds (restarted at once), the server
   crashed (``pg_ctl -m immediate``) and restarted once in the middle: acknowledged actions lost,
   moments with an image held by two leases, integrity, reconnects.
3. A 100,000-annotation project: built on SQLite, copied to PostgreSQL (``project copy``), COCO
   export from each (RLE, no image copies).

    .venv/bin/python benchmarks/bench_team.py
    .venv/bin/python benchmarks/bench_team.py --seconds 10 --soak-seconds 60 --annotations 20000

Saves ``benchmarks/results/bench_team.json`` and prints it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the team harness lives in tests/store

from tests.store.helpers import write_png  # noqa: E402
from tests.store.team_soak import (Team, journal_stats, live_double_leases, setup_project,  # noqa: E402
                                   verify)
from text2seg_widgets.store import Project  # noqa: E402
from text2seg_widgets.store.localpg import LocalCluster, free_port  # noqa: E402


def _load() -> float:
    return round(os.getloadavg()[0], 2)


def throughput(cluster: LocalCluster, work: Path, seconds: float, sizes: list[int]) -> list[dict[str, Any]]:
    rows = []
    for db in ("sqlite", "postgresql"):
        for n in sizes:
            folder = work / f"tp-{db}-{n}"
            folder.mkdir()
            location = str(folder / "proj") if db == "sqlite" else cluster.url(f"tp_{n}_{free_port()}")
            names = [f"a{i}" for i in range(1, n + 1)]
            # enough images that nobody runs out of work before the time is up
            setup_project(location, folder / "imgs", images=int(30 * seconds) * n // max(1, n // 2),
                          annotators=names)
            team = Team(location, folder, stop_at=time.time() + seconds + 3)
            for name in names:
                team.start(name)
            team.start("rev", role="reviewer")
            load_before = _load()
            codes = team.wait(timeout=seconds + 120)
            stats = journal_stats(folder)
            check = verify(location, folder)
            row = {"database": db, "annotators": n, "seconds": seconds,
                   "actions": stats["actions"], "actions_per_s": round(stats["actions"] / seconds, 1),
                   "latency_ms": stats["latency_ms"], "images_finished": stats["counts"].get("fin", 0),
                   "lost": len(check["lost"]), "integrity": check["integrity"],
                   "exit_codes_ok": all(c == 0 for c in codes.values()),
                   "load_1min": [load_before, _load()]}
            print(json.dumps(row), flush=True)
            rows.append(row)
    return rows


def soak(work: Path, seconds: float, kill_every: float, annotators: int) -> dict[str, Any]:
    cluster = LocalCluster(work / "soak-pg", free_port())
    cluster.init()
    cluster.start()
    try:
        url = cluster.url("soak")
        folder = work / "soak"
        folder.mkdir()
        names = [f"a{i}" for i in range(1, annotators + 1)]
        setup_project(url, folder / "imgs", images=40 * annotators, annotators=names)
        team = Team(url, folder, stop_at=time.time() + seconds)
        for name in names:
            team.start(name)
        team.start("rev", role="reviewer")
        rng = random.Random(0)
        start = time.time()
        next_kill = kill_every
        restarted = False
        doubles = samples = 0
        restart_s = None
        while time.time() < team.stop_at - 2:
            elapsed = time.time() - start
            if elapsed >= next_kill:
                name = rng.choice(names)
                team.kill(name)
                team.start(name)
                next_kill += kill_every
            if not restarted and elapsed >= seconds / 2:
                t0 = time.perf_counter()
                cluster.restart(mode="immediate", down_s=2.0)
                restart_s = round(time.perf_counter() - t0, 2)
                restarted = True
            try:
                doubles += live_double_leases(url)
                samples += 1
            except Exception:  # noqa: BLE001 - the server is down for a moment
                pass
            time.sleep(0.5)
        codes = team.wait(timeout=120)
        stats = journal_stats(folder)
        check = verify(url, folder)
        text = "".join(team.journal(n).read_text() for n in names)
        result = {"annotators": annotators, "seconds": seconds, "kills": team.kills,
                  "server_restarts": 1 if restarted else 0, "server_down_and_up_s": restart_s,
                  "acknowledged_actions_checked": check["checked"], "lost": check["lost"],
                  "integrity": check["integrity"], "double_lease_samples": doubles,
                  "lease_samples": samples, "exit_codes": codes,
                  "clients_that_reported_the_loss": sum(
                      1 for n in names if any(w in team.journal(n).read_text()
                                              for w in ("reconnects", "lost", "open-failed"))),
                  "lost_messages": text.count("\nlost "), "reconnect_lines": text.count("reconnects "),
                  "actions": stats["actions"], "latency_ms": stats["latency_ms"],
                  "counts": stats["counts"], "load_1min": _load()}
        print(json.dumps({k: v for k, v in result.items() if k != "lost"}), flush=True)
        return result
    finally:
        cluster.remove()


def big_export(cluster: LocalCluster, work: Path, annotations: int) -> dict[str, Any]:
    from text2seg_widgets.export import export_coco
    from text2seg_widgets.store.projectcopy import copy_project

    folder = work / "big"
    folder.mkdir()
    per_image = 100
    images = annotations // per_image
    p = Project.create(folder / "proj", classes=["building", "road"], synchronous="NORMAL")
    recs = p.add_images_checked([write_png(folder / f"i{i:05d}.png", 256, 256, seed=i)
                                 for i in range(images)]).added
    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    for rec in recs:
        items = []
        for k in range(per_image):
            m = np.zeros((256, 256), bool)
            y, x = (int(v) for v in rng.integers(0, 230, 2))
            m[y:y + int(rng.integers(4, 26)), x:x + int(rng.integers(4, 26))] = True
            items.append({"image_id": rec.id, "mask": m, "class_name": "road" if k % 3 else "building"})
        p.add_annotations(items)
        p.set_state(rec.id, "done")
    build_s = time.perf_counter() - t0
    p.close()
    url = cluster.url(f"big_{free_port()}")
    t0 = time.perf_counter()
    copy_project(folder / "proj", url, image_root=folder)
    copy_s = time.perf_counter() - t0
    out: dict[str, Any] = {"annotations": images * per_image, "images": images,
                           "build_sqlite_s": round(build_s, 1), "copy_sqlite_to_postgresql_s": round(copy_s, 1)}
    for name, location in (("sqlite", str(folder / "proj")), ("postgresql", url)):
        with Project.open(location, image_root=folder) as q:
            t0 = time.perf_counter()
            manifest = export_coco(q, work / f"coco-{name}", images="none")
            out[f"coco_export_{name}_s"] = round(time.perf_counter() - t0, 1)
            out[f"coco_annotations_{name}"] = manifest["counts"]["annotations"]
    out["load_1min"] = _load()
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=20.0, help="Length of each throughput run.")
    ap.add_argument("--sizes", default="1,4,8", help="Annotator counts for the throughput runs.")
    ap.add_argument("--soak-seconds", type=float, default=180.0)
    ap.add_argument("--kill-every", type=float, default=6.0)
    ap.add_argument("--soak-annotators", type=int, default=8)
    ap.add_argument("--annotations", type=int, default=100_000, help="Size of the export project.")
    ap.add_argument("--skip", default="", help="Comma list of parts to skip: throughput,soak,export")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    results: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                                           "platform": platform.platform()}}
    with tempfile.TemporaryDirectory(prefix="bench-team-", dir="/tmp") as tmp:
        work = Path(tmp)
        os.chmod(work, 0o755)
        cluster = LocalCluster(work / "pg", free_port())
        cluster.init()
        cluster.start()
        try:
            if "throughput" not in skip:
                results["throughput"] = throughput(cluster, work, args.seconds,
                                                   [int(s) for s in args.sizes.split(",")])
            if "export" not in skip:
                results["export_100k"] = big_export(cluster, work, args.annotations)
        finally:
            cluster.remove()
        if "soak" not in skip:
            results["soak"] = soak(work, args.soak_seconds, args.kill_every, args.soak_annotators)
    out = ROOT / "benchmarks" / "results" / "bench_team.json"
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
