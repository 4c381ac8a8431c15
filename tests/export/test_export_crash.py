"""An export killed (SIGKILL) midway leaves the previous export complete and readable."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from text2seg_widgets.export import read_manifest
from text2seg_widgets.store import Project
from tests.store.crash_harness import ROOT
from tests.store.helpers import write_png

KILLS = 10


def _project(folder: Path, images: Path) -> Project:
    p = Project.create(folder, classes=["a", "b"])
    rng = np.random.default_rng(0)
    for i in range(4):
        rec = p.add_image(write_png(images / f"{i}.png", 256, 256, seed=i))
        items = []
        for k in range(250):
            m = np.zeros((256, 256), bool)
            y, x = rng.integers(0, 240, 2)
            m[y:y + rng.integers(2, 16), x:x + rng.integers(2, 16)] = True
            items.append({"image_id": rec.id, "mask": m, "class_name": "ab"[k % 2]})
        p.add_annotations(items)
    return p


def _check(out: Path, seen: set[int]) -> None:
    """Both exports, if present, are complete and describe a state the project really had."""
    coco_dir, sem_dir = out / "coco", out / "semantic"
    if coco_dir.exists():
        manifest = read_manifest(coco_dir)
        coco = json.loads((coco_dir / "annotations.json").read_text())
        assert len(coco["annotations"]) == manifest["counts"]["annotations"]
        assert manifest["counts"]["annotations"] in seen
    if sem_dir.exists():
        manifest = read_manifest(sem_dir)
        for entry in json.loads((sem_dir / "images.json").read_text()):
            labels = np.asarray(Image.open(sem_dir / entry["label_png"]))
            assert labels.shape == (256, 256)
        assert manifest["counts"]["images"] == 4


def test_killed_exports_leave_the_previous_export_intact(tmp_path: Path) -> None:
    p = _project(tmp_path / "proj", tmp_path)
    out = tmp_path / "exports"
    out.mkdir()
    rng = random.Random(0)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    seen = {len(p.annotations())}
    finished = interrupted = 0
    for i in range(KILLS):
        ack = tmp_path / f"ack-{i}.txt"
        child = subprocess.Popen([sys.executable, "-m", "tests.export.export_crash_child",
                                  str(tmp_path / "proj"), str(out), str(ack)], cwd=ROOT, env=env)
        while not (ack.exists() and ack.read_text().startswith("R")):
            assert child.poll() is None, "export child died on start-up"
            time.sleep(0.01)
        time.sleep(rng.uniform(0.05, 2.0))
        child.send_signal(signal.SIGKILL)
        child.wait()
        finished += ack.read_text().count("coco")
        _check(out, seen)
        # change the project so the next export differs from the one on disk
        rec = p.images()[i % 4]
        p.add_annotation(rec.id, np.pad(np.ones((3, 3), bool), ((i, 253 - i), (0, 253))), "a")
        seen.add(len(p.annotations()))
        partial = [x for x in out.iterdir() if ".partial-" in x.name]
        interrupted += bool(partial)
        assert len(partial) <= 2  # only what the last killed child left, cleaned up next time
    assert finished >= 1, "no export ever finished: the test did not exercise a replacement"
    assert interrupted >= 1, "no kill landed inside an export: the test proved nothing"
    from text2seg_widgets.export import export_coco

    export_coco(p, out / "coco", overwrite=True, states=None)
    assert read_manifest(out / "coco")["counts"]["annotations"] == len(p.annotations())
    assert not any(".partial-" in x.name and "coco" in x.name for x in out.iterdir())
    p.close()
