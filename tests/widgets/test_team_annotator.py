"""The Annotator in a team project, on both databases: each annotator opens different images,
a reviewer's return (with its comment) and approval reach the annotator's open Annotator through
the live change feed (PostgreSQL LISTEN/NOTIFY, SQLite polling)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from text2seg_widgets import Annotator
from text2seg_widgets.store import Project


def _wait_for(annotator: Annotator, ready, timeout: float = 15.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        annotator.apply_live_changes()
        if ready():
            return
        time.sleep(0.2)
    raise AssertionError("the change did not reach the open Annotator")


def _labels(annotator: Annotator) -> dict[int, str]:
    return {v: label for label, v in annotator.panel.images.options}


def test_two_annotators_and_a_reviewer(project_at, tmp_path: Path, road_tiles: list[Path]) -> None:
    setup = Project.create(project_at, classes=["building", "road"], user="boss")
    for tile in road_tiles:
        setup.add_image(tile)
    setup.set_member("boss", "manager")
    setup.set_member("anna", "annotator")
    setup.set_member("ben", "annotator")
    setup.set_member("rita", "reviewer")
    setup.assign(["anna", "ben"])  # anna: 1, 3; ben: 2
    setup.close()
    anna_p = Project.open(project_at, user="anna")
    ben_p = Project.open(project_at, user="ben")
    rita_p = Project.open(project_at, user="rita")
    anna = Annotator(anna_p)
    ben = Annotator(ben_p)
    rita = Annotator(rita_p)
    try:
        assert anna.team is not None and anna.live is not None
        assert (anna.image_id, ben.image_id) == (1, 2)  # different images, each leased
        assert "anna</b>: annotator; 2 image(s) assigned" in anna.team.who.value
        assert not anna.team.reviewer and rita.team is not None and rita.team.reviewer
        anna_p.add_annotation(1, _square(anna), "road")
        assert anna.next_image() == 3  # finished 1 (pending review), her next assigned image
        _wait_for(rita, lambda: "1 image(s) wait" in rita.team.queue_label.value)
        assert rita.team.open_next_review() == 1
        rita.team.comment.value = "the road is cut at the bridge"
        rita.team.return_image()
        _wait_for(anna, lambda: "[returned]" in _labels(anna)[1])
        assert anna.team.open_next() == 1  # a returned image comes first
        assert "the road is cut at the bridge" in anna.team.note.value
        assert anna.next_image() == 3
        _wait_for(rita, lambda: "1 image(s) wait" in rita.team.queue_label.value)
        rita.team.open_next_review()
        rita.team.approve()
        _wait_for(anna, lambda: "[approved]" in _labels(anna)[1])
        _wait_for(ben, lambda: _labels(ben)[1].startswith("1 done [approved]"))
    finally:
        for a in (anna, ben, rita):
            a.close()
        for p in (anna_p, ben_p, rita_p):
            p.close()


def _square(annotator: Annotator) -> np.ndarray:
    m = np.zeros((annotator.image.height, annotator.image.width), bool)
    m[10:60, 10:60] = True
    return m


def test_a_reviewer_resolves_a_consensus_image(project_at, road_tiles: list[Path]) -> None:
    setup = Project.create(project_at, classes=["building", "road"], user="boss")
    setup.add_image(road_tiles[0])
    setup.set_member("boss", "manager")
    for name in ("anna", "ben"):
        setup.set_member(name, "annotator")
    setup.set_member("rita", "reviewer")
    setup.assign(["anna", "ben"], overlap=1.0)  # the one image, labelled by both on replicas
    replicas = {r.replica: r.id for r in setup.catalog.replicas()}
    for name, box in (("anna", (10, 60, 10, 60)), ("ben", (100, 150, 100, 150))):
        m = np.zeros((400, 400), bool)
        m[box[0]:box[1], box[2]:box[3]] = True
        setup.add_annotation(replicas[name], m, "building", user=name)
        setup.finish_image(replicas[name], user=name)
    setup.close()
    rita_p = Project.open(project_at, user="rita")
    rita = Annotator(rita_p, live=False)
    try:
        assert "1 consensus image(s) to resolve" in rita.team.queue_label.value
        assert rita.team.open_next_review() == 1
        assert rita.team.resolve_box.layout.display == "flex"
        assert list(rita.team.resolve_choice.options) == ["merge", "pick anna", "pick ben"]
        rita.team.resolve_choice.value = "pick ben"
        rita.team.resolve()
        assert "1 mask(s) from ben" in rita.panel.message.value
        record = rita_p.image(1)
        assert (record.state, record.review) == ("done", "approved")
        assert [a.bbox for a in rita_p.annotations(1)] == [[100.0, 100.0, 50.0, 50.0]]
        assert rita.team.resolve_box.layout.display == "none"
    finally:
        rita.close()
        rita_p.close()
