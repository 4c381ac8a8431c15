"""A 10,000-pixel GeoTIFF reviewed whole in JupyterLab itself (Debian's headless Chromium).

The scene (tests/scenes.py) is in Web Mercator with one pixel per zoom-18 tile pixel and a sharp
periodic texture, so at native zoom each map tile on screen must equal its source window pixel
for pixel (an upsampled overview would blur the texture). Tiles come from localtileserver through
the Jupyter server's loopback proxy. Then two boxes drawn one after the other on two known squares
must make two annotations, each in the right place with the right size (LiteMedSAM decodes them on
windows around the boxes). Screenshots: ``test-output/browser/<test name>/``.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from text2seg_widgets.imagery.instances import scene_rle_crop
from text2seg_widgets.imagery.scene import open_scene
from text2seg_widgets.store import Project
from tests.scenes import Z18_ORIGIN, SceneObject, synthetic_scene

from .lab import LabPage, write_notebook

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SIZE = 10000
OBJECTS = [SceneObject(6020, 4040, 6100, 4100), SceneObject(6300, 4200, 6360, 4290)]
CENTER = (6144, 4096)  # the view's centre at native zoom: a tile corner

BUILD = '''
from text2seg_widgets.models.factory import load_models
from text2seg_widgets.store import DB_NAME, Project
from text2seg_widgets.widgets import Annotator
from pathlib import Path

project = Project.open("job") if Path("job", DB_NAME).exists() else Project.create("job", classes=["building"])
if not project.images():
    project.add_image({scene!r})
app = Annotator(project, load_models("offline", device="cpu"), map_height="600px")
app
'''
ZOOM = '''
lng, lat = app.state.frame.to_map([{cx}], [{cy}])
app.map.center = (float(lat[0]), float(lng[0]))
app.map.zoom = 18
'''


def tile_boxes(ui: LabPage) -> list[dict]:
    """The loaded zoom-18 tiles on screen: their tile x, y and page box."""
    return ui.page.evaluate(
        "() => [...document.querySelectorAll('.t2s-annotator img.leaflet-tile-loaded')]"
        ".filter(i => /\\/18\\/\\d+\\/\\d+/.test(i.src)).map(i => { const r = i.getBoundingClientRect();"
        " const m = i.src.match(/\\/18\\/(\\d+)\\/(\\d+)/);"
        " return {x: +m[1], y: +m[2], left: r.left, top: r.top, width: r.width, height: r.height}; })")


def test_a_big_geotiff_at_native_resolution_with_boxes(tmp_path: Path, lab_server, lab_page: LabPage,
                                                       shots: Path) -> None:
    scene = synthetic_scene(tmp_path / "scene10k.tif", SIZE, OBJECTS)
    write_notebook(lab_server.root / "scene.ipynb",
                   [BUILD.format(scene=str(scene)), ZOOM.format(cx=CENTER[0], cy=CENTER[1])])
    ui = lab_page
    ui.open(lab_server.notebook_url("scene.ipynb"))
    ui.run_all()
    ui.wait_cells_done()
    assert not ui.errors(), ui.errors()
    ui.page.wait_for_selector(".t2s-annotator", timeout=ui.timeout_ms)
    ui.focus_cell_of(".t2s-annotator")
    ui.page.locator(".t2s-annotator").first.evaluate("e => e.scrollIntoView({block: 'start'})")
    ui.page.wait_for_function(
        "() => [...document.querySelectorAll('.t2s-annotator img.leaflet-tile-loaded')]"
        ".filter(i => /\\/18\\//.test(i.src)).length >= 6", timeout=ui.timeout_ms)
    ui.page.wait_for_timeout(1000)  # the fade-in of the last tiles
    ui.shot("native_zoom")
    try:
        check_tiles(ui, scene)
        draw_two_boxes(ui)
    except BaseException:
        ui.shot("failure")
        raise
    ui.shot("two_boxes")
    with Project.open(lab_server.root / "job") as p:
        anns = p.annotations()
        assert len(anns) == 2, [(a.id, a.area) for a in anns]
        for obj, ann in zip(OBJECTS, sorted(anns, key=lambda a: a.id)):
            crop, x0, y0 = scene_rle_crop(ann.rle)
            got = np.zeros((SIZE, SIZE), bool)[obj.y0 - 50:obj.y1 + 50, obj.x0 - 50:obj.x1 + 50]
            truth = np.zeros_like(got)
            truth[50:-50, 50:-50] = True
            ys, xs = y0 - (obj.y0 - 50), x0 - (obj.x0 - 50)
            got[max(0, ys):ys + crop.shape[0], max(0, xs):xs + crop.shape[1]] = crop[max(0, -ys):, max(0, -xs):]
            assert ann.area == crop.sum() and (got & truth).sum() / (got | truth).sum() > 0.9, (obj, x0, y0, crop.shape)
            assert ann.source == "sam:litemedsam"


def reference(ui: LabPage) -> tuple[float, float]:
    """Page position of scene pixel (0, 0) at zoom 18, from a tile on screen (1 CSS px per pixel)."""
    t = tile_boxes(ui)[0]
    return t["left"] - (t["x"] - Z18_ORIGIN[0]) * 256, t["top"] - (t["y"] - Z18_ORIGIN[1]) * 256


def check_tiles(ui: LabPage, scene: Path) -> None:
    """Tiles fully inside the map, screenshotted, equal their source windows (scene's stretch)."""
    map_box = ui.page.locator(".t2s-annotator .leaflet-container").first.bounding_box()
    inside = [t for t in tile_boxes(ui) if t["width"] == 256 and t["left"] >= map_box["x"] + 60
              and t["top"] >= map_box["y"] + 10 and t["left"] + 256 <= map_box["x"] + map_box["width"] - 10
              and t["top"] + 256 <= map_box["y"] + map_box["height"] - 10]
    assert inside, f"no whole zoom-18 tile on screen: {tile_boxes(ui)}"
    checked = 0
    with open_scene(scene) as src:
        for t in inside[:3]:
            col, row = (t["x"] - Z18_ORIGIN[0]) * 256, (t["y"] - Z18_ORIGIN[1]) * 256
            png = ui.page.screenshot(clip={"x": t["left"], "y": t["top"], "width": 256, "height": 256})
            shown = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
            expected = src.pixels((col, row, 256, 256))[0].astype(int)
            assert shown.shape == expected.shape
            diff = np.abs(shown - expected)
            assert diff.mean() < 1.0 and np.percentile(diff, 99) <= 3, (t, diff.mean(), diff.max())
            checked += 1
    assert checked >= 1


def draw_two_boxes(ui: LabPage) -> None:
    ui.tool("box")
    ui.wait_kernel_idle()
    ui.page.wait_for_timeout(500)
    ox, oy = reference(ui)
    for n, obj in enumerate(OBJECTS, start=1):
        ui.page.locator(".t2s-annotator .leaflet-draw-draw-rectangle").click()
        ui.drag((ox + obj.x0 - 10, oy + obj.y0 - 10), (ox + obj.x1 + 10, oy + obj.y1 + 10))
        ui.wait_text("t2s-message", f"box: new annotation {n}")
        assert re.search(r"kernel time \d+ ms", ui.text("t2s-message"))
    ui.page.wait_for_selector(".t2s-annotator .leaflet-overlay-pane path", timeout=ui.timeout_ms)
