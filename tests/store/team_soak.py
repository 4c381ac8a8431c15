"""A team at work on one project, as separate processes, with faults: the harness of the team
soak test (tests/store/test_team_soak.py) and benchmark (benchmarks/bench_team.py).

Each annotator process loops: *Next* (a leased image), accept or reject every proposed candidate,
sometimes draw a mask, finish the image. A reviewer process approves or returns finished images.
Every action the store acknowledged (the call returned) is written to the process's journal
right after, one line, flushed; a process killed with SIGKILL loses at most the action it was in,
which was never acknowledged. :func:`verify` then checks every acknowledged action against the
database, and the store's integrity checks.

``python -m tests.store.team_soak annotator|reviewer LOCATION NAME JOURNAL SEED STOP_AT``
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from text2seg_widgets import Candidate
from text2seg_widgets.store import ConflictError, Project
from text2seg_widgets.store.db import ConnectionLostError, ProjectBusyError
from tests.store.helpers import rect, write_png

__all__ = ["setup_project", "Team", "verify", "journal_stats", "ROOT"]

ROOT = Path(__file__).resolve().parents[2]
H, W = 64, 80


def setup_project(location: str | Path, folder: Path, *, images: int, annotators: list[str],
                  candidates: int = 6, assigned_share: float = 0.5) -> None:
    """A team project: ``images`` small images with ``candidates`` proposals each; members boss
    (manager), the annotators, rev (reviewer); ``assigned_share`` of the images assigned, the rest
    in the pool."""
    folder.mkdir(parents=True, exist_ok=True)
    p = Project.create(location, classes=["building", "road"], user="boss")
    recs = p.add_images_checked([write_png(folder / f"img{i:04d}.png", H, W, seed=i)
                                 for i in range(images)]).added
    for rec in recs:
        cands = [Candidate.from_mask(rect(H, W, 2 + 9 * (k % 6), 2 + 12 * (k // 6),
                                          9 + 9 * (k % 6), 12 + 12 * (k // 6)),
                                     class_name="building" if k % 2 else "road",
                                     score=0.5 + 0.05 * k, branch="detector")
                 for k in range(candidates)]
        p.add_candidates(rec.id, cands)
    p.set_member("boss", "manager")
    for name in annotators:
        p.set_member(name, "annotator", user="boss")
    p.set_member("rev", "reviewer", user="boss")
    share = [r.id for r in recs[:int(len(recs) * assigned_share)]]
    if share:
        p.assign(annotators, image_ids=share, user="boss")
    p.close()


def _open(location: str, name: str, log: Any, stop_at: float) -> Project | None:
    """Open the project, retrying while the server is down (each failure one journal line)."""
    while time.time() < stop_at:
        try:
            return Project.open(location, user=name, busy_timeout_s=5.0)
        except Exception as exc:  # noqa: BLE001 - reported, retried
            log.write(f"open-failed {type(exc).__name__}: {str(exc).splitlines()[0][:200]}\n")
            time.sleep(0.5)
    return None


def annotator(location: str, name: str, journal: str, seed: int, stop_at: float) -> None:
    rng = random.Random(seed)
    with open(journal, "a", buffering=1) as log:
        p = _open(location, name, log, stop_at)
        if p is None:
            return
        current: int | None = None
        reconnects = 0
        while time.time() < stop_at:
            if p.database.reconnects != reconnects:
                reconnects = p.database.reconnects
                log.write(f"reconnects {reconnects}\n")
            try:
                t0 = time.perf_counter()
                rec = p.next_assigned(after=current)
                log.write(f"next {rec.id if rec else '-'} {_ms(t0)}\n")
                if rec is None:
                    current = None
                    time.sleep(0.2)
                    continue
                current = rec.id
                for cand in p.candidates(rec.id, "proposed"):
                    t0 = time.perf_counter()
                    if rng.random() < 0.6:
                        ann = p.accept(cand.id)
                        log.write(f"acc {cand.id} {ann} {_ms(t0)}\n")
                    else:
                        p.reject(cand.id)
                        log.write(f"rej {cand.id} {_ms(t0)}\n")
                if rng.random() < 0.5:
                    t0 = time.perf_counter()
                    y = rng.randrange(0, H - 10)
                    ann = p.add_annotation(rec.id, rect(H, W, y, 60, y + 8, 75), "road")
                    log.write(f"ann {ann} {rec.id} {_ms(t0)}\n")
                t0 = time.perf_counter()
                p.finish_image(rec.id)
                log.write(f"fin {rec.id} {_ms(t0)}\n")
            except (ConnectionLostError, ProjectBusyError) as exc:
                log.write(f"lost {str(exc)[:200]}\n")
                time.sleep(0.3)
            except ConflictError as exc:
                log.write(f"conflict {str(exc)[:160]}\n")
                current = None
        p.close()
        log.write("stopped\n")


def reviewer(location: str, name: str, journal: str, seed: int, stop_at: float) -> None:
    rng = random.Random(seed)
    with open(journal, "a", buffering=1) as log:
        p = _open(location, name, log, stop_at)
        if p is None:
            return
        while time.time() < stop_at:
            try:
                queue = p.review_queue()
                if not queue:
                    time.sleep(0.2)
                    continue
                rec = queue[0]
                t0 = time.perf_counter()
                if rng.random() < 0.3:
                    p.return_image(rec.id, "check the roads")
                    log.write(f"ret {rec.id} {_ms(t0)}\n")
                else:
                    p.approve_image(rec.id)
                    log.write(f"appr {rec.id} {_ms(t0)}\n")
            except (ConnectionLostError, ProjectBusyError) as exc:
                log.write(f"lost {str(exc)[:200]}\n")
                time.sleep(0.3)
            except Exception as exc:  # noqa: BLE001 - a verdict that lost a race: journal it
                log.write(f"conflict {type(exc).__name__}: {str(exc)[:160]}\n")
        p.close()
        log.write("stopped\n")


def _ms(t0: float) -> str:
    return f"{(time.perf_counter() - t0) * 1000:.2f}"


@dataclass
class Team:
    """The processes of one run, with their journals (kill -9 and restart them by name)."""

    location: str
    folder: Path
    stop_at: float
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    seeds: dict[str, int] = field(default_factory=dict)
    kills: int = 0

    def journal(self, name: str) -> Path:
        return self.folder / f"{name}.journal"

    def start(self, name: str, role: str = "annotator") -> None:
        self.seeds[name] = self.seeds.get(name, len(self.seeds) * 1000) + 1
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "tests.store.team_soak", role, self.location, name,
             str(self.journal(name)), str(self.seeds[name]), str(self.stop_at)],
            cwd=ROOT, env=env, stderr=open(self.folder / f"{name}.err", "ab"))

    def kill(self, name: str) -> None:
        proc = self.procs[name]
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            self.kills += 1
            with open(self.journal(name), "a") as log:
                log.write("killed\n")

    def wait(self, timeout: float) -> dict[str, int | None]:
        end = time.time() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(1.0, end - time.time()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return {n: p.returncode for n, p in self.procs.items()}


def _lines(folder: Path) -> list[list[str]]:
    out = []
    for path in sorted(folder.glob("*.journal")):
        out += [line.split() for line in path.read_text().splitlines() if line.strip()]
    return out


def journal_stats(folder: Path) -> dict[str, Any]:
    """Acknowledged actions and their latencies (ms) from every journal."""
    lat = [float(parts[-1]) for parts in _lines(folder)
           if parts[0] in ("acc", "rej", "ann", "fin", "appr", "ret", "next") and len(parts) >= 3]
    counts: dict[str, int] = {}
    for parts in _lines(folder):
        counts[parts[0]] = counts.get(parts[0], 0) + 1
    arr = np.asarray(lat) if lat else np.zeros(1)
    return {"actions": len(lat), "counts": counts,
            "latency_ms": {"p50": float(np.percentile(arr, 50)), "p95": float(np.percentile(arr, 95)),
                           "max": float(arr.max())}}


def verify(location: str | Path, folder: Path) -> dict[str, Any]:
    """Every acknowledged action against the database; returns what was checked and lost."""
    lost: list[str] = []
    with Project.open(location) as p:
        cands = {c.id: c.status for c in p.candidates()}
        anns = {a.id: a for a in p.annotations()}
        images = {r.id: r for r in p.images()}
        returned = {int(r[0]) for r in p.database.query(
            "SELECT image_id FROM review_events WHERE verdict = 'returned'")}
        checked = 0
        for parts in _lines(folder):
            kind = parts[0]
            if kind == "acc":
                checked += 1
                cid, aid = int(parts[1]), int(parts[2])
                if cands.get(cid) != "accepted" or aid not in anns or anns[aid].candidate_id != cid:
                    lost.append(" ".join(parts))
            elif kind == "rej":
                checked += 1
                if cands.get(int(parts[1])) != "rejected":
                    lost.append(" ".join(parts))
            elif kind == "ann":
                checked += 1
                if int(parts[1]) not in anns:
                    lost.append(" ".join(parts))
            elif kind == "fin":
                checked += 1
                image = images[int(parts[1])]
                if image.state != "done" and int(parts[1]) not in returned:
                    lost.append(" ".join(parts))
            elif kind == "appr":
                checked += 1
                if images[int(parts[1])].review != "approved":
                    lost.append(" ".join(parts))
            elif kind == "ret":
                checked += 1
                if int(parts[1]) not in returned:
                    lost.append(" ".join(parts))
        integrity = p.integrity_check()
    return {"checked": checked, "lost": lost, "integrity": integrity}


def live_double_leases(location: str | Path) -> int:
    """Images held by two live leases right now (outside consensus images)."""
    with Project.open(location) as p:
        held: dict[int, int] = {}
        for image_id, _user, _ in p.assignments.leases():
            held[image_id] = held.get(image_id, 0) + 1
        return sum(1 for n in held.values() if n > 1)


if __name__ == "__main__":
    role, location, name, journal, seed, stop_at = sys.argv[1:7]
    (annotator if role == "annotator" else reviewer)(location, name, journal, int(seed),
                                                      float(stop_at))
