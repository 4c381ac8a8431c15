"""Review integrity and navigation: the Next guard, done/skip, previous/next, go-to, filter, image
list, and undo/redo that open the image they changed."""

from __future__ import annotations

import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.store import Project


def ids(project: Project) -> list[int]:
    return [r.id for r in project.images()]


def statuses(project: Project, image_id: int) -> list[str]:
    return sorted(c.status for c in project.candidates(image_id))


def test_next_never_marks_an_image_with_candidates_left_done(project: Project, open_app) -> None:
    app = open_app(project)
    first = app.image_id
    assert app.next_image() is None  # stays: nothing is marked done behind the annotator's back
    assert app.image_id == first and project.image(first).state != "done"
    assert statuses(project, first) == ["proposed"] * 4
    message = app.panel.message.value
    assert "4 candidates left on image" in message
    assert "<kbd>d</kbd> done: reject the rest" in message and "<kbd>x</kbd> skip" in message
    assert app.last_error is not None
    assert app.panel.done_reject.button_style == app.panel.skip.button_style == "warning"
    app.go_next()
    assert app.panel.done_reject.button_style == app.panel.skip.button_style == ""


def test_done_rejecting_the_rest_is_one_undoable_step(project: Project, open_app) -> None:
    app = open_app(project)
    first, second, _ = ids(project)
    app.select_next()
    app.accept_selected()
    assert app.finish_reject_rest() == second
    assert project.image(first).state == "done"
    assert statuses(project, first) == ["accepted", "rejected", "rejected", "rejected"]
    assert "image 1 done: 3 candidates rejected" in app.panel.message.value.replace(str(first), "1")
    assert app.image_id == second
    step = app.undo()  # one undo brings back the image and its three candidates
    assert step.image_ids == (first,)
    assert app.image_id == first
    assert statuses(project, first) == ["accepted", "proposed", "proposed", "proposed"]
    assert project.image(first).state != "done"
    assert f"undone: mark image {first} done, rejecting the rest" in app.panel.message.value
    assert f"(image {first} opened)" in app.panel.message.value


def test_skip_leaves_candidates_as_they_are_and_is_undoable(project: Project, open_app) -> None:
    app = open_app(project)
    first, second, _ = ids(project)
    assert app.skip_image() == second
    assert project.image(first).state == "skipped" and statuses(project, first) == ["proposed"] * 4
    app.undo()
    assert app.image_id == first and project.image(first).state != "skipped"


def test_next_marks_a_fully_reviewed_image_done_and_reaches_leftovers(project: Project, open_app) -> None:
    app = open_app(project)
    first, second, third = ids(project)
    app.accept_above(0.0)
    assert app.next_image() == second and project.image(first).state == "done"
    assert app.next_image() == third and project.image(second).state == "done"
    assert app.next_image() is None
    assert "all images are reviewed" in app.panel.message.value
    assert "3/3</b> images done" in app.panel.progress.value


def test_keys_and_buttons_for_done_skip_and_moving(project: Project, open_app) -> None:
    app = open_app(project)
    first, second, third = ids(project)
    assert app.handle_key("n") == "next_image" and app.image_id == first
    assert app.handle_key("x") == "skip_image" and app.image_id == second
    assert app.handle_key(",") == "go_previous" and app.image_id == first
    assert app.handle_key(".") == "go_next" and app.image_id == second
    app.go_to(first)
    app.panel.done_reject.click()
    assert project.image(first).state == "done" and app.image_id == second
    app.go_to(first)
    app.panel.forward.click()
    assert app.image_id == second
    app.panel.previous.click()
    assert app.image_id == first
    app.panel.skip.click()
    assert project.image(first).state == "skipped"
    help_text = app.panel.help.value
    for key in ("n", "d", "x", ",", ".", "b", "o", "c"):
        assert f"<kbd>{key}</kbd>" in help_text


def test_previous_next_follow_the_filter_and_wrap(project: Project, open_app) -> None:
    app = open_app(project)
    first, second, third = ids(project)
    assert app.go_next() == second and app.go_next() == third and app.go_next() == first
    assert app.go_previous() == third
    app.set_filter("candidates left")
    assert app.go_next() == first  # the only image with candidates left
    assert app.go_next() is None and app.image_id == first
    assert "no other image" in app.panel.message.value
    app.panel.filter.value = "skipped"
    assert app.go_next() is None
    with pytest.raises(InputError, match="unknown image filter"):
        app.set_filter("finished")
    assert dict(app.panel.filter.options) == {
        "all images": "all", "unreviewed": "unreviewed", "candidates left": "candidates left",
        "in progress": "in progress", "done": "done", "skipped": "skipped"}


def test_go_to_by_id_name_or_stem(project: Project, open_app, road_tiles) -> None:
    app = open_app(project)
    first, second, third = ids(project)
    assert app.go_to(third) == third
    assert app.go_to(road_tiles[1].name) == second
    assert app.go_to(road_tiles[0].stem) == first
    app.panel.goto.value = str(third)  # the text box (Enter)
    assert app.image_id == third and app.panel.goto.value == ""
    with pytest.raises(InputError, match="no image named"):
        app.go_to("no-such-tile")
    app.panel.goto.value = "no-such-tile"
    assert "no image named" in app.panel.message.value and app.image_id == third


def test_image_list_shows_state_and_counts_and_opens_images(project: Project, open_app, road_tiles) -> None:
    app = open_app(project)
    first, second, third = ids(project)
    app.select_next()
    app.accept_selected()
    labels = [label for label, _ in app.panel.images.options]
    assert [v for _, v in app.panel.images.options] == [first, second, third]
    assert labels[0] == f"{first} in progress: 3 candidates left, 1 annotation \u2014 {road_tiles[0].name}"
    assert labels[1] == f"{second} unreviewed: 0 candidates left, 0 annotations \u2014 {road_tiles[1].name}"
    assert app.panel.images.value == first
    app.panel.images.value = third
    assert app.image_id == third
    app.set_filter("candidates left")
    assert [v for _, v in app.panel.images.options] == [first]


def test_undo_and_redo_open_the_image_they_change(project: Project, open_app) -> None:
    app = open_app(project)
    first, second, _ = ids(project)
    app.select_next()
    app.accept_selected()
    app.go_to(second)
    step = app.undo()
    assert app.image_id == first and step.image_ids == (first,)
    message = app.panel.message.value
    assert message.count("undone: accept") == 1 and f"(image {first} opened)" in message
    app.go_to(second)
    app.redo()
    assert app.image_id == first and "redone: accept" in app.panel.message.value
    assert len(project.annotations(first)) == 1
    app.undo()
    app.undo()
    assert "nothing to be undone" in app.panel.message.value and app.image_id == first
