"""Review integrity: an image is done only when none of its candidates is proposed (unit tests
for each path, and a hypothesis test over random action sequences with undo/redo)."""

from __future__ import annotations

import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from text2seg_widgets import Candidate
from text2seg_widgets.errors import InputError, UnreviewedError
from text2seg_widgets.store import ConflictError, HistoryStep, Project
from tests.store.helpers import rect, small_project, write_png


def _cand(k: int, cls: str = "building") -> Candidate:
    return Candidate.from_mask(rect(64, 80, k % 50, 0, k % 50 + 3, 9), class_name=cls,
                               score=0.5, branch="detector")


def test_done_is_refused_while_candidates_are_proposed(tmp_path: Path, project_at) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    p.accept(ids[0])
    with pytest.raises(UnreviewedError, match="image 1 still has 2 unreviewed candidate") as err:
        p.set_state(image_id, "done")
    assert (err.value.image_id, err.value.count) == (1, 2)
    assert "rest='reject'" in str(err.value) and "skip_image" in str(err.value)
    assert isinstance(err.value, InputError)
    with pytest.raises(UnreviewedError):
        p.finish_image(image_id)  # rest="require" is the default
    assert p.image(image_id).state == "in progress"
    assert str(p.history(1)[0]["description"]) == f"accept candidate {ids[0]}"
    p.reject(ids[1])
    p.reject(ids[2])
    assert p.finish_image(image_id) == 0 and p.image(image_id).state == "done"
    p.close()


def test_finish_rejecting_the_rest_is_one_undoable_action(tmp_path: Path, project_at) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    p.accept(ids[0])
    assert p.finish_image(image_id, rest="reject", user="ann") == 2
    assert [c.status for c in p.candidates(image_id)] == ["accepted", "rejected", "rejected"]
    assert p.image(image_id).state == "done" and p.image(image_id).state_user == "ann"
    assert p.undo() == HistoryStep("mark image 1 done, rejecting the rest", (1,))
    assert [c.status for c in p.candidates(image_id)] == ["accepted", "proposed", "proposed"]
    assert p.image(image_id).state == "in progress"
    assert str(p.redo()) == "mark image 1 done, rejecting the rest"
    assert p.image(image_id).state == "done"
    with pytest.raises(InputError, match="rest must be one of"):
        p.finish_image(image_id, rest="ignore")
    p.close()


def test_skip_keeps_candidates_and_records_the_reason(tmp_path: Path, project_at) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    p.skip_image(image_id, reason="  clouds\nover it ")
    rec = p.image(image_id)
    assert (rec.state, rec.state_note) == ("skipped", "clouds over it")
    assert [c.status for c in p.candidates(image_id)] == ["proposed"] * 3
    assert p.undo() == HistoryStep("skip image 1 (clouds over it)", (1,))
    assert (p.image(image_id).state, p.image(image_id).state_note) == ("unreviewed", "")
    p.close()


def test_new_candidates_reopen_a_done_image_and_block_redo(tmp_path: Path, project_at) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    p.finish_image(image_id, rest="reject")
    [new] = p.add_candidates(image_id, [_cand(5)])
    assert p.image(image_id).state == "in progress"
    with pytest.raises(ConflictError, match="changed since"):
        p.undo()  # the image row was changed by the new run: refused, nothing written
    p.reject(new)
    p.finish_image(image_id)
    p.undo()
    p.add_candidates(image_id, [_cand(7)])  # image in progress: state unchanged
    with pytest.raises(ConflictError, match="new candidates were added"):
        p.redo()
    assert p.image(image_id).state == "in progress"
    p.close()


def test_the_database_itself_refuses_a_done_image_with_proposed_candidates(tmp_path: Path) -> None:
    p, image_id, ids = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    p.close()
    conn = sqlite3.connect(tmp_path / "p" / "project.sqlite")
    with pytest.raises(sqlite3.IntegrityError, match="unreviewed candidates"):
        conn.execute("UPDATE images SET state = 'done' WHERE id = 1")
    conn.execute("UPDATE candidates SET status = 'rejected'")
    conn.execute("UPDATE images SET state = 'done' WHERE id = 1")
    with pytest.raises(sqlite3.IntegrityError, match="unreviewed candidates"):
        conn.execute("UPDATE candidates SET status = 'proposed' WHERE id = 1")
    conn.close()


ACTIONS = st.lists(st.tuples(st.sampled_from(
    ["accept", "reject", "relabel", "add_candidates", "finish", "finish_reject", "skip",
     "set_done", "set_progress", "delete", "undo", "redo"]), st.integers(0, 60), st.integers(0, 1)),
    min_size=1, max_size=30)


def _snapshot(p: Project) -> tuple:
    return ([(c.id, c.status) for c in p.candidates()], [(i.id, i.state) for i in p.images()],
            [(a.id, a.class_name) for a in p.annotations()])


def _act(p: Project, images: list[int], action: str, k: int, which: int) -> None:
    image_id = images[which]
    cands = p.candidates(image_id)
    anns = p.annotations(image_id)
    if action == "accept" and cands:
        p.accept(cands[k % len(cands)].id)
    elif action == "reject" and cands:
        p.reject(cands[k % len(cands)].id)
    elif action == "relabel" and anns:
        p.relabel(anns[k % len(anns)].id, ("building", "road")[k % 2])
    elif action == "delete" and anns:
        p.delete_annotation(anns[k % len(anns)].id)
    elif action == "add_candidates":
        p.add_candidates(image_id, [_cand(k), _cand(k + 7, "road")][: 1 + k % 2])
    elif action == "finish":
        p.finish_image(image_id)
    elif action == "finish_reject":
        p.finish_image(image_id, rest="reject")
    elif action == "skip":
        p.skip_image(image_id, reason=f"r{k}")
    elif action == "set_done":
        p.set_state(image_id, "done")
    elif action == "set_progress":
        p.set_state(image_id, "in progress")
    elif action == "undo":
        step = p.undo()
        assert step is None or set(step.image_ids) <= set(images)
    elif action == "redo":
        p.redo()


def _check_invariant(p: Project) -> None:
    for summary in p.image_summaries():
        if summary.state == "done":
            assert summary.proposed == 0, summary
    proposed = {c.image_id for c in p.candidates(status="proposed")}
    assert not proposed & {r.id for r in p.images("done")}
    assert {s.id for s in p.image_summaries("candidates left")} == proposed


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ACTIONS)
def test_candidate_and_image_states_never_disagree(actions: list) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        p, first, _ = small_project(root / "p", write_png(root / "a.png"))
        second = p.add_image(write_png(root / "b.png", seed=1)).id
        p.add_candidates(second, [_cand(3, "road")])
        try:
            for action, k, which in actions:
                before = _snapshot(p)
                try:
                    _act(p, [first, second], action, k, which)
                except (ConflictError, UnreviewedError):
                    assert _snapshot(p) == before  # a refusal writes nothing
                _check_invariant(p)
            assert p.integrity_check() == "ok"
        finally:
            p.close()
