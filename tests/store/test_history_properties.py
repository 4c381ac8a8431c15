"""Property test: any series of review actions can be undone step by step back to the start
and redone to the end, each step restoring exactly the state seen at that point."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from text2seg_widgets import Candidate
from text2seg_widgets.store import ConflictError, Project, ProjectBusyError, UnreviewedError
from tests.store.helpers import rect, small_project, write_png

ACTIONS = st.lists(st.tuples(st.sampled_from(["accept", "reject", "relabel", "edit", "add",
                                              "delete", "state", "accept_above", "add_class",
                                              "finish"]),
                             st.integers(0, 50)), min_size=1, max_size=25)


def _snapshot(p: Project) -> Any:
    return ([(a.id, a.class_name, a.rle["counts"], a.source, a.candidate_id)
             for a in p.annotations()],
            [(c.id, c.status, c.class_name) for c in p.candidates()],
            [(i.id, i.state) for i in p.images()],
            [(c.id, c.name) for c in p.classes])


def _do(p: Project, image_id: int, action: str, k: int) -> bool:
    """Run one action; False when it was refused (nothing to do)."""
    anns, cands = p.annotations(), p.candidates(image_id)
    names = [c.name for c in p.classes]
    try:
        if action == "accept" and cands:
            p.accept(cands[k % len(cands)].id, names[k % len(names)])
        elif action == "reject" and cands:
            p.reject(cands[k % len(cands)].id)
        elif action == "relabel" and anns:
            p.relabel(anns[k % len(anns)].id, names[k % len(names)])
        elif action == "edit" and anns:
            p.update_annotation_mask(anns[k % len(anns)].id, rect(64, 80, k, k, k + 3, k + 5))
        elif action == "add":
            p.add_annotation(image_id, rect(64, 80, k, 0, k + 2, 9), names[k % len(names)])
        elif action == "delete" and anns:
            p.delete_annotation(anns[k % len(anns)].id)
        elif action == "state":
            p.set_state(image_id, ("unreviewed", "in progress", "done", "skipped")[k % 4])
        elif action == "finish":
            p.finish_image(image_id, rest="reject")
        elif action == "accept_above":
            return bool(p.accept_above(image_id, k / 50))
        elif action == "add_class":
            p.add_class(f"class {k}")
        else:
            return False
    except (ConflictError, UnreviewedError):
        return False  # e.g. accepting an accepted candidate, or "done" with candidates left
    except ValueError as exc:
        if "already exists" in str(exc):
            return False
        raise
    return True


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIONS)
def test_undo_all_then_redo_all_replays_every_state(actions: list[tuple[str, int]]) -> None:
    with tempfile.TemporaryDirectory() as d:
        p, image_id, _ = small_project(Path(d) / "p", write_png(Path(d) / "a.png"))
        states = [_snapshot(p)]
        for action, k in actions:
            if _do(p, image_id, action, k):
                states.append(_snapshot(p))
        for expected in reversed(states[:-1]):
            assert p.undo() is not None
            assert _snapshot(p) == expected
        assert p.undo() is None
        for expected in states[1:]:
            assert p.redo() is not None
            assert _snapshot(p) == expected
        assert p.redo() is None and p.integrity_check() == "ok"
        p.close()


def test_a_held_write_lock_gives_a_clear_busy_error(tmp_path: Path) -> None:
    import sqlite3

    p, image_id, ids = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    p.close()
    p = Project.open(tmp_path / "p", busy_timeout_s=0.05)
    other = sqlite3.connect(tmp_path / "p" / "project.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a long write
    with pytest.raises(ProjectBusyError, match="locked by another process.*nothing was changed"):
        p.reject(ids[0])
    other.execute("ROLLBACK")
    other.close()
    p.reject(ids[0])
    assert p.candidate(ids[0]).status == "rejected"
    p.close()


def test_candidates_masks_must_match_the_image(tmp_path: Path, project_at) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    wrong = Candidate.from_mask(np.ones((10, 10), bool), class_name="road", score=1,
                                branch="detector")
    with pytest.raises(ValueError, match="64 x 80"):
        p.add_candidates(image_id, [wrong])
    assert len(p.candidates(image_id)) == 3
    p.close()
