"""Two processes annotating the same project at once: no lost or corrupted rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

from text2seg_widgets import Candidate
from text2seg_widgets.store import Project
from tests.store.crash_harness import ROOT, mask_for, make_project

N = 150


def test_two_processes_annotating_at_once(tmp_path: Path, project_at) -> None:
    folder = project_at
    image_id = make_project(folder, tmp_path / "img.png")
    with Project.open(folder) as p:
        cands = [Candidate.from_mask(mask_for(1000 + i, 0), class_name="road", score=0.5,
                                     branch="detector") for i in range(N)]
        cand_ids = p.add_candidates(image_id, cands)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    outs = {name: tmp_path / f"{name}.txt" for name in ("a", "b")}
    children = [subprocess.Popen([sys.executable, "-m", "tests.store.concurrent_child",
                                  str(folder), str(image_id), name, str(N), str(out)],
                                 cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True)
                for name, out in outs.items()]
    for child in children:
        _, err = child.communicate(timeout=240)
        assert child.returncode == 0, err
    accepted: dict[int, int] = {}
    for out in outs.values():
        lines = out.read_text().splitlines()
        assert lines[-1] == "done"
        for line in lines[:-1]:
            if line.startswith("accepted"):
                _, cid, aid = line.split()
                assert int(cid) not in accepted, f"candidate {cid} accepted twice"
                accepted[int(cid)] = int(aid)
    with Project.open(folder) as p:
        assert p.integrity_check() == "ok"
        anns = p.annotations(image_id)
        manual = {a.source: a for a in anns if a.candidate_id is None}
        assert len(manual) == 2 * N
        for i in range(N):
            assert np.array_equal(manual[f"a:{i}"].mask(), mask_for(i, 0))
            assert np.array_equal(manual[f"b:{i}"].mask(), mask_for(i, 1))
        from_cands = {a.candidate_id: a.id for a in anns if a.candidate_id is not None}
        assert from_cands == accepted  # every reported accept is stored, nothing else
        assert len(accepted) == N  # both tried every candidate: each went to exactly one
        statuses = {c.id: c.status for c in p.candidates(image_id)}
        assert {cid for cid, s in statuses.items() if s == "accepted"} == set(accepted)
        assert set(statuses) == set(cand_ids)
        users = {a.user for a in anns}
        assert users == {"a", "b"}
