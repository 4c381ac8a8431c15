"""Review actions of the Annotator change the project store exactly as intended (no browser)."""

from __future__ import annotations

import numpy as np
import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.store import Project

from .conftest import square


def by_score(project: Project, image_id: int) -> list:
    return sorted(project.candidates(image_id), key=lambda c: -c.candidate.score)


def test_opens_first_image_with_one_layer_per_class_and_status(project: Project, open_app) -> None:
    app = open_app(project)
    first = project.images()[0]
    assert app.image_id == first.id
    assert app.image is not None and app.image.rgb.shape == (first.height, first.width, 3)
    assert app.layers.groups() == {("building", "proposed"), ("road", "proposed")}
    assert len(app.layers.layers) == 2  # one GeoJSON layer per class and status, not per mask
    assert len(app.layers.features("building", "proposed")) == 2
    assert len(app.layers.features("road", "proposed")) == 2
    assert len(app.panel.items.options) == 4
    assert "0/3</b> images done" in app.panel.progress.value
    assert "4</b> candidates left" in app.panel.progress.value


def test_accept_reject_relabel_write_to_store(project: Project, open_app) -> None:
    app = open_app(project)
    image_id = app.image_id
    c1, c2, c3, c4 = by_score(project, image_id)
    app.select(c1)
    ann1 = app.accept_selected()
    assert project.candidate(c1.id).status == "accepted"
    assert project.annotation(ann1).class_name == "building"
    assert np.array_equal(project.annotation(ann1).mask(), c1.mask())
    # double accept: the same annotation, nothing new stored
    assert app.accept_selected() == ann1
    assert len(project.annotations(image_id)) == 1
    assert "already accepted" in app.panel.message.value

    app.select(("candidate", c2.id))
    app.reject_selected()
    assert project.candidate(c2.id).status == "rejected"
    app.reject_selected()  # repeated: still one rejected candidate, no error
    assert [c.status for c in project.candidates(image_id)].count("rejected") == 1

    app.select(c3)
    ann3 = app.relabel_selected("road")
    assert project.annotation(ann3).class_name == "road"
    assert project.candidate(c3.id).status == "accepted"
    app.relabel_selected("building")  # relabel the annotation itself
    assert project.annotation(ann3).class_name == "building"
    with pytest.raises(InputError, match="unknown class"):
        app.relabel_selected("lake")

    assert len(app.layers.features("building", "accepted")) == 2
    assert len(app.layers.features("road", "proposed")) == 1
    assert app.layers.features("building", "proposed") == []
    assert "1</b> candidate left" in app.panel.progress.value


def test_accept_above_and_delete(project: Project, open_app) -> None:
    app = open_app(project)
    ids = app.accept_above(0.7)
    assert len(ids) == 2
    accepted = {c.id for c in project.candidates(app.image_id, status="accepted")}
    assert accepted == {c.id for c in project.candidates(app.image_id) if c.candidate.score >= 0.7}
    app.select(("annotation", ids[0]))
    app.delete_selected()
    assert ids[0] not in {a.id for a in project.annotations(app.image_id)}
    with pytest.raises(InputError, match="select a mask first"):
        app.delete_selected()


def test_undo_redo_follow_the_store(project: Project, open_app) -> None:
    app = open_app(project)
    c1 = by_score(project, app.image_id)[0]
    app.select(c1)
    ann = app.accept_selected()
    assert app.undo() is not None
    assert project.annotations(app.image_id) == []
    assert project.candidate(c1.id).status == "proposed"
    assert app.selection is None  # the selected annotation no longer exists
    app.redo()
    assert [a.id for a in project.annotations(app.image_id)] == [ann]
    assert ("building", "accepted") in app.layers.groups()


def test_next_image_marks_done_only_when_reviewed_and_ends_cleanly(project: Project, open_app) -> None:
    app = open_app(project)
    ids = [r.id for r in project.images()]
    assert app.next_image() is None and app.image_id == ids[0]  # 4 candidates left: stays
    app.accept_above(0.0)
    assert app.next_image() == ids[1]
    assert project.image(ids[0]).state == "done"
    assert app.image_id == ids[1] and app.layers.layers == {}
    assert app.next_image() == ids[2]
    assert app.next_image() is None
    assert all(r.state == "done" for r in project.images())
    assert "all images are reviewed" in app.panel.message.value
    assert "3/3</b> images done" in app.panel.progress.value


def test_polygon_adds_and_cuts_exact_pixels(project: Project, open_app) -> None:
    app = open_app(project)
    app.set_class("road")
    ann = app.polygon([(100, 100), (200, 100), (200, 150), (100, 150)])
    rec = project.annotation(ann)
    assert rec.class_name == "road" and rec.source == "manual"
    assert rec.area == 100 * 50
    app.polygon([(150, 90), (210, 90), (210, 160), (150, 160)], subtract=True)
    assert project.annotation(ann).area == 50 * 50
    assert np.array_equal(project.annotation(ann).mask(), square(400, 400, 100, 150, 100, 150))
    # cutting everything deletes the annotation
    app.polygon([(0, 0), (399, 0), (399, 399), (0, 399)], subtract=True)
    assert ann not in {a.id for a in project.annotations(app.image_id)}
    with pytest.raises(InputError, match="at least 3"):
        app.polygon([(0, 0), (5, 5)])


def test_reopening_after_a_kernel_restart_shows_saved_work(project: Project, open_app) -> None:
    app = open_app(project)
    c1, c2, *_ = by_score(project, app.image_id)
    app.select(c1)
    ann = app.accept_selected()
    app.select(c2)
    app.reject_selected()
    folder = project.folder
    project.close()  # the kernel dies: nothing but the folder survives
    reopened = Project.open(folder)
    try:
        app2 = open_app(reopened)
        assert app2.image_id == app.image_id  # the image in progress comes back first
        items = {(it.kind, it.id): it.status for it in app2.items()}
        assert items[("annotation", ann)] == "accepted"
        assert items[("candidate", c2.id)] == "rejected"
        assert sum(1 for s in items.values() if s == "proposed") == 2
    finally:
        reopened.close()


def test_project_without_images_says_so(tmp_path, open_app) -> None:
    p = Project.create(tmp_path / "empty", classes=["building"])
    try:
        app = open_app(p)
        assert app.image_id is None
        assert "no images yet" in app.panel.message.value
        for action, args in [(app.next_image, ()), (app.accept_above, (0.5,)), (app.click, (1, 1)),
                             (app.box, (0, 0, 5, 5)), (app.polygon, ([(0, 0), (3, 0), (3, 3)],))]:
            with pytest.raises(InputError, match="no image is open"):
                action(*args)
        app._ui(app.next_image)  # from a button: a message, not a traceback
        assert "no image is open" in app.panel.message.value
    finally:
        p.close()


def test_image_deleted_from_disk_keeps_masks_reviewable(project: Project, open_app) -> None:
    first = project.images()[0]
    from pathlib import Path

    Path(first.path).unlink()
    app = open_app(project)
    assert app.image is None and "image file not found" in app.panel.message.value
    assert len(app.items()) == 4  # the masks are still listed and drawn
    assert app.view.overlay is None
    c1 = by_score(project, first.id)[0]
    app.select(c1)
    app.accept_selected()  # review still works
    assert project.candidate(c1.id).status == "accepted"
    with pytest.raises(InputError, match="pixels are not available"):
        app.box(0, 0, 50, 50)


def test_candidate_of_a_removed_class_disappears(project: Project, open_app) -> None:
    app = open_app(project)
    road = [c for c in project.candidates(app.image_id) if c.class_name == "road"][0]
    app.select(road)
    project.remove_class("road")  # e.g. from another cell
    app.refresh()
    assert app.selection is None
    assert all(it.class_name != "road" for it in app.items())
    assert "road" not in app.panel.class_picker.options
    with pytest.raises(InputError):
        app.select(road)
    with pytest.raises(InputError, match="select a mask first"):
        app.accept_selected()
    with pytest.raises(InputError, match="no candidate"):
        project.accept(road.id)


def test_many_candidates_share_a_few_layers_and_an_accept_resends_two(tmp_path, road_tiles, open_app) -> None:
    from text2seg_widgets.core import Candidate
    from text2seg_widgets.widgets.layers import BLOCK

    p = Project.create(tmp_path / "many", classes=["building", "road"])
    try:
        rec = p.add_image(road_tiles[0])
        cands = [Candidate.from_mask(square(400, 400, (i // 20) * 20, (i // 20) * 20 + 8,
                                            (i % 20) * 20, (i % 20) * 20 + 8),
                                     class_name="building", score=0.5, branch="filter") for i in range(200)]
        p.add_candidates(rec.id, cands)
        app = open_app(p)
        assert len(app.layers.features("building", "proposed")) == 200
        assert len(app.layers.layers) == -(-201 // BLOCK)  # blocks of ids 1..200
        app.select_next()
        sent = {}
        layers = app.layers

        original = layers._draw_group
        layers._draw_group = lambda gkey, members, color, tol=0.75: (sent.setdefault(gkey, len(members)),
                                                                     original(gkey, members, color, tol))
        app.accept_selected()
        assert len(sent) == 2  # the block that lost the candidate and the new accepted block
        assert max(sent.values()) <= BLOCK
        assert len(app.layers.features("building", "proposed")) == 199
        assert len(app.layers.features("building", "accepted")) == 1
    finally:
        p.close()
