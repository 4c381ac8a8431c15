"""SAM clicks and boxes, text prompts, keyboard shortcuts and map/GeoJSON/draw events."""

from __future__ import annotations

import numpy as np
import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.store import Project
from text2seg_widgets.widgets import KEYMAP
from text2seg_widgets.widgets.shortcuts import event_to_key

from .conftest import pick_box, pick_click


def top(project: Project, image_id: int):
    return max(project.candidates(image_id), key=lambda c: c.candidate.score)


def test_click_refines_the_selected_mask_with_the_cached_embedding(project: Project, tiny_models, open_app) -> None:
    app = open_app(project, tiny_models)
    seg = tiny_models.segmenter
    c1 = top(project, app.image_id)
    x, y, expected = pick_click(seg, app.image.rgb, mask=c1.mask())
    app.select(c1)
    before = seg.encoder_calls
    ann = app.click(x, y, positive=True)
    after_first = seg.encoder_calls
    rec = project.annotation(ann)
    assert project.candidate(c1.id).status == "accepted" and rec.candidate_id == c1.id
    assert np.array_equal(rec.mask(), expected)  # SAM's answer (box of the mask + click) is stored
    assert not np.array_equal(rec.mask(), c1.mask())
    assert app.session.logits is not None  # the previous answer is fed back to the next click
    done = 1
    for px, py, positive in [(x + 9, y + 9, False), (x - 9, y + 4, True)]:
        try:
            assert app.click(px, py, positive=positive) == ann  # the same annotation, refined again
            done += 1
        except InputError as exc:  # random weights may answer a click with an empty mask
            assert "empty mask" in str(exc)
    assert seg.encoder_calls == after_first <= before + 1  # one encode for any number of clicks
    assert len(app.session.points) == done  # a failed click leaves no point behind
    assert app.last_refine_seconds is not None and app.last_refine_seconds > 0


def test_click_with_nothing_selected_creates_a_mask_of_the_current_class(project: Project, tiny_models, open_app) -> None:
    app = open_app(project, tiny_models)
    app.set_class("road")
    x, y, expected = pick_click(tiny_models.segmenter, app.image.rgb)
    n = len(project.annotations(app.image_id))
    ann = app.click(x, y)
    assert len(project.annotations(app.image_id)) == n + 1
    rec = project.annotation(ann)
    assert rec.class_name == "road" and rec.source == "sam:tiny-sam"
    assert np.array_equal(rec.mask(), expected)


def test_an_empty_sam_answer_stores_nothing(project: Project, open_app) -> None:
    from text2seg_widgets.models.modelset import ModelSet
    from text2seg_widgets.models.tiny import tiny_sam_segmenter

    seg = tiny_sam_segmenter(seed=0)  # this random SAM answers single clicks with empty masks
    app = open_app(project, ModelSet(segmenter=seg))
    x, y, _ = pick_click(seg, app.image.rgb, empty=True)
    with pytest.raises(InputError, match="empty mask"):
        app.click(x, y)
    assert project.annotations(app.image_id) == [] and app.session.points == []


def test_click_outside_the_image_changes_nothing(project: Project, tiny_models, open_app) -> None:
    app = open_app(project, tiny_models)
    app.select(top(project, app.image_id))
    for x, y in [(-1, 5), (5, 400), (400, 0), (float("nan"), 3)]:
        with pytest.raises(InputError, match="outside the 400 x 400 image"):
            app.click(x, y)
    app._ui(app.click, 1000, 1000)
    assert "outside" in app.panel.message.value
    assert project.annotations(app.image_id) == []
    assert app.session is None or app.session.points == []


def test_box_creates_a_new_mask_and_refines_a_selected_one(project: Project, tiny_models, open_app) -> None:
    app = open_app(project, tiny_models)
    (x0, y0, x1, y1), expected = pick_box(tiny_models.segmenter, app.image.rgb)
    app.clear_selection()
    ann = app.box(x1, y1, x0, y0)  # corners in any order
    rec = project.annotation(ann)
    assert rec.class_name == "building" and rec.candidate_id is None
    assert np.array_equal(rec.mask(), expected)
    assert app.selection == ("annotation", ann)
    second = app.box(x0, y0, x1, y1)  # every box is a new annotation, even with one selected
    assert second != ann and len(project.annotations(app.image_id)) == 2
    assert "new annotation" in app.panel.message.value
    app.select(("annotation", ann))
    app.toggle_refine(True)  # the explicit choice: now a box refines the selected mask
    assert app.box(x0, y0, x1, y1) == ann and len(project.annotations(app.image_id)) == 2
    assert "refined annotation" in app.panel.message.value
    with pytest.raises(InputError, match="does not cover"):
        app.box(500, 500, 600, 600)


def test_sam_tools_without_a_segmenter_explain_what_to_load(project: Project, open_app) -> None:
    app = open_app(project)  # review-only
    with pytest.raises(InputError, match="need a segmenter"):
        app.box(0, 0, 50, 50)
    with pytest.raises(InputError, match="no models loaded"):
        app.run_prompt("roof", "building")


def test_box_only_segmenter_says_clicks_need_a_sam_checkpoint(project: Project, open_app) -> None:
    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
    from text2seg_widgets.models.modelset import ModelSet

    app = open_app(project, ModelSet(segmenter=LiteMedSamSegmenter.from_checkpoint(device="cpu")))
    app.clear_selection()
    with pytest.raises(InputError, match="clicks need a SAM checkpoint"):
        app.click(100, 100)
    assert project.annotations(app.image_id) == []
    ann = app.box(20, 100, 200, 140)  # boxes keep working
    assert project.annotation(ann).area > 0


def test_prompt_run_in_the_background_adds_candidates(project: Project, open_app) -> None:
    from text2seg_widgets.models.tiny import tiny_model_set
    from text2seg_widgets.pipeline import PipelineConfig

    # own models (no state left by other tests' annotators); random weights give random scores,
    # so open the gates: the run must propose something
    models = tiny_model_set(seed=1)
    app = open_app(project, models, pipeline_config=PipelineConfig(text_threshold=0.0, heatmap_min_share=0.0))
    app.panel.box_threshold.value = app.panel.box_threshold.min
    image_id = project.images()[1].id
    app.show_image(image_id)
    assert project.candidates(image_id) == []
    thread = app.run_prompt("asphalt road", "road", branches=("detector", "heatmap"))
    assert app.panel.run.disabled and app.panel.running.layout.visibility == "visible"
    app.wait(timeout=300)
    assert not thread.is_alive()
    cands = project.candidates(image_id)
    assert cands and {c.class_name for c in cands} == {"road"}, app.panel.message.value
    assert {c.candidate.prompt for c in cands} <= {"asphalt road"}
    assert not app.panel.run.disabled
    assert f"{len(cands)} new candidate{'' if len(cands) == 1 else 's'} on image" in app.panel.message.value
    assert ("road", "proposed") in app.layers.groups()


def test_prompt_run_names_missing_models(project: Project, tiny_models, open_app) -> None:
    from text2seg_widgets.models.modelset import ModelSet

    app = open_app(project, ModelSet(segmenter=tiny_models.segmenter))
    with pytest.raises(InputError, match="detector branch needs grounding-dino-tiny"):
        app.run_prompt(None, None, wait=True, branches=("detector",))
    app._ui(app.run_prompt, None, None)
    assert "weights fetch" in app.panel.message.value


def test_shortcuts_dispatch_to_actions(project: Project, tiny_models, open_app) -> None:
    app = open_app(project, tiny_models)
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
    assert app.mode == "positive" and app.panel.tool.value == "positive"
    app.handle_key("m")
    assert app.mode == "negative"
    app.handle_key("Escape")
    assert app.selection is None
    with pytest.raises(InputError, match="no class 3"):
        app.handle_key("3")
    assert app.handle_key("w") is None  # an unbound key
    assert app.handle_key("n") == "next_image" and app.image_id == image_id  # candidates left
    assert app.handle_key("d") == "finish_reject_rest" and app.image_id != image_id
    assert all(hasattr(app, action) for action, _ in KEYMAP.values())


def test_ipyevents_key_events_are_normalised() -> None:
    assert event_to_key({"key": "z", "ctrlKey": True}) == "ctrl+z"
    assert event_to_key({"key": "Z", "ctrlKey": True, "shiftKey": True}) == "ctrl+shift+z"
    assert event_to_key({"key": "A", "shiftKey": True}) == "a"
    assert event_to_key({"key": "Shift"}) is None
    assert event_to_key({"key": "Escape"}) == "Escape"


def test_map_geojson_and_draw_events_reach_the_actions(project: Project, tiny_models, open_app) -> None:
    app = open_app(project, tiny_models)
    c1 = top(project, app.image_id)
    (layer,) = [v for k, v in app.layers.layers.items() if k[:2] == ("building", "proposed")]
    feature = next(f for f in layer.data["features"] if f["properties"]["id"] == c1.id)
    layer._handle_mouse_events(None, {"event": "click", "feature": feature,
                                      "properties": feature["properties"]}, [])
    assert app.selection == ("candidate", c1.id)
    app.panel.accept.click()
    assert project.candidate(c1.id).status == "accepted"
    app.set_mode("positive")
    x, y, _ = pick_click(tiny_models.segmenter, app.image.rgb, mask=c1.mask())
    app.map._handle_leaflet_event(None, {"event": "interaction", "type": "click",
                                         "coordinates": [-y, x]}, [])
    assert app.session is not None and app.session.points == [(x, y)]
    app.clear_selection()
    app.set_mode("box")
    (x0, y0, x1, y1), _ = pick_box(tiny_models.segmenter, app.image.rgb)
    rect = {"type": "Feature", "properties": {"style": {"color": "#00aaff"}}, "geometry": {
        "type": "Polygon", "coordinates": [[[x0, -y1], [x0, -y0], [x1, -y0], [x1, -y1], [x0, -y1]]]}}
    n = len(project.annotations(app.image_id))
    app.draw_control._handle_leaflet_event(None, {"event": "draw:created", "geo_json": rect}, [])
    assert len(project.annotations(app.image_id)) == n + 1
    assert app.session.box.tolist() == [x0, y0, x1, y1]
    app.panel.tool.value = "polygon-cut"
    poly = {"type": "Feature", "properties": {"style": {"color": "#ff8800"}}, "geometry": {
        "type": "Polygon", "coordinates": [[[0, 0], [400, 0], [300, -400], [0, 0]]]}}
    target = app.selection[1]
    area = project.annotation(target).area
    app.draw_control._handle_leaflet_event(None, {"event": "draw:created", "geo_json": poly}, [])
    after = {a.id: a.area for a in project.annotations(app.image_id)}
    assert after.get(target, 0) < area  # cut (or removed entirely when nothing was left)


def test_a_key_event_delivered_twice_acts_once(project: Project, open_app) -> None:
    app = open_app(project)
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


def test_next_image_embedding_is_prefetched_while_working(project: Project, open_app) -> None:
    from text2seg_widgets.models.tiny import tiny_sam_segmenter
    from text2seg_widgets.models.modelset import ModelSet
    from text2seg_widgets.widgets.overlay import load_image

    first, second = project.images()[:2]
    # an encoder that sees 512 px: each 400 px image is one prompt window, so encoding the next
    # image whole ahead of time is what its boxes need
    probe = tiny_sam_segmenter(seed=1, img_size=512)  # a separate adapter with the same weights
    box1, _ = pick_box(probe, load_image(first.path).rgb)
    box2, expected = pick_box(probe, load_image(second.path).rgb)
    seg = tiny_sam_segmenter(seed=1, img_size=512)
    app = open_app(project, ModelSet(segmenter=seg))
    app.clear_selection()
    app.box(*box1)  # encodes image 1, then starts encoding image 2 in the background
    app.keeper.join(timeout=120)
    assert seg.encoder_calls == 1 and app.keeper.prefetch_encodes == 1
    assert app.finish_reject_rest() == second.id
    ann = app.box(*box2)
    assert seg.encoder_calls == 1  # image 2 was not encoded again on the segmenter
    # the moved embedding is the right one: the probe, which encoded image 2 itself, agrees
    assert np.array_equal(project.annotation(ann).mask(), expected)


def test_prompt_runs_go_through_the_one_tile_loop(project: Project, tiny_models, open_app,
                                                  monkeypatch) -> None:
    """The run hands the WHOLE image and the visible window (col, row, width, height) of a big one
    to pipeline.tiles.segment_array and stores exactly what it returns."""
    from text2seg_widgets.core import Candidate
    from text2seg_widgets.pipeline import tiles
    from text2seg_widgets.widgets import prompting

    from .conftest import square

    calls = []

    def fake_segment_array(pipeline, rgb, *, window=None, **kwargs):
        calls.append((rgb.shape, window, tuple(pipeline.config.branches)))
        return [Candidate.from_mask(square(rgb.shape[0], rgb.shape[1], 10, 20, 30, 60), class_name="road",
                                    score=0.7, branch="detector", prompt="asphalt")]

    monkeypatch.setattr(tiles, "segment_array", fake_segment_array)
    app = open_app(project, tiny_models)
    image_id = project.images()[1].id
    app.show_image(image_id)
    (new,) = app.run_prompt("asphalt", "road", wait=True, branches=("detector",))
    assert calls == [((400, 400, 3), None, ("detector",))]
    rec = project.candidate(new)
    assert rec.image_id == image_id and rec.candidate.bbox == [30, 10, 30, 10]
    monkeypatch.setattr(prompting, "BIG_SIDE", 300)  # the 400 px tile now counts as big
    for trait, value in [("south", -250.0), ("north", -50.0), ("west", 100.0), ("east", 380.0)]:
        app.map.set_trait(trait, value)
    app.run_prompt("asphalt", "road", wait=True, branches=("detector",))
    assert calls[-1] == ((400, 400, 3), (100, 50, 280, 200), ("detector",))


def _descendants(widget) -> list:
    """``widget`` and every widget inside it (through ``children``)."""
    out = [widget]
    for child in getattr(widget, "children", ()) or ():
        out += _descendants(child)
    return out


def test_keys_are_watched_outside_the_text_inputs(project: Project, open_app) -> None:
    """ipyevents' key listener stops every keydown on the page while the pointer is over the watched
    widget (and focuses that widget on mouse-enter), so the widgets it watches must not contain the
    go-to box, the prompt box or a slider's editable readout; everything else stays watched, so the
    shortcuts work wherever the pointer is on the map, the buttons and the lists."""
    from ipyevents import Event

    app = open_app(project)
    panel = app.panel
    events = app.key_events
    assert events and all(isinstance(ev, Event) and ev.watched_events == ["keydown"] for ev in events)
    sources = [ev.source for ev in events]
    watched = [d for s in sources for d in _descendants(s)]
    assert app.view.widget in sources  # the whole map (it is replaced inside this box)
    typed = (panel.goto, panel.prompt, panel.min_score, panel.box_threshold, panel.clip_threshold)
    assert set(panel.text_inputs) == set(typed)
    assert not any(d is t for d in watched for t in typed)
    keyed = [*panel.buttons().values(), panel.items, panel.images, panel.class_picker, panel.tool,
             panel.order, panel.filter, panel.progress, panel.message, panel.legend, panel.help,
             *panel.branches.values()]
    missing = [k for k in keyed if not any(d is k for d in watched)]
    assert missing == []
    assert len(sources) <= 12  # sections, not one listener per control
    app.close()
    assert all(ev.comm is None for ev in events)  # closed with the annotator
