"""The active tool decides what a drawn shape or a map click does, never the shape.

Driven through the payloads the browser sends: ipyleaflet's DrawControl ``draw:created`` message
(a GeoJSON Feature whose ``properties.style`` holds the Leaflet layer options) and the map's
``interaction`` message (``type: click``, ``coordinates: [lat, lng]``). On a pixel-space map
pixel (x, y) sits at lat = -y, lng = x.
"""

from __future__ import annotations

import numpy as np
import pytest

from text2seg_widgets.store import Project

from .conftest import pick_box, pick_click, square

#: Leaflet layer options as the browser reports them for the draw control's two tools
RECT_STYLE = {"stroke": True, "color": "#00aaff", "weight": 2, "opacity": 0.5, "fill": True,
              "fillColor": None, "fillOpacity": 0.05, "clickable": True, "showArea": True}
POLY_STYLE = {"stroke": True, "color": "#ff8800", "weight": 2, "opacity": 0.5, "fill": True,
              "fillColor": None, "fillOpacity": 0.1, "clickable": True}


def rectangle(x0: float, y0: float, x1: float, y1: float) -> dict:
    """What Leaflet's rectangle tool sends: the ring sw, nw, ne, se, sw in [lng, lat]."""
    ring = [[x0, -y1], [x0, -y0], [x1, -y0], [x1, -y1], [x0, -y1]]
    return {"type": "Feature", "properties": {"style": RECT_STYLE},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def polygon(points: list[tuple[float, float]], style: dict = POLY_STYLE) -> dict:
    ring = [[x, -y] for x, y in points] + [[points[0][0], -points[0][1]]]
    return {"type": "Feature", "properties": {"style": style},
            "geometry": {"type": "Polygon", "coordinates": [ring]}}


def draw(app, feature: dict) -> None:
    app.draw_control._handle_leaflet_event(None, {"event": "draw:created", "geo_json": feature}, [])


def map_click(app, x: float, y: float) -> None:
    app.map._handle_leaflet_event(None, {"event": "interaction", "type": "click",
                                         "coordinates": [-y, x]}, [])


def annotations(project: Project, image_id: int) -> dict[int, int]:
    return {a.id: a.area for a in project.annotations(image_id)}


def test_a_rectangle_drawn_in_polygon_cut_mode_cuts(project: Project, open_app) -> None:
    app = open_app(project)
    ann = app.polygon([(100, 100), (200, 100), (200, 150), (100, 150)])
    app.set_mode("polygon-cut")
    draw(app, rectangle(150, 90, 210, 160))  # an axis-aligned 4-corner shape: still a cut
    rec = project.annotation(ann)
    assert rec.area == 50 * 50
    assert np.array_equal(rec.mask(), square(400, 400, 100, 150, 100, 150))
    assert "polygon cut from annotation" in app.panel.message.value


def test_a_rectangle_drawn_in_polygon_add_mode_adds_those_pixels(project: Project, open_app) -> None:
    app = open_app(project)
    app.set_mode("polygon-add")
    app.set_class("road")
    draw(app, rectangle(20, 30, 120, 80))
    (ann,) = project.annotations(app.image_id)
    assert ann.class_name == "road" and ann.source == "manual" and ann.area == 100 * 50
    assert np.array_equal(ann.mask(), square(400, 400, 30, 80, 20, 120))


def test_a_polygon_drawn_in_box_mode_prompts_sam_with_its_bounds(project: Project, tiny_models,
                                                                  open_app) -> None:
    app = open_app(project, tiny_models)
    (x0, y0, x1, y1), expected = pick_box(tiny_models.segmenter, app.image.rgb)
    app.clear_selection()
    app.set_mode("box")
    # a triangle drawn with the polygon tool whose bounds are the box
    draw(app, polygon([(x0, y0), (x1, y0 + (y1 - y0) / 2), (x0, y1)]))
    (ann,) = project.annotations(app.image_id)
    assert ann.source == "sam:tiny-sam" and np.array_equal(ann.mask(), expected)
    assert app.session.box.tolist() == [x0, y0, x1, y1]


@pytest.mark.parametrize("mode, shapes", [("select", None), ("positive", None), ("negative", None),
                                          ("box", {"rectangle"}),
                                          ("polygon-add", {"rectangle", "polygon"}),  # a rectangle is a polygon there
                                          ("polygon-cut", {"rectangle", "polygon"})])
def test_the_draw_toolbar_offers_only_the_active_tools_shapes(project: Project, open_app, mode,
                                                              shapes) -> None:
    app = open_app(project)
    app.set_mode(mode)
    assert app.mode == mode and app.panel.tool.value == mode
    on_map = [c for c in app.map.controls if c is app.draw_control]
    if shapes is None:
        assert on_map == []  # point and select modes: no drawing, so no click is a polygon corner
    else:
        assert on_map == [app.draw_control]
        offered = {k for k in ("rectangle", "polygon", "polyline", "circle", "circlemarker", "marker")
                   if getattr(app.draw_control, k)}
        assert offered == shapes


@pytest.mark.parametrize("mode", ["box", "polygon-add", "polygon-cut"])
def test_map_clicks_outside_point_modes_change_nothing(project: Project, tiny_models, open_app, mode) -> None:
    app = open_app(project, tiny_models)
    c1 = max(project.candidates(app.image_id), key=lambda c: c.candidate.score)
    app.select(c1)
    app.set_mode(mode)
    for x, y in [(30, 30), (150, 200), (320, 40)]:  # polygon corners, or clicks beside masks
        map_click(app, x, y)
    assert project.annotations(app.image_id) == []
    assert project.candidate(c1.id).status == "proposed"
    assert app.session is None and app.selection == ("candidate", c1.id)


def test_in_the_select_tool_a_click_on_empty_map_deselects_and_one_on_a_mask_does_not(
        project: Project, tiny_models, open_app) -> None:
    app = open_app(project, tiny_models)
    c1 = max(project.candidates(app.image_id), key=lambda c: c.candidate.score)
    ys, xs = np.nonzero(c1.mask())
    app.select(c1)
    map_click(app, float(xs[0]) + 0.5, float(ys[0]) + 0.5)  # on the mask (its own click selects it)
    assert app.selection == ("candidate", c1.id)
    covered = np.zeros((400, 400), bool)
    for c in project.candidates(app.image_id):
        covered |= c.mask()
    y, x = np.argwhere(~covered)[0]
    map_click(app, float(x) + 0.5, float(y) + 0.5)  # beside every mask
    assert app.selection is None and "selection cleared" in app.panel.message.value
    assert project.annotations(app.image_id) == [] and project.candidate(c1.id).status == "proposed"


def test_a_map_click_in_point_mode_is_a_sam_point(project: Project, tiny_models, open_app) -> None:
    app = open_app(project, tiny_models)
    x, y, expected = pick_click(tiny_models.segmenter, app.image.rgb)
    app.clear_selection()
    app.set_mode("negative")
    app.set_mode("positive")
    map_click(app, x, y)
    (ann,) = project.annotations(app.image_id)
    assert np.array_equal(ann.mask(), expected) and app.session.labels == [1]


def test_a_shape_arriving_in_a_non_drawing_mode_is_ignored(project: Project, open_app) -> None:
    app = open_app(project)
    app.set_mode("polygon-add")
    control = app.draw_control
    app.set_mode("negative")  # the toolbar is gone; a late message from it must not act
    control._handle_leaflet_event(None, {"event": "draw:created",
                                         "geo_json": rectangle(10, 10, 60, 60)}, [])
    assert project.annotations(app.image_id) == []
    ring = np.array([[10.0, 10.0], [60.0, 10.0], [60.0, 60.0], [10.0, 60.0]])
    assert app.tools.shape_drawn([ring]) is None
    assert project.annotations(app.image_id) == []
    assert "choose box, polygon adds or polygon cuts" in app.panel.message.value


def test_tool_keys_and_buttons(project: Project, open_app) -> None:
    app = open_app(project)
    for key, mode in [("b", "box"), ("o", "polygon-add"), ("c", "polygon-cut"), ("p", "positive"),
                      ("m", "negative"), ("s", "select")]:
        app.handle_key(key)
        assert app.mode == mode and app.panel.tool.value == mode
    app.panel.tool.value = "polygon-cut"  # the toggle buttons in the panel
    assert app.mode == "polygon-cut"
    labels = dict(app.panel.tool.options)
    assert labels == {"select": "select", "box": "box", "polygon adds": "polygon-add",
                      "polygon cuts": "polygon-cut", "+ point": "positive", "- point": "negative"}


def test_switching_tools_never_closes_a_draw_control(project: Project, open_app) -> None:
    """ipyleaflet's front end drops every draw:created listener of the map when a draw control's
    view is removed; a control closed after its successor was added left the successor deaf (seen
    in JupyterLab). The controls are made once and kept."""
    app = open_app(project)
    app.set_mode("box")
    box_control = app.draw_control
    app.set_mode("polygon-cut")
    poly_control = app.draw_control
    app.set_mode("select")
    app.set_mode("box")
    assert app.draw_control is box_control and box_control.comm is not None
    app.set_mode("polygon-add")
    assert app.draw_control is poly_control and poly_control.comm is not None
    assert [c for c in app.map.controls if isinstance(c, type(poly_control))] == [poly_control]
