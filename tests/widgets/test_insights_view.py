"""The Annotator's "learn from decisions" section: calibrate, the accept-above-calibrated preview
shown before the click, the click (one undoable step), and removing prompts that only produce
rejections (undoable through the store's update_class).

The project (image 1 reviewed, images 2 and 3 proposed):

- building / detector, prompts "building" and "roof": 20 accepted at 0.80 .. 0.99 and 2 rejected
  at 0.60 and 0.65. Cuts with >= 20 decisions: 0.80 -> 20/20, 0.65 -> 20/21 = 0.952 >= 0.95,
  0.60 -> 20/22 = 0.909. Threshold 0.65, estimated precision 20/21.
- building / filter, prompt "tent": 5 rejected -> too few decisions (5); "tent" is flagged.
- road / heatmap, prompt "road": 3 accepted, 2 rejected -> too few decisions (5), not flagged.
- water / detector, prompt "lake" (its only prompt): 5 rejected -> flagged, but kept.
- image 2 proposed: building/detector 0.90, 0.70, 0.66 (above 0.65), 0.64 (below), road 0.95
  (road is not calibrated); image 3 proposed: building/detector 0.99.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from text2seg_widgets.insights import CALIBRATION_FILE, load_calibration

from ..insights.helpers import build_project

CLASSES = ({"name": "building", "prompts": ["building", "roof", "tent"]},
           {"name": "road", "prompts": ["road"]}, {"name": "water", "prompts": ["lake"]})


def _reviewed() -> list[tuple]:
    rows = [("building", "detector", "building" if i % 2 else "roof", round(0.80 + 0.01 * i, 2), "accepted")
            for i in range(20)]
    rows += [("building", "detector", "roof", 0.60, "rejected"), ("building", "detector", "roof", 0.65, "rejected")]
    rows += [("building", "filter", "tent", 0.5 + 0.01 * i, "rejected") for i in range(5)]
    rows += [("road", "heatmap", "road", 0.7, "accepted")] * 3 + [("road", "heatmap", "road", 0.4, "rejected")] * 2
    rows += [("water", "detector", "lake", 0.3 + 0.01 * i, "rejected") for i in range(5)]
    return rows


IMAGE2 = [("building", "detector", "roof", 0.90, "proposed"), ("building", "detector", "roof", 0.70, "proposed"),
          ("building", "detector", "building", 0.66, "proposed"),
          ("building", "detector", "roof", 0.64, "proposed"), ("road", "heatmap", "road", 0.95, "proposed")]
IMAGE3 = [("building", "detector", "roof", 0.99, "proposed")]


@pytest.fixture
def learned(tmp_path: Path):
    project, ids = build_project(tmp_path, [_reviewed(), IMAGE2, IMAGE3], classes=CLASSES)
    yield project, ids
    project.close()


def _image_ids(project) -> list[int]:
    return [im.id for im in project.images()]


def _proposed(project, image_id: int) -> set[int]:
    return {r.id for r in project.candidates(image_id=image_id, status="proposed")}


def test_calibrate_shows_thresholds_and_saves_them(learned, open_app) -> None:
    project, _ids = learned
    app = open_app(project, image_id=_image_ids(project)[1])
    view = app.insights
    # the section sits in the panel and sizes itself relative to it (no fixed widths to overflow)
    assert app.panel.widget.children[-1] is view.widget and view.widget.layout.width == "95%"
    for part in (view.thresholds_html, view.preview_html, view.prune_html):
        assert part.layout.width == "95%"
    for part in (view.target, view.scope):
        assert part.layout.width == "55%"
    assert not view.is_open
    view.open()
    assert "no calibrated thresholds yet: press Calibrate" in view.thresholds_html.value
    assert view.accept_button.disabled and "press Calibrate" in view.accept_button.tooltip
    view.calibrate_button.click()
    text = view.thresholds_html.value
    assert "<b>building / detector</b>: score &gt;= 0.650, est. precision 0.952 (21 decisions)" in text
    assert "<b>building / filter</b>: too few decisions (5)" in text
    assert "<b>road / heatmap</b>: too few decisions (5)" in text
    assert "<b>water / detector</b>: too few decisions (5)" in text
    saved = load_calibration(project)
    assert (project.folder / CALIBRATION_FILE).is_file()
    assert saved[("building", "detector")].threshold == pytest.approx(0.65)
    assert saved[("building", "detector")].precision == pytest.approx(20 / 21)
    assert "calibrated 1 of 4 class x branch group(s) from 37 decision(s)" in app.panel.message.value


def test_accept_above_calibrated_previews_accepts_and_undoes(learned, open_app) -> None:
    project, ids = learned
    image2, image3 = _image_ids(project)[1:]
    app = open_app(project, image_id=image2)
    view = app.insights
    view.open()
    view.calibrate()
    above = ids[1][:3]  # 0.90, 0.70, 0.66
    # before the click: this image
    assert view.plan is not None and view.plan.candidate_ids == tuple(above)
    preview = view.preview_html.value
    assert (f"would accept 3 candidate(s) on image {image2}, estimated precision 0.952 "
            "(about 0.1 wrong)") in preview
    assert "building / detector: 3 at score &gt;= 0.650 (precision 0.95)" in preview
    assert "not calibrated: road / heatmap: 1 proposed, too few decisions (5)" in preview
    assert not view.accept_button.disabled and view.accept_button.description == "Accept 3 above calibrated"
    # the whole project adds image 3's candidate
    view.scope.value = "project"
    assert view.plan.candidate_ids == (ids[2][0], *above)
    assert "would accept 4 candidate(s) on the whole project, estimated precision 0.952" in view.preview_html.value
    view.scope.value = "image"
    # a decision made elsewhere in the Annotator refreshes the preview
    app.select(("candidate", above[2]))
    app.accept_selected()
    assert view.plan.candidate_ids == tuple(above[:2])
    assert "would accept 2 candidate(s)" in view.preview_html.value
    app.undo()
    assert view.plan.candidate_ids == tuple(above)
    # the click accepts exactly those, as one step, and the map redraws
    view.accept_button.click()
    assert _proposed(project, image2) == {ids[1][3], ids[1][4]}
    accepted = {a.candidate_id for a in project.annotations(image_id=image2)}
    assert accepted == set(above)
    keys = {it.key for it in app.items()}
    assert not {f"candidate:{c}" for c in above} & keys
    assert f"accepted 3 candidate(s) on image {image2}" in app.panel.message.value
    # nothing qualifies now: disabled, with the reason
    assert view.accept_button.disabled
    assert f"nothing to accept on image {image2}" in view.preview_html.value
    assert "nothing to accept" in view.accept_button.tooltip
    # one undo restores all three
    app.undo()
    assert _proposed(project, image2) == {*above, ids[1][3], ids[1][4]}
    assert not project.annotations(image_id=image2)
    assert view.plan.count == 3 and not view.accept_button.disabled
    assert _proposed(project, image3) == {ids[2][0]}


def test_flagged_prompts_are_removed_and_undo_restores_them(learned, open_app) -> None:
    project, _ids = learned
    app = open_app(project, image_id=_image_ids(project)[1])
    view = app.insights
    view.open()
    text = view.prune_html.value
    assert "<b>building</b>: &#x27;tent&#x27; (0 of 5 accepted)" in text
    assert "every prompt of &#x27;water&#x27; only produced rejections; kept &#x27;lake&#x27;" in text
    assert "road" not in text.split("prompts that only produce rejections:")[1].split("every prompt")[0]
    assert not view.prune_button.disabled
    view.prune_button.click()
    prompts = {c.name: c.prompts for c in project.classes}
    assert prompts == {"building": ("building", "roof"), "road": ("road",), "water": ("lake",)}
    assert "removed prompt(s) building: tent" in app.panel.message.value
    assert view.prune_button.disabled and "no prompt only produces rejections" in view.prune_html.value
    app.undo()  # update_class is one undoable action
    assert project.class_info("building").prompts == ("building", "roof", "tent")
    assert not view.prune_button.disabled and "&#x27;tent&#x27;" in view.prune_html.value


def test_a_closed_section_reads_nothing(learned, open_app, monkeypatch: pytest.MonkeyPatch) -> None:
    from text2seg_widgets.store import Project

    project, ids = learned
    app = open_app(project, image_id=_image_ids(project)[1])
    calls = []
    original = Project.candidates
    monkeypatch.setattr(Project, "candidates", lambda self, *a, **k: calls.append(a) or original(self, *a, **k))
    app.select(("candidate", ids[1][0]))
    app.accept_selected()
    app.undo()
    assert not app.insights.is_open and calls == []
