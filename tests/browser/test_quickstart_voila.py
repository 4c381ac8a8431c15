"""End to end in a real browser: Voila runs the quickstart notebook, Chromium drives the annotator,
and the project database must hold exactly what was done; the COCO export reads back.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from text2seg_widgets.core import Candidate
from text2seg_widgets.store import Project

from .conftest import ROOT, VoilaServer

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TIMEOUT_MS = 120_000


def square(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


def make_project(folder: Path, rs_samples: Path) -> dict[str, int]:
    """A project on the real Potsdam tile with three separated candidates A, B, C."""
    tile = sorted((rs_samples / "potsdam" / "images").glob("*.png"))[0]
    with Project.create(folder, classes=["building", "road", "tree"]) as p:
        rec = p.add_image(tile)
        h, w = rec.height, rec.width
        a, b, c = p.add_candidates(rec.id, [
            Candidate.from_mask(square(h, w, 50, 150, 50, 150), class_name="building", score=0.9, branch="detector"),
            Candidate.from_mask(square(h, w, 60, 120, 300, 450), class_name="road", score=0.8, branch="heatmap"),
            Candidate.from_mask(square(h, w, 300, 420, 100, 200), class_name="building", score=0.7, branch="filter"),
        ])
        return {"image": rec.id, "a": a, "b": b, "c": c, "h": h, "w": w}


class Page:
    """Small helpers over a Playwright page showing one annotator."""

    def __init__(self, page, width: int, height: int, shots: Path) -> None:
        self.page, self.width, self.height, self.shots = page, width, height, shots

    def screen(self, x: float, y: float) -> tuple[float, float]:
        """Image pixel -> page coordinates, through the image overlay's on-screen box."""
        box = self.page.locator("img.leaflet-image-layer").bounding_box()
        return box["x"] + x * box["width"] / self.width, box["y"] + y * box["height"] / self.height

    def click_pixel(self, x: float, y: float) -> None:
        self.page.mouse.click(*self.screen(x, y))

    def wait_text(self, selector: str, text: str) -> None:
        self.page.wait_for_function(
            "([sel, t]) => { const e = document.querySelector(sel); return e && e.innerText.includes(t); }",
            arg=[selector, text], timeout=TIMEOUT_MS)

    def wait_selected(self) -> None:
        self.page.wait_for_selector('path[stroke="#ffff00"]', timeout=TIMEOUT_MS)

    def button(self, css: str) -> None:
        self.page.locator(f"button.{css}").click()

    def shot(self, name: str) -> None:
        self.page.screenshot(path=str(self.shots / f"{name}.png"))

    def key(self, key: str) -> None:
        # ipyevents listens while the pointer is over a watched region (map, buttons, lists)
        self.page.locator(".t2s-panel .t2s-keys").first.hover()
        self.page.keyboard.press(key)


def test_review_loop_in_voila(tmp_path: Path, rs_samples: Path, browser, shots: Path) -> None:
    proj = tmp_path / "proj"
    ids = make_project(proj, rs_samples)
    env = {"TEXT2SEG_PROJECT": str(proj), "TEXT2SEG_MODELS": "tiny",
           "TEXT2SEG_SHARED_DATA": str(rs_samples.parent)}
    server = VoilaServer(ROOT / "notebooks" / "quickstart.ipynb", env, shots / "voila.log")
    try:
        server.wait_ready()
        page = browser.new_page(viewport={"width": 1400, "height": 1900})
        try:
            drive(Page(page, ids["w"], ids["h"], shots), server.url)
        finally:
            page.close()
    finally:
        server.stop()
    check_database(proj, ids, tmp_path)


def drive(ui: Page, url: str) -> None:
    page = ui.page
    page.goto(url, timeout=300_000)
    page.wait_for_selector(".t2s-annotator", timeout=300_000)
    page.wait_for_selector("img.leaflet-image-layer", timeout=TIMEOUT_MS)
    page.wait_for_selector("path.leaflet-interactive", timeout=TIMEOUT_MS)
    ui.wait_text(".t2s-progress", "3 candidates left")
    ui.shot("01_loaded")

    ui.click_pixel(100, 100)  # candidate A on the map
    ui.wait_selected()
    ui.button("t2s-accept")
    ui.wait_text(".t2s-message", "accepted building")
    ui.shot("02_accepted")

    ui.click_pixel(375, 90)  # candidate B
    ui.wait_text(".t2s-items", "road")
    page.wait_for_function("() => document.querySelector('.t2s-items select').selectedIndex >= 0",
                           timeout=TIMEOUT_MS)
    ui.button("t2s-reject")
    ui.wait_text(".t2s-message", "rejected candidate")

    ui.click_pixel(150, 360)  # candidate C: relabel as road
    ui.wait_text(".t2s-message", "rejected candidate")  # (unchanged until the relabel lands)
    page.locator(".t2s-class select").select_option("road")
    ui.button("t2s-relabel")
    ui.wait_text(".t2s-message", "relabelled as road")
    ui.shot("03_reviewed")

    ui.click_pixel(100, 100)  # annotation A again, then a positive SAM click inside it
    ui.wait_selected()
    page.locator(".t2s-mode button", has_text="+ point").click()
    ui.click_pixel(120, 110)
    ui.wait_text(".t2s-message", "click: refined annotation")
    ui.shot("04_positive_click")

    ui.key("Escape")  # nothing selected: the box makes a new mask
    page.locator(".t2s-mode button", has_text="box").first.click()  # the box tool shows the draw toolbar
    page.wait_for_selector(".leaflet-draw-draw-rectangle", timeout=TIMEOUT_MS)
    page.wait_for_timeout(500)
    page.locator(".leaflet-draw-draw-rectangle").click()
    x0, y0 = ui.screen(330, 300)
    x1, y1 = ui.screen(460, 420)
    page.mouse.move(x0, y0)
    page.mouse.down()
    page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
    page.mouse.move(x1, y1, steps=4)
    page.mouse.up()
    ui.wait_text(".t2s-message", "box: new annotation")
    ui.shot("05_box")

    ui.key("z")  # undo the box
    ui.wait_text(".t2s-message", "undone")
    ui.shot("06_undone")

    ui.button("t2s-next")
    ui.wait_text(".t2s-progress", "1/3")
    ui.shot("07_next_image")


def check_database(proj: Path, ids: dict[str, int], tmp_path: Path) -> None:
    from pycocotools.coco import COCO

    from text2seg_widgets.export import export_coco

    with Project.open(proj) as p:
        image_id = ids["image"]
        status = {c.id: c.status for c in p.candidates(image_id)}
        assert status == {ids["a"]: "accepted", ids["b"]: "rejected", ids["c"]: "accepted"}
        anns = {a.candidate_id: a for a in p.annotations(image_id)}
        assert set(anns) == {ids["a"], ids["c"]}, "the undone box must not be in the database"
        a, c = anns[ids["a"]], anns[ids["c"]]
        h, w = ids["h"], ids["w"]
        assert a.class_name == "building" and c.class_name == "road"
        assert not np.array_equal(a.mask(), square(h, w, 50, 150, 50, 150)), "the click did not change A"
        assert np.array_equal(c.mask(), square(h, w, 300, 420, 100, 200))
        assert p.image(image_id).state == "done"
        others = [r for r in p.images() if r.id != image_id]
        assert len(others) == 2 and not any(p.annotations(r.id) for r in others)
        out = tmp_path / "coco"
        export_coco(p, out)
        stored = {x.id: x.mask() for x in p.annotations()}
    coco = COCO(str(out / "annotations.json"))
    assert len(coco.getAnnIds()) == 2
    names = {coco.cats[coco.anns[i]["category_id"]]["name"] for i in coco.getAnnIds()}
    assert names == {"building", "road"}
    decoded = sorted(int(coco.annToMask(coco.anns[i]).sum()) for i in coco.getAnnIds())
    assert decoded == sorted(int(m.sum()) for m in stored.values())
    assert os.path.getsize(out / "annotations.json") > 0
