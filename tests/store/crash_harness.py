"""Kill-at-random-points harness for the project store (used by the tests and the soak benchmark).

A child process runs a long series of user actions on a project and appends to an ack file
``B <action>`` before each action and ``A`` after the action's method returned (so after its
COMMIT). The parent SIGKILLs the child at a random moment, reopens the project and checks that
every acknowledged action is there, that the single in-flight action is either fully there or not
at all, and that ``PRAGMA integrity_check`` says ``ok``.

Run a child by hand: ``python -m tests.store.crash_harness PROJECT IMAGE_ID START ACK SEED``.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from text2seg_widgets.store import Project

__all__ = ["SIZE", "CLASSES", "mask_for", "make_project", "run_kills", "child_main"]

SIZE = 32
CLASSES = ("building", "road")
STATES = ("in progress", "done", "unreviewed")
ROOT = Path(__file__).resolve().parents[2]


def mask_for(key: int, version: int) -> np.ndarray:
    """A deterministic non-empty mask for annotation ``key`` at edit ``version``."""
    rng = np.random.default_rng(key * 7919 + version)
    y0, x0 = rng.integers(0, SIZE - 4, 2)
    h, w = rng.integers(1, 8, 2)
    m = np.zeros((SIZE, SIZE), bool)
    m[y0:y0 + h, x0:x0 + w] = True
    m[rng.integers(0, SIZE), rng.integers(0, SIZE)] = True
    return m


def make_project(folder: Path, image: Path) -> int:
    """Create the crash-test project with one ``SIZE`` x ``SIZE`` image; return its id."""
    from tests.store.helpers import write_png

    write_png(image, SIZE, SIZE)
    with Project.create(folder, classes=list(CLASSES)) as p:
        return p.add_image(image).id


def child_main(project: str, image_id: int, start: int, ack_path: str, seed: int) -> None:
    p = Project.open(project)
    fd = os.open(ack_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    os.write(fd, b"R\n")
    rng = random.Random(seed)
    own: dict[int, int] = {}  # key -> annotation id, for the annotations this child added
    versions: dict[int, int] = {}
    key = start
    while True:
        roll = rng.random()
        if roll < 0.45 or not own:
            line, cls = f"add {key} {rng.randrange(2)}", None
            os.write(fd, f"B {line}\n".encode())
            cls = CLASSES[int(line.split()[2])]
            own[key] = p.add_annotation(image_id, mask_for(key, 0), cls, source=f"crash:{key}")
            versions[key] = 0
            key += 1
        elif roll < 0.75:
            k = rng.choice(list(own))
            versions[k] += 1
            os.write(fd, f"B edit {k} {versions[k]}\n".encode())
            p.update_annotation_mask(own[k], mask_for(k, versions[k]))
        elif roll < 0.9:
            k, c = rng.choice(list(own)), rng.randrange(2)
            os.write(fd, f"B relabel {k} {c}\n".encode())
            p.relabel(own[k], CLASSES[c])
        else:
            s = rng.randrange(len(STATES))
            os.write(fd, f"B state {s}\n".encode())
            p.set_state(image_id, STATES[s])
        os.write(fd, b"A\n")


def _apply(model: dict[str, Any], op: list[str]) -> None:
    if op[0] == "add":
        model["anns"][int(op[1])] = {"v": 0, "cls": CLASSES[int(op[2])]}
        if model["state"] == "unreviewed":  # adding a mask starts the image's review
            model["state"] = "in progress"
    elif op[0] == "edit":
        model["anns"][int(op[1])]["v"] = int(op[2])
    elif op[0] == "relabel":
        model["anns"][int(op[1])]["cls"] = CLASSES[int(op[2])]
    else:
        model["state"] = STATES[int(op[1])]


def parse_acks(text: str, model: dict[str, Any]) -> tuple[int, list[str] | None]:
    """Apply acknowledged actions to ``model``; return (acked count, in-flight action or None)."""
    acked, pending = 0, None
    for line in text.splitlines():
        if line.startswith("B "):
            pending = line[2:].split()
        elif line == "A" and pending is not None:
            _apply(model, pending)
            acked, pending = acked + 1, None
    return acked, pending


def _observed(p: Project, image_id: int) -> tuple[dict[int, dict[str, Any]], str]:
    anns: dict[int, dict[str, Any]] = {}
    for a in p.annotations(image_id):
        if a.source.startswith("crash:"):
            key = int(a.source.split(":")[1])
            assert key not in anns, f"annotation key {key} stored twice"
            anns[key] = {"mask": a.mask(), "cls": a.class_name}
    return anns, p.image(image_id).state


def _copy(model: dict[str, Any]) -> dict[str, Any]:
    return {"anns": {k: dict(v) for k, v in model["anns"].items()}, "state": model["state"]}


def _differences(observed: tuple[dict[int, dict[str, Any]], str], model: dict[str, Any]) -> int:
    """How many annotations (plus the image state) differ between the database and ``model``."""
    anns, state = observed
    bad = int(state != model["state"])
    for key in set(anns) | set(model["anns"]):
        got, want = anns.get(key), model["anns"].get(key)
        if got is None or want is None or got["cls"] != want["cls"] or \
                not np.array_equal(got["mask"], mask_for(key, want["v"])):
            bad += 1
    return bad


def verify(folder: Path, image_id: int, model: dict[str, Any],
           pending: list[str] | None) -> tuple[dict[str, Any], int]:
    """Reopen the project: it must equal the acknowledged state, or that state plus the whole
    in-flight action. Returns the model to continue from and the number of lost/corrupt rows."""
    after = _copy(model)
    if pending is not None:
        _apply(after, pending)
    with Project.open(folder) as p:
        if p.integrity_check() != "ok":
            raise AssertionError(f"integrity_check failed: {p.integrity_check()}")
        observed = _observed(p, image_id)
    if _differences(observed, model) == 0:
        return model, 0
    missing = _differences(observed, after)
    return after, missing


def run_kills(folder: Path, image_id: int, kills: int, *, seed: int = 0,
              max_delay_s: float = 0.4) -> dict[str, Any]:
    """Run ``kills`` child processes, SIGKILL each at a random moment, verify after each."""
    rng = random.Random(seed)
    model: dict[str, Any] = {"anns": {}, "state": "unreviewed"}
    total_acked = lost = in_flight_landed = 0
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for i in range(kills):
        ack = folder.parent / f"ack-{i}.txt"
        child = subprocess.Popen(
            [sys.executable, "-m", "tests.store.crash_harness", str(folder), str(image_id),
             str(100000 * (i + 1)), str(ack), str(seed * 1000 + i)], cwd=ROOT, env=env)
        deadline = time.monotonic() + 60
        while not (ack.exists() and ack.read_text().startswith("R")):
            if child.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"crash child did not start (exit code {child.returncode})")
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, max_delay_s))
        child.send_signal(signal.SIGKILL)
        child.wait()
        acked, pending = parse_acks(ack.read_text(), model)
        total_acked += acked
        new_model, missing = verify(folder, image_id, model, pending)
        in_flight_landed += int(pending is not None and new_model is not model and not missing)
        lost += missing
        model = new_model
    return {"kills": kills, "actions_acknowledged": total_acked, "actions_lost": lost,
            "in_flight_actions_committed": in_flight_landed,
            "annotations_at_end": len(model["anns"])}


if __name__ == "__main__":
    child_main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], int(sys.argv[5]))
