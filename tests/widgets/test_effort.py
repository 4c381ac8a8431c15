"""Effort is recorded for real: how each annotation was made (with how many actions), and the
time spent on each image."""

from __future__ import annotations

import numpy as np
import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.store import Project

from .conftest import pick_box, pick_click


def top(project: Project, image_id: int):
    return max(project.candidates(image_id), key=lambda c: c.candidate.score)


def test_accepted_unchanged_corrected_and_drawn_carry_their_actions(project: Project, tiny_models,
                                                                    open_app) -> None:
    app = open_app(project, tiny_models)
    c1, c2 = sorted(project.candidates(app.image_id), key=lambda c: -c.candidate.score)[:2]
    app.select(c2)
    unchanged = app.accept_selected()
    x, y, _ = pick_click(tiny_models.segmenter, app.image.rgb, mask=c1.mask())
    app.select(c1)
    corrected = app.click(x, y)  # one SAM click on a candidate: accepted and corrected
    app.polygon([(0, 0), (40, 0), (40, 40), (0, 40)], subtract=True)  # one polygon edit
    app.clear_selection()
    app.set_class("road")
    drawn = app.polygon([(300, 300), (380, 300), (380, 380), (300, 380)])
    got = {a.id: (a.origin, a.edit_actions) for a in project.annotations(app.image_id)}
    assert got[unchanged] == ("proposed", 0)
    assert got[corrected] == ("corrected", 2)
    assert got[drawn] == ("drawn", 1)


def test_failed_attempts_count_with_the_next_write(project: Project, open_app) -> None:
    from text2seg_widgets.models.modelset import ModelSet
    from text2seg_widgets.models.tiny import tiny_sam_segmenter

    seg = tiny_sam_segmenter(seed=0)  # answers single clicks with empty masks
    app = open_app(project, ModelSet(segmenter=seg))
    x, y, _ = pick_click(seg, app.image.rgb, empty=True)
    box, expected = pick_box(tiny_sam_segmenter(seed=0), app.image.rgb)
    app.clear_selection()
    with pytest.raises(InputError, match="empty mask"):
        app.click(x, y)
    ann = app.box(*box)
    rec = project.annotation(ann)
    assert np.array_equal(rec.mask(), expected)
    assert (rec.origin, rec.edit_actions) == ("drawn", 2)  # the empty click was work too


def test_time_on_an_image_is_recorded_when_leaving_it_with_idle_gaps_capped(project: Project,
                                                                           open_app) -> None:
    app = open_app(project)
    first, second, _ = [r.id for r in project.images()]
    clock = {"t": 1000.0}
    app.clock.now = lambda: clock["t"]
    app.clock.start(first)  # opened at t=1000
    clock["t"] += 20.0
    app.select_next()  # an action 20 s later
    clock["t"] += 5000.0  # the notebook was left alone for more than an hour
    app.accept_selected()
    clock["t"] += 7.0
    app.go_to(second)  # leaving: 20 + cap + 7 seconds
    seconds = {s.id: s.seconds for s in project.image_summaries()}
    assert seconds[first] == pytest.approx(20.0 + app.clock.idle_cap + 7.0)
    assert seconds[second] == 0.0
    clock["t"] += 3.0
    app.close()  # closing leaves the image too
    assert {s.id: s.seconds for s in project.image_summaries()}[second] == pytest.approx(3.0)
