"""SAM clicks and boxes, text prompts, keyboard shortcuts and map/GeoJSON/draw events."""

from __future__ import annotations

import numpy as np
import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.store import Project
from text2seg_widgets.widgets import KEYMAP, Annotator
from text2seg_widgets.widgets.shortcuts import event_to_key


def top(project: Project, image_id: int):
    return max(project.candidates(image_id), key=lambda c: c.candidate.score)


def test_click_refines_the_selected_mask_with_the_cached_embedding(project: Project, tiny_models) -> None:
    app = Annotator(project, tiny_models)
    seg = tiny_models.segmenter
    c1 = top(project, app.image_id)
    app.select(c1)
    before = seg.encoder_calls
    ann = app.click(50, 30, positive=True)
    after_first = seg.encoder_calls
    rec = project.annotation(ann)
    assert project.candidate(c1.id).status == "accepted" and rec.candidate_id == c1.id
    assert not np.array_equal(rec.mask(), c1.mask())  # SAM's answer replaced the candidate's mask
    mask1 = rec.mask()
    assert app.click(70, 40, positive=False) == ann  # the same annotation is refined again
    app.click(20, 20, positive=True)
    assert seg.encoder_calls == after_first <= before + 1  # one encode for any number of clicks
    assert len(app.session.points) == 3 and app.session.labels == [1, 0, 1]
    assert app.session.logits is not None  # the previous answer is fed back
    assert app.last_refine_seconds is not None and app.last_refine_seconds > 0
    assert project.annotation(ann).mask().shape == mask1.shape


def test_click_with_nothing_selected_creates_a_mask_of_the_current_class(project: Project, tiny_models) -> None:
    app = Annotator(project, tiny_models)
    app.set_class("road")
    n = len(project.annotations(app.image_id))
    ann = app.click(200, 200)
    assert len(project.annotations(app.image_id)) == n + 1
    rec = project.annotation(ann)
    assert rec.class_name == "road" and rec.source == "sam" and rec.area > 0


def test_click_outside_the_image_changes_nothing(project: Project, tiny_models) -> None:
    app = Annotator(project, tiny_models)
    app.select(top(project, app.image_id))
    for x, y in [(-1, 5), (5, 400), (400, 0), (float("nan"), 3)]:
        with pytest.raises(InputError, match="outside the 400 x 400 image"):
            app.click(x, y)
    app._ui(app.click, 1000, 1000)
    assert "outside" in app.panel.message.value
    assert project.annotations(app.image_id) == []
    assert app.session is None or app.session.points == []


def test_box_creates_a_new_mask_and_refines_a_selected_one(project: Project, tiny_models) -> None:
    app = Annotator(project, tiny_models)
    app.clear_selection()
    ann = app.box(300, 250, 120, 180)  # corners in any order
    rec = project.annotation(ann)
    assert rec.class_name == "building" and rec.candidate_id is None and rec.area > 0
    assert app.selection == ("annotation", ann)
    app.box(100, 100, 200, 200)  # refines the selected annotation instead of adding one
    assert len(project.annotations(app.image_id)) == 1
    with pytest.raises(InputError, match="does not cover"):
        app.box(500, 500, 600, 600)


def test_sam_tools_without_a_segmenter_explain_what_to_load(project: Project) -> None:
    app = Annotator(project)  # review-only
    with pytest.raises(InputError, match="need a segmenter"):
        app.box(0, 0, 50, 50)
    with pytest.raises(InputError, match="no models loaded"):
        app.run_prompt("roof", "building")


def test_box_only_segmenter_says_clicks_need_a_sam_checkpoint(project: Project) -> None:
    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
    from text2seg_widgets.models.modelset import ModelSet

    app = Annotator(project, ModelSet(segmenter=LiteMedSamSegmenter.from_checkpoint(device="cpu")))
    app.clear_selection()
    with pytest.raises(InputError, match="clicks need a SAM checkpoint"):
        app.click(100, 100)
    assert project.annotations(app.image_id) == []
    ann = app.box(20, 100, 200, 140)  # boxes keep working
    assert project.annotation(ann).area > 0


def test_prompt_run_in_the_background_adds_candidates(project: Project, tiny_models) -> None:
    app = Annotator(project, tiny_models)
    image_id = project.images()[1].id
    app.show_image(image_id)
    assert project.candidates(image_id) == []
    thread = app.run_prompt("asphalt road", "road", branches=("detector", "heatmap"))
    assert app.panel.run.disabled and app.panel.running.layout.visibility == "visible"
    app.wait(timeout=300)
    assert not thread.is_alive()
    cands = project.candidates(image_id)
    assert cands and {c.class_name for c in cands} == {"road"}
    assert {c.candidate.prompt for c in cands} <= {"asphalt road"}
    assert not app.panel.run.disabled
    assert f"{len(cands)} new candidate(s)" in app.panel.message.value
    assert ("road", "proposed") in app.layers.layers


def test_prompt_run_names_missing_models(project: Project, tiny_models) -> None:
    from text2seg_widgets.models.modelset import ModelSet

    app = Annotator(project, ModelSet(segmenter=tiny_models.segmenter))
    with pytest.raises(InputError, match="detector needs detector"):
        app.run_prompt(None, None, wait=True, branches=("detector",))
    app._ui(app.run_prompt, None, None)
    assert "weights fetch" in app.panel.message.value


def test_shortcuts_dispatch_to_actions(project: Project, tiny_models) -> None:
    app = Annotator(project, tiny_models)
    image_id = app.image_id
    cands = sorted(project.candidates(image_id), key=lambda c: -c.candidate.score)
    assert app.handle_key("j") == "select_next"
    assert app.selection == ("candidate", cands[0].id)
    assert app.handle_key("a") == "accept_selected"
    assert project.candidate(cands[0].id).status == "accepted"
    app.handle_key("j")
    assert app.selection == ("candidate", cands[1].id)
    app.handle_key("r")
    assert project.candidate(cands[1].id).status == "rejected"
    app.handle_key("Ctrl+Z")
    assert project.candidate(cands[1].id).status == "proposed"
    app.handle_key("ctrl+y")
    assert project.candidate(cands[1].id).status == "rejected"
    app.select(("candidate", cands[2].id))
    assert app.handle_key("2") == "class road"
    assert project.annotations(image_id)[-1].class_name == "road" and app.current_class == "road"
    app.handle_key("p")
    assert app.mode == "positive" and app.panel.mode.value == "positive"
    app.handle_key("m")
    assert app.mode == "negative"
    app.handle_key("Escape")
    assert app.selection is None
    with pytest.raises(InputError, match="no class 3"):
        app.handle_key("3")
    assert app.handle_key("q") is None
    assert app.handle_key("n") == "next_image" and app.image_id != image_id
    assert all(hasattr(app, action) for action, _ in KEYMAP.values())


def test_ipyevents_key_events_are_normalised() -> None:
    assert event_to_key({"key": "z", "ctrlKey": True}) == "ctrl+z"
    assert event_to_key({"key": "Z", "ctrlKey": True, "shiftKey": True}) == "ctrl+shift+z"
    assert event_to_key({"key": "A", "shiftKey": True}) == "a"
    assert event_to_key({"key": "Shift"}) is None
    assert event_to_key({"key": "Escape"}) == "Escape"


def test_map_geojson_and_draw_events_reach_the_actions(project: Project, tiny_models) -> None:
    app = Annotator(project, tiny_models)
    c1 = top(project, app.image_id)
    layer = app.layers.layers[("building", "proposed")]
    feature = next(f for f in layer.data["features"] if f["properties"]["id"] == c1.id)
    layer._handle_mouse_events(None, {"event": "click", "feature": feature,
                                      "properties": feature["properties"]}, [])
    assert app.selection == ("candidate", c1.id)
    app.panel.accept.click()
    assert project.candidate(c1.id).status == "accepted"
    app.set_mode("positive")
    app.map._handle_leaflet_event(None, {"event": "interaction", "type": "click",
                                         "coordinates": [-30.0, 50.0]}, [])
    assert app.session is not None and app.session.points == [(50.0, 30.0)]
    app.clear_selection()
    rect = {"type": "Feature", "properties": {"style": {"color": "#00aaff"}}, "geometry": {
        "type": "Polygon", "coordinates": [[[120, -200], [120, -150], [220, -150], [220, -200], [120, -200]]]}}
    n = len(project.annotations(app.image_id))
    app._draw._handle_leaflet_event(None, {"event": "draw:created", "geo_json": rect}, [])
    assert len(project.annotations(app.image_id)) == n + 1
    assert app.session.box.tolist() == [120.0, 150.0, 220.0, 200.0]
    app.panel.polygon_mode.value = "subtract"
    poly = {"type": "Feature", "properties": {"style": {"color": "#ff8800"}}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [400, 0], [300, -400], [0, 0]]]}}
    target = app.selection[1]
    area = project.annotation(target).area
    app._draw._handle_leaflet_event(None, {"event": "draw:created", "geo_json": poly}, [])
    after = {a.id: a.area for a in project.annotations(app.image_id)}
    assert after.get(target, 0) < area  # cut (or removed entirely when nothing was left)


def test_a_key_event_delivered_twice_acts_once(project: Project) -> None:
    app = Annotator(project)
    cands = sorted(project.candidates(app.image_id), key=lambda c: -c.candidate.score)
    for c in cands[:2]:
        app.select(c)
        app.accept_selected()
    event = {"type": "keydown", "key": "z", "timeStamp": 1234.5, "target": {"tagName": "DIV"}}
    app._key_event(event)
    app._key_event(dict(event))  # the duplicate seen in Chromium: same key, same timeStamp
    assert len(project.annotations(app.image_id)) == 1
    app._key_event({**event, "timeStamp": 1300.0})  # a second press is a new event
    assert project.annotations(app.image_id) == []
    app._key_event({**event, "key": "y", "timeStamp": 1400.0, "target": {"tagName": "INPUT"}})
    assert project.annotations(app.image_id) == []  # typing in a text box is not a shortcut
