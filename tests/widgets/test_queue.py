"""The review-queue order: previous/next follow insights.review_queue, jumping to the candidate and
its image."""

from __future__ import annotations

import html

import pytest

from text2seg_widgets.core import Candidate
from text2seg_widgets.errors import InputError
from text2seg_widgets.insights import review_queue
from text2seg_widgets.store import Project

from .conftest import square


@pytest.fixture
def queued(project: Project) -> Project:
    """The project fixture plus two candidates on the third image (one overlapping another class)."""
    third = project.images()[2]
    project.add_candidates(third.id, [
        Candidate.from_mask(square(400, 400, 50, 150, 50, 150), class_name="building", score=0.55,
                            branch="detector"),
        Candidate.from_mask(square(400, 400, 60, 140, 60, 160), class_name="road", score=0.5,
                            branch="heatmap"),
    ])
    return project


def test_queue_order_jumps_to_each_candidate_and_its_image(queued: Project, open_app) -> None:
    expected = review_queue(queued)
    assert len(expected) == 6 and len({q.image_id for q in expected}) == 2
    app = open_app(queued)
    app.set_order("queue")
    assert app.panel.order.value == "queue"
    head = expected[0]
    assert (app.image_id, app.selection) == (head.image_id, ("candidate", head.candidate_id))
    assert f"queue 1/6: candidate {head.candidate_id} on image {head.image_id}" in app.panel.message.value
    for reason in head.reasons:
        assert html.escape(reason) in app.panel.message.value
    seen = [(app.image_id, app.selection[1])]
    for _ in range(5):
        app.go_next()
        seen.append((app.image_id, app.selection[1]))
    assert seen == [(q.image_id, q.candidate_id) for q in expected]
    app.go_previous()
    assert app.selection == ("candidate", expected[4].candidate_id)


def test_reviewed_candidates_drop_out_and_the_end_is_said(queued: Project, open_app) -> None:
    expected = review_queue(queued)
    app = open_app(queued)
    app.panel.order.value = "queue"  # the switch in the panel
    app.reject_selected()  # the head is reviewed
    app.go_previous()  # wraps? no: the first reviewed item is passed over, nothing before it
    assert "start of the review queue" in app.panel.message.value
    for q in expected[1:]:
        assert app.go_next() == q.image_id and app.selection == ("candidate", q.candidate_id)
        app.accept_selected()
    assert app.go_next() is None
    assert "the review queue is empty" in app.panel.message.value


def test_switching_back_to_image_order(queued: Project, open_app) -> None:
    app = open_app(queued)
    first, second, third = [r.id for r in queued.images()]
    assert app.handle_key("q") == "toggle_order" and app.panel.order.value == "queue"
    app.handle_key("q")
    assert app.panel.order.value == "images"
    app.go_to(first)
    assert app.go_next() == second  # image order again
    with pytest.raises(InputError, match="order"):
        app.set_order("random")
