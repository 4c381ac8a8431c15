"""Navigation queries for the image list: summaries with filters, go-to by id/name/stem,
next/previous under a filter, and the images each undo/redo step changed."""

from __future__ import annotations

from pathlib import Path

import pytest

from text2seg_widgets import Candidate
from text2seg_widgets.errors import InputError
from text2seg_widgets.store import HistoryStep, ImageSummary, Project
from tests.store.helpers import rect, write_png


@pytest.fixture
def five(tmp_path: Path, project_at):
    """Five images: 1 in progress (2 proposed, 1 accepted, 1 rejected, +1 drawn), 2 done,
    3 skipped (1 proposed left), 4 unreviewed (1 proposed), 5 unreviewed (nothing)."""
    p = Project.create(project_at, classes=["building", "road"])
    recs = [p.add_image(write_png(tmp_path / f"tile_{i}.png", seed=i)) for i in range(5)]

    def cands(image_id: int, n: int) -> list[int]:
        return p.add_candidates(image_id, [Candidate.from_mask(
            rect(64, 80, 4 * i, 0, 4 * i + 3, 9), class_name="building", score=0.5,
            branch="detector") for i in range(n)])

    c1 = cands(recs[0].id, 4)
    p.accept(c1[0])
    p.reject(c1[1])
    p.add_annotation(recs[0].id, rect(64, 80, 50, 50, 60, 60), "road")
    p.set_state(recs[1].id, "done")
    cands(recs[2].id, 1)
    p.skip_image(recs[2].id)
    cands(recs[3].id, 1)
    p.add_time(recs[0].id, 12.5)
    p.add_time(recs[0].id, 2.5)
    yield p, [r.id for r in recs]
    p.close()


def test_image_summaries_and_filters(five) -> None:
    p, ids = five
    rows = p.image_summaries()
    assert rows[0] == ImageSummary(id=ids[0], name="tile_0.png", state="in progress", proposed=2,
                                   accepted=1, rejected=1, annotations=2, seconds=15.0)
    assert [(r.state, r.proposed, r.annotations, r.seconds) for r in rows[1:]] == [
        ("done", 0, 0, 0.0), ("skipped", 1, 0, 0.0), ("unreviewed", 1, 0, 0.0),
        ("unreviewed", 0, 0, 0.0)]
    table = {None: ids, "unreviewed": [ids[3], ids[4]], "candidates left": [ids[0], ids[2], ids[3]],
             "in progress": [ids[0]], "done": [ids[1]], "skipped": [ids[2]]}
    for filt, want in table.items():
        assert [r.id for r in p.image_summaries(filt)] == want, filt
    with pytest.raises(InputError, match="unknown image filter 'todo'"):
        p.image_summaries("todo")


def test_next_and_previous_honour_filters_and_wrap(five) -> None:
    p, ids = five
    cases = [("next", None, None, ids[0]), ("next", ids[0], None, ids[1]),
             ("next", ids[4], None, ids[0]), ("previous", None, None, ids[4]),
             ("previous", ids[0], None, ids[4]), ("previous", ids[3], None, ids[2]),
             ("next", ids[0], "candidates left", ids[2]),
             ("next", ids[3], "candidates left", ids[0]),
             ("previous", ids[2], "candidates left", ids[0]),
             ("previous", ids[0], "candidates left", ids[3]),
             ("next", ids[3], "unreviewed", ids[4]), ("previous", ids[4], "unreviewed", ids[3])]
    for direction, start, filt, want in cases:
        rec = (p.next_image(start, filter=filt) if direction == "next" else
               p.previous_image(start, filter=filt))
        assert rec is not None and rec.id == want, (direction, start, filt)
    assert p.next_image(ids[1], filter="done") is None  # the only match is the start itself
    assert p.previous_image(filter="done").id == ids[1]


def test_find_image_by_id_name_and_stem(five, tmp_path: Path) -> None:
    p, ids = five
    assert p.find_image(ids[2]).id == ids[2]
    assert p.find_image("tile_3.png").id == ids[3]
    assert p.find_image("tile_4").id == ids[4]
    assert p.find_image(str(ids[1])).id == ids[1]
    with pytest.raises(InputError, match="no image named 'tile_7' in this project; close "
                                         "matches: tile_4, tile_3, "):
        p.find_image("tile_7")
    with pytest.raises(InputError, match="no image with id 99"):
        p.find_image(99)
    (tmp_path / "other").mkdir()
    p.add_image(write_png(tmp_path / "other" / "tile_0.png", seed=9))
    with pytest.raises(InputError, match=r"2 images are named 'tile_0.png' \(ids 1, 6\)"):
        p.find_image("tile_0.png")


def test_undo_and_redo_say_which_images_they_changed(five) -> None:
    p, ids = five
    p.set_state(ids[4], "in progress")
    ann = p.annotations(ids[0])[0].id
    p.relabel(ann, "road")
    p.add_class("tree")
    assert p.undo() == HistoryStep("add class 'tree'", ())
    assert p.undo() == HistoryStep(f"relabel annotation {ann} as 'road'", (ids[0],))
    step = p.undo()
    assert step == HistoryStep(f"mark image {ids[4]} in progress", (ids[4],))
    assert str(step) == f"mark image {ids[4]} in progress" and f"{step}" == str(step)
    assert p.redo().image_ids == (ids[4],)
