"""Crash safety: SIGKILL a process in the middle of a long series of actions, many times."""

from __future__ import annotations

from pathlib import Path

from text2seg_widgets.store import Project
from tests.store.crash_harness import make_project, run_kills


def test_sigkill_at_random_points_loses_no_acknowledged_action(tmp_path: Path) -> None:
    folder = tmp_path / "proj"
    image_id = make_project(folder, tmp_path / "img.png")
    result = run_kills(folder, image_id, kills=30, seed=1)
    assert result["actions_lost"] == 0, result
    # the children really did work between kills (not just start-up)
    assert result["actions_acknowledged"] >= 30, result
    with Project.open(folder) as p:
        assert p.integrity_check() == "ok"
        assert len([a for a in p.annotations() if a.source.startswith("crash:")]) == \
            result["annotations_at_end"]
        # the persisted history still works after all those kills
        assert p.can_undo and p.undo() is not None and p.redo() is not None


def test_the_harness_notices_a_lost_action(tmp_path: Path) -> None:
    """The checker itself: an acknowledged action missing from the database is counted."""
    from tests.store.crash_harness import mask_for, verify

    folder = tmp_path / "proj"
    image_id = make_project(folder, tmp_path / "img.png")
    with Project.open(folder) as p:
        p.add_annotation(image_id, mask_for(1, 0), "building", source="crash:1")
    model = {"anns": {1: {"v": 0, "cls": "building"}, 2: {"v": 0, "cls": "road"}},
             "state": "in progress"}
    assert verify(folder, image_id, model, None)[1] == 1
    model["anns"].pop(2)
    assert verify(folder, image_id, model, None) == (model, 0)
    assert verify(folder, image_id, model, ["edit", "1", "3"]) == (model, 0)  # not landed: fine
    model["anns"][1]["v"] = 2  # acknowledged edit that is not in the database
    assert verify(folder, image_id, model, None)[1] == 1
