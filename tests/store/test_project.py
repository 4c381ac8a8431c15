"""The Project API: classes, images, candidates, review actions, undo/redo, runs, stats."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from text2seg_widgets import Candidate, InputError
from text2seg_widgets.store import SCHEMA_VERSION, ConflictError, HistoryStep, Project
from tests.store.helpers import rect, small_project, write_geotiff, write_png


@pytest.fixture
def proj(tmp_path: Path, project_at):
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    yield p, image_id, ids
    p.close()


def test_create_and_reopen_keeps_classes_images_and_candidates(tmp_path: Path, project_at) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    p.close()
    p = Project.open(project_at)
    assert [(c.id, c.name, c.color, c.prompts) for c in p.classes] == [
        (1, "building", "#ff1744", ()), (2, "road", "#808080", ("street", "highway"))]
    img = p.image(image_id)
    assert (img.width, img.height, img.crs, img.window, img.state) == (80, 64, None, None,
                                                                       "unreviewed")
    assert img.checksum.startswith("sha256:") and len(img.checksum) == 7 + 64
    cands = p.candidates(image_id)
    assert [c.id for c in cands] == ids
    assert [(c.class_name, c.status, c.candidate.branch, c.candidate.score) for c in cands] == [
        ("building", "proposed", "detector", 0.9), ("road", "proposed", "heatmap", 0.6),
        ("building", "proposed", "filter", 0.3)]
    assert np.array_equal(cands[0].mask(), rect(64, 80, 2, 3, 12, 20))
    assert cands[0].candidate.area == 170 and cands[0].candidate.bbox == [3.0, 2.0, 17.0, 10.0]
    assert cands[0].candidate.model == "tiny"
    assert p.schema_version == SCHEMA_VERSION == 5
    assert p.integrity_check() == "ok"
    p.close()


def test_store_and_export_do_not_import_torch(tmp_path: Path) -> None:
    import subprocess

    code = ("import sys; from text2seg_widgets.store import Project; "
            "import text2seg_widgets.store.stats, text2seg_widgets.export; "
            "import text2seg_widgets.imagery.vectors, text2seg_widgets.export.rasters; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_geotiff_image_records_crs_transform_and_window(tmp_path: Path, project_at) -> None:
    tif = write_geotiff(tmp_path / "g.tif", height=100, width=120, res=0.5)
    p = Project.create(project_at, classes=["water"])
    whole = p.add_image(tif)
    assert whole.georeferenced and "32633" in whole.crs
    assert whole.transform == (0.5, 0.0, 500000.0, 0.0, -0.5, 5000000.0)
    tile = p.add_image(tif, window=(20, 10, 50, 40))
    assert (tile.width, tile.height, tile.window) == (50, 40, (20, 10, 50, 40))
    assert tile.transform == (0.5, 0.0, 500010.0, 0.0, -0.5, 4999995.0)
    assert p.add_image(tif).id == whole.id  # adding again returns the same record
    with pytest.raises(InputError, match="does not fit"):
        p.add_image(tif, window=(100, 0, 50, 40))
    p.close()


def test_accept_reject_relabel_edit_delete(proj) -> None:
    p, image_id, ids = proj
    ann = p.accept(ids[0])
    p.reject(ids[2])
    ann2 = p.accept(ids[1], class_name="building")
    assert [(a.id, a.class_name, a.source, a.candidate_id, a.area) for a in p.annotations()] == [
        (ann, "building", "detector", ids[0], 170), (ann2, "building", "heatmap", ids[1], 800)]
    assert p.image(image_id).state == "in progress"
    assert [c.status for c in p.candidates(image_id)] == ["accepted", "accepted", "rejected"]
    assert [c.id for c in p.candidates(image_id, status="rejected")] == [ids[2]]
    p.relabel(ann2, "road")
    new_mask = rect(64, 80, 2, 3, 22, 20)
    p.update_annotation_mask(ann, new_mask)
    a = p.annotation(ann)
    assert a.area == 340 and a.bbox == [3.0, 2.0, 17.0, 20.0]
    assert np.array_equal(a.mask(), new_mask)
    assert p.annotation(ann2).class_name == "road"
    p.delete_annotation(ann2)
    assert [a.id for a in p.annotations(image_id)] == [ann]
    assert p.candidate(ids[1]).status == "rejected"
    with pytest.raises(ConflictError, match="already accepted"):
        p.accept(ids[0])
    with pytest.raises(ConflictError, match="does not exist"):
        p.relabel(ann2, "road")


def test_manual_annotation_and_accept_above(proj) -> None:
    p, image_id, ids = proj
    mask = rect(64, 80, 50, 50, 60, 79)
    manual = p.add_annotation(image_id, mask, "road")
    rec = p.annotation(manual)
    assert (rec.source, rec.score, rec.candidate_id, rec.area) == ("manual", 1.0, None, 290)
    accepted = p.accept_above(image_id, 0.5)
    assert [p.annotation(a).candidate_id for a in accepted] == [ids[0], ids[1]]
    assert p.candidate(ids[2]).status == "proposed"
    assert str(p.undo()) == "accept candidates >= 0.5 on image 1"
    assert [a.id for a in p.annotations()] == [manual]
    with pytest.raises(InputError, match="empty"):
        p.add_annotation(image_id, np.zeros((64, 80), bool), "road")
    with pytest.raises(InputError, match="64 x 80"):
        p.add_annotation(image_id, np.ones((10, 10), bool), "road")


def test_undo_redo_survive_reopen(tmp_path: Path, project_at) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    ann = p.accept(ids[0])
    p.update_annotation_mask(ann, rect(64, 80, 0, 0, 5, 5))
    assert p.finish_image(image_id, rest="reject", user="alice") == 2
    assert p.image(image_id).state_user == "alice"
    p.close()
    p = Project.open(project_at)
    assert p.can_undo and not p.can_redo
    step = p.undo()
    assert step == HistoryStep("mark image 1 done, rejecting the rest", (1,))
    assert [c.status for c in p.candidates(image_id)] == ["accepted", "proposed", "proposed"]
    assert str(p.undo()) == f"edit mask of annotation {ann}"
    assert p.annotation(ann).area == 170
    p.close()
    p = Project.open(project_at)
    assert p.can_redo
    assert str(p.redo()) == f"edit mask of annotation {ann}"
    assert p.annotation(ann).area == 25
    assert p.undo() is not None and str(p.undo()) == f"accept candidate {ids[0]}"
    assert p.annotations() == [] and p.candidate(ids[0]).status == "proposed"
    assert p.image(image_id).state == "unreviewed"
    assert p.undo() is None  # adding candidates is not a user action
    # a new action clears the redo stack
    p.reject(ids[1])
    assert not p.can_redo and p.redo() is None
    p.close()


def test_history_is_shared_between_sessions(tmp_path: Path, project_at) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    ann = p.accept(ids[0])
    other = Project.open(project_at)
    other.relabel(ann, "road")
    assert p.annotation(ann).class_name == "road"
    assert str(p.undo()) == f"relabel annotation {ann} as 'road'"  # the newest action, any session
    assert other.annotation(ann).class_name == "building"
    assert str(other.redo()) == f"relabel annotation {ann} as 'road'"
    other.close()
    assert p.annotation(ann).class_name == "road"
    p.close()


def test_undo_conflict_is_an_error_not_an_overwrite(tmp_path: Path, project_at) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    ann = p.accept(ids[0])
    p.relabel(ann, "road")
    # a pipeline-side (non-history) write changes the candidate behind the history's back
    p._db.conn.execute("UPDATE annotations SET score = 0.1 WHERE id = ?", (ann,))
    with pytest.raises(ConflictError, match="changed since"):
        p.undo()
    assert p.annotation(ann).class_name == "road" and p.annotation(ann).score == 0.1
    p.close()


def test_add_candidates_never_touches_accepted_work(proj) -> None:
    p, image_id, ids = proj
    ann = p.accept(ids[0])
    p.reject(ids[1])
    new = Candidate.from_mask(rect(64, 80, 0, 0, 8, 8), class_name="road", score=0.5,
                              branch="concept")
    new_ids = p.add_candidates(image_id, [new], replace=True)
    assert [(c.id, c.status) for c in p.candidates(image_id)] == [
        (ids[0], "accepted"), (ids[1], "rejected"), (new_ids[0], "proposed")]
    assert [a.id for a in p.annotations()] == [ann]
    assert p.annotation(ann).area == 170


def test_classes_add_update_remove_and_bad_names(proj) -> None:
    p, image_id, ids = proj
    odd = p.add_class('roof/"flat" \'n\' \\ stuff', color="#ABC", prompts=["flat roof"])
    assert odd.color == "#aabbcc" and odd.id == 3
    assert p.class_info(odd.name).prompts == ("flat roof",)
    for bad in ("", "   ", "a\nb", "x" * 300):
        with pytest.raises(InputError):
            p.add_class(bad)
    with pytest.raises(InputError, match="already exists"):
        p.add_class("building")
    with pytest.raises(InputError, match="#rrggbb"):
        p.add_class("tree", color="green")
    ann = p.accept(ids[1])
    with pytest.raises(InputError, match="cascade=True"):
        p.remove_class("road")
    p.remove_class("road", cascade=True)
    assert [c.name for c in p.classes] == ["building", odd.name]
    assert p.annotations() == []
    assert [c.id for c in p.candidates(image_id)] == [ids[0], ids[2]]
    with pytest.raises(InputError, match="unknown class 'road'"):
        p.add_annotation(image_id, rect(64, 80, 0, 0, 4, 4), "road")
    with pytest.raises(InputError, match="not a project class"):
        p.add_candidates(image_id, [Candidate.from_mask(rect(64, 80, 0, 0, 4, 4),
                                                        class_name="road", score=1, branch="x")])
    assert str(p.undo()) == "remove class 'road'"
    assert p.annotation(ann).class_name == "road"
    assert len(p.candidates(image_id)) == 3
    p.update_class("road", name="street", color="#000000")
    assert p.annotation(ann).class_name == "street"
    added = p.add_class("tree")
    assert added.id == 4  # ids are never reused


def test_states_and_next_image(tmp_path: Path, project_at) -> None:
    p = Project.create(project_at, classes=["a"])
    recs = [p.add_image(write_png(tmp_path / f"{i}.png", seed=i)) for i in range(4)]
    p.set_state(recs[1].id, "done")
    p.set_state(recs[2].id, "skipped")
    assert [r.id for r in p.images("unreviewed")] == [recs[0].id, recs[3].id]
    assert p.next_image().id == recs[0].id
    assert p.next_image(after=recs[0].id, state="unreviewed").id == recs[3].id  # old keyword
    assert p.next_image(after=recs[3].id, filter="unreviewed").id == recs[0].id  # wraps around
    assert p.next_image(after=recs[1].id).id == recs[2].id  # no filter: every image
    assert p.next_image(filter="in progress") is None
    with pytest.raises(InputError, match="unknown image state"):
        p.set_state(recs[0].id, "finished")
    with pytest.raises(InputError, match="no image with id 99"):
        p.image(99)
    p.close()


def test_runs_and_processed_markers(proj) -> None:
    p, image_id, ids = proj
    run = p.start_run({"models": "tiny", "classes": ["building"]})
    assert p.processed_images(run) == set()
    cand = Candidate.from_mask(rect(64, 80, 0, 0, 8, 8), class_name="road", score=0.5,
                               branch="concept")
    [cid] = p.add_candidates(image_id, [cand], run_id=run, mark_processed=True)
    assert p.candidate(cid).run_id == run
    assert p.processed_images(run) == {image_id}
    p.mark_image_processed(image_id, run)  # idempotent
    p.finish_run(run)
    [r] = p.runs()
    assert r["manifest"] == {"models": "tiny", "classes": ["building"], "started_by": p.user}
    assert r["finished_at"] and p.user


def test_stats_counts_and_agreement(proj) -> None:
    p, image_id, ids = proj
    a0 = p.accept(ids[0])
    p.accept(ids[1])
    p.reject(ids[2])
    p.update_annotation_mask(a0, rect(64, 80, 2, 3, 7, 20))  # half of the 10-row candidate
    s = p.stats()
    assert s["images"]["by_state"] == {"unreviewed": 0, "in progress": 1, "done": 0, "skipped": 0}
    assert s["candidates"]["by_class"] == {
        "building": {"proposed": 0, "accepted": 1, "rejected": 1},
        "road": {"proposed": 0, "accepted": 1, "rejected": 0}}
    assert s["candidates"]["by_branch"]["filter"] == {"proposed": 0, "accepted": 0, "rejected": 1}
    assert s["annotations"]["by_class"] == {"building": 1, "road": 1}
    assert s["agreement"]["by_class"]["building"]["mean"] == pytest.approx(0.5)
    assert s["agreement"]["by_class"]["road"]["mean"] == 1.0
    assert s["agreement"]["overall"] == {"count": 2, "mean": 0.75, "median": 0.75, "min": 0.5}


def test_stale_edit_from_another_session_is_refused(tmp_path: Path, project_at) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    ann = p.accept(ids[0])
    loaded = p.annotation(ann)  # what this notebook shows
    other = Project.open(project_at)
    other.update_annotation_mask(ann, rect(64, 80, 0, 0, 4, 4))  # the other notebook edits first
    with pytest.raises(ConflictError, match="changed .* since it was loaded"):
        p.update_annotation_mask(ann, rect(64, 80, 0, 0, 9, 9), expected=loaded)
    with pytest.raises(ConflictError):
        p.relabel(ann, "road", expected=loaded)
    with pytest.raises(ConflictError):
        p.delete_annotation(ann, expected=loaded)
    assert p.annotation(ann).area == 16  # the other session's edit stands
    fresh = p.annotation(ann)
    p.relabel(ann, "road", expected=fresh)
    assert other.annotation(ann).class_name == "road"
    other.close()
    p.close()
