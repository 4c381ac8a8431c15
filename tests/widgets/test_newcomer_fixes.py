"""What a newcomer's first run found (issue 17): skipped is not done, the list tells tiles of one
scene apart, masks can be hidden / faded / hidden by class, point tools say they need SAM, a
rejected rectangle in the polygon tools, and the status line says kernel time."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from text2seg_widgets.store import Project

from .conftest import pick_box


def test_the_header_counts_skipped_apart_from_done(project: Project, open_app) -> None:
    app = open_app(project)
    app.finish_reject_rest()
    app.skip_image("clouds")
    progress = app.panel.progress.value
    assert "1/3</b> images done, 1 skipped" in progress


def test_tiles_of_one_scene_are_listed_with_their_window(tmp_path: Path, shared_data: Path, open_app) -> None:
    scene = shared_data / "scenes" / "berkeley_campus.jpg"
    p = Project.create(tmp_path / "p", classes=["building"])
    try:
        p.add_image(scene, window=(0, 0, 512, 512))
        p.add_image(scene, window=(512, 0, 512, 512))
        app = open_app(p)
        labels = [label for label, _ in app.panel.images.options]
        assert labels[0].endswith("berkeley_campus.jpg [0,0 512x512]")
        assert labels[1].endswith("berkeley_campus.jpg [512,0 512x512]")
    finally:
        p.close()


def test_masks_can_be_hidden_faded_and_hidden_by_class(project: Project, open_app) -> None:
    app = open_app(project)
    assert app.layers.groups() == {("building", "proposed"), ("road", "proposed")}
    app.handle_key("h")
    assert app.layers.groups() == set() and "masks hidden" in app.panel.message.value
    assert app.panel.show_masks.value is False
    app.handle_key("h")
    assert app.layers.groups() == {("building", "proposed"), ("road", "proposed")}
    app.panel.opacity.value = 0.5  # the slider, as the browser moves it
    (feature, *_) = app.layers.features("building", "proposed")
    assert feature["properties"]["style"]["fillOpacity"] == 0.075  # 0.15 at full opacity
    app.panel.hidden.value = ("road",)
    assert app.layers.groups() == {("building", "proposed")}


def test_point_tools_say_they_need_sam_with_a_box_only_segmenter(project: Project, open_app) -> None:
    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
    from text2seg_widgets.models.modelset import ModelSet

    app = open_app(project, ModelSet(segmenter=LiteMedSamSegmenter.from_checkpoint(device="cpu")))
    labels = dict((mode, label) for label, mode in app.panel.tool.options)
    assert labels["positive"] == "+ point (needs SAM)" and labels["negative"] == "- point (needs SAM)"
    assert labels["box"] == "box"
    app.set_mode("positive")
    app.clear_selection()
    app.view._on_click(100.0, 100.0)  # noqa: SLF001 - a map click as MapView delivers it
    assert "need a SAM checkpoint" in app.panel.message.value and project.annotations(app.image_id) == []


def test_a_box_reports_kernel_time_and_records_the_model(project: Project, tiny_models, open_app) -> None:
    app = open_app(project, tiny_models)
    box, _ = pick_box(tiny_models.segmenter, app.image.rgb)
    app.clear_selection()
    ann = app.box(*box)
    message = app.panel.message.value
    assert f"box: new annotation {ann}; kernel time " in message and " ms" in message
    assert project.annotation(ann).source == "sam:tiny-sam"
    assert np.isfinite(app.last_refine_seconds)
