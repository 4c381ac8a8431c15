"""Panel details: plurals, the message area, settings that fit, class colours from the store, the
map's height, and Run disabled (with the missing weights named) when no branch can run."""

from __future__ import annotations

import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.store import Project

from .conftest import square


def test_counts_read_as_english(project: Project, open_app) -> None:
    app = open_app(project)
    assert app.accept_above(0.9) and "accepted 1 candidate with score" in app.panel.message.value
    assert "<b class='t2s-accepted'>1</b> annotation<" in app.panel.progress.value
    assert "<b class='t2s-left'>3</b> candidates left" in app.panel.progress.value
    app.accept_above(0.5)
    assert "accepted 2 candidates with score" in app.panel.message.value
    assert "<b class='t2s-left'>1</b> candidate left" in app.panel.progress.value


def test_long_messages_wrap_inside_a_fixed_area(project: Project, open_app) -> None:
    app = open_app(project)
    layout = app.panel.message.layout
    assert (layout.height, layout.overflow) == ("4.5em", "auto")
    with pytest.raises(InputError):
        app.go_to("x" * 400)
    app.panel.goto.value = "y" * 400
    value = app.panel.message.value
    assert "white-space:normal" in value and "overflow-wrap:anywhere" in value
    assert app.panel.message.layout.height == "4.5em"  # unchanged by the long text


def _inside(widget) -> list:
    """Every widget inside ``widget`` (through ``children``), depth first."""
    return [d for c in getattr(widget, "children", ()) or () for d in (c, *_inside(c))]


def test_prompt_settings_wrap_within_the_panel(project: Project, open_app) -> None:
    app = open_app(project)
    row = next(c for c in _inside(app.panel.widget) if app.panel.previous in getattr(c, "children", ()))
    assert row.layout.flex_flow == "row wrap"
    (_display, settings, _help) = [c for c in _inside(app.panel.widget) if hasattr(c, "titles")][0].children
    checks_row = settings.children[0]
    assert checks_row.layout.flex_flow == "row wrap"
    assert list(checks_row.children) == list(app.panel.branches.values())
    for box in app.panel.branches.values():
        assert box.indent is False and box.layout.width == "auto"
    for slider in (app.panel.box_threshold, app.panel.clip_threshold):
        assert slider.layout.width == "95%"
    # the six tool buttons wrap inside the 340 px panel (scoped CSS; ipywidgets keeps one line)
    assert app.panel.css in _inside(app.panel.widget)
    assert ".t2s-annotator .t2s-tool > div" in app.panel.css.value and "flex-wrap: wrap" in app.panel.css.value


def test_class_colours_come_from_the_store(tmp_path, road_tiles, open_app) -> None:
    from text2seg_widgets.core import Candidate

    p = Project.create(tmp_path / "colours", classes=["water", "building"])
    try:
        rec = p.add_image(road_tiles[0])
        p.add_candidates(rec.id, [Candidate.from_mask(square(400, 400, 0, 50, 0, 50), class_name="water",
                                                      score=0.9, branch="detector")])
        water = p.class_info("water").color
        assert water == "#00b4ff"  # blue, by the store's convention
        app = open_app(p)
        (feature,) = app.layers.features("water", "proposed")
        assert feature["properties"]["style"]["color"] == water
        assert f"background:{water}" in app.panel.legend.value
        p.update_class("water", color="#0000ff")  # a colour the project sets wins
        app.refresh()
        (feature,) = app.layers.features("water", "proposed")
        assert feature["properties"]["style"]["color"] == "#0000ff"
    finally:
        p.close()


def test_the_map_has_an_absolute_height(project: Project, open_app) -> None:
    app = open_app(project, map_height="520px")
    assert app.map.layout.height == "520px" and app.view.widget.layout.height == "520px"
    assert app.view.widget.layout.min_height == "520px"
    with pytest.raises(InputError, match="absolute"):
        open_app(project, map_height="100%")


def test_run_is_disabled_with_the_missing_weights_named(project: Project, open_app) -> None:
    app = open_app(project)  # review only
    assert app.panel.run.disabled
    reason = app.panel.run_reason.value
    for name in ("grounding-dino-tiny", "sam-vit-b", "clip-vit-b-16", "sam3"):
        assert f"text2seg-widgets weights fetch {name}" in reason
    assert "needs detector" not in reason and "segmenter" not in reason


def test_run_with_a_box_only_segmenter_names_what_each_branch_needs(project: Project, open_app) -> None:
    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
    from text2seg_widgets.models.modelset import ModelSet
    from text2seg_widgets.widgets.prompting import available_branches

    models = ModelSet(segmenter=LiteMedSamSegmenter.from_checkpoint(device="cpu"))
    assert available_branches(models) == {"detector": ["grounding-dino-tiny"],
                                          "heatmap": ["clip-vit-b-16", "sam-vit-b"],
                                          "filter": ["sam-vit-b", "clip-vit-b-16"], "concept": ["sam3"]}
    app = open_app(project, models)
    assert app.panel.run.disabled and app.runnable_branches() == ()
    with pytest.raises(InputError, match="detector branch needs grounding-dino-tiny"):
        app.run_prompt("roof", "building", wait=True, branches=("detector",))


def test_run_is_enabled_when_a_branch_can_run(project: Project, tiny_models, open_app) -> None:
    from text2seg_widgets.widgets.prompting import available_branches

    assert available_branches(tiny_models) == {b: [] for b in ("detector", "heatmap", "filter", "concept")}
    app = open_app(project, tiny_models)
    assert not app.panel.run.disabled and app.panel.run_reason.value == ""
