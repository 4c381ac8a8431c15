"""Two `pseudo-label` processes (and two `embed` processes) on one project at once share the
images through claims: every image is segmented once, no candidate is stored twice (before the
claims, two runs stored 86 candidates instead of 43 and both exited 0)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.engines.helpers import CLI_OPTIONS, candidates_by_path, new_project
from text2seg_widgets.store import Project

ROOT = Path(__file__).resolve().parents[2]


def _start(*args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "from text2seg_widgets.cli import main; main()", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, env=env)


def _finish(proc: subprocess.Popen) -> dict:
    out, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err.decode()[-3000:]
    return json.loads(out.decode()[out.decode().index("{"):])


def test_two_pseudo_label_runs_at_once_store_each_candidate_once(tmp_path, reference):
    folder = new_project(tmp_path / "p", reference.images)
    procs = [_start("pseudo-label", str(folder), *CLI_OPTIONS, "--no-progress") for _ in range(2)]
    a, b = (_finish(p) for p in procs)
    assert a["run_id"] == b["run_id"]  # both joined one run
    assert a["images_done"] + b["images_done"] == len(reference.images)
    assert a["images_elsewhere"] + a["images_skipped"] + a["images_done"] == len(reference.images)
    with Project.open(folder) as project:
        assert len(project.runs()) == 1
        assert project.claims.held() == []  # every claim released
    assert candidates_by_path(folder) == reference.candidates_by_path()  # no duplicates, none missing


def test_two_embed_runs_at_once_encode_each_image_once(tmp_path, reference):
    import os

    folder = new_project(tmp_path / "p", reference.images)
    env = dict(os.environ, TEXT2SEG_EMBED_CACHE=str(tmp_path / "cache"), TEXT2SEG_EMBED_CACHE_GB="1")
    procs = [_start("embed", str(folder), "--models", "tiny", "--device", "cpu", "--no-progress", env=env)
             for _ in range(2)]
    a, b = (_finish(p) for p in procs)
    n = len(reference.images)
    assert a["encoded"] + b["encoded"] == n, (a, b)
    assert a["cached"] + a["elsewhere"] + a["encoded"] == n and b["cached"] + b["elsewhere"] + b["encoded"] == n
    with Project.open(folder) as project:
        assert project.claims.held() == []
