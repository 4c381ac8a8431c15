"""Fixtures for the Annotator logic tests: real sample tiles, a real project store, tiny models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from text2seg_widgets.core import Candidate
from text2seg_widgets.store import Project


@pytest.fixture(scope="session")
def tiny_models():
    from text2seg_widgets.models.tiny import tiny_model_set

    return tiny_model_set(seed=1)  # seed 1: its random SAM answers clicks with non-empty masks


@pytest.fixture
def road_tiles(rs_samples: Path, tmp_path: Path) -> list[Path]:
    """Three real 400x400 aerial tiles copied into the test folder (so tests may delete them)."""
    src = sorted((rs_samples / "epfl_roads" / "images").glob("*.png"))[:3]
    out = []
    for p in src:
        dst = tmp_path / "images" / p.name
        dst.parent.mkdir(exist_ok=True)
        shutil.copy(p, dst)
        out.append(dst)
    return out


def square(h: int, w: int, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
    m = np.zeros((h, w), dtype=bool)
    m[y0:y1, x0:x1] = True
    return m


@pytest.fixture
def project(tmp_path: Path, road_tiles: list[Path]) -> Project:
    """Three images; the first carries four candidates (two classes, distinct scores)."""
    p = Project.create(tmp_path / "proj", classes=["building", "road"])
    recs = [p.add_image(t) for t in road_tiles]
    h, w = recs[0].height, recs[0].width
    p.add_candidates(recs[0].id, [
        Candidate.from_mask(square(h, w, 10, 60, 10, 90), class_name="building", score=0.95, branch="detector"),
        Candidate.from_mask(square(h, w, 100, 140, 20, 200), class_name="road", score=0.80, branch="heatmap"),
        Candidate.from_mask(square(h, w, 200, 260, 200, 260), class_name="building", score=0.60, branch="filter"),
        Candidate.from_mask(square(h, w, 300, 320, 50, 350), class_name="road", score=0.30, branch="filter"),
    ])
    yield p
    p.close()


def pick_click(segmenter, rgb: np.ndarray, *, mask: np.ndarray | None = None, empty: bool = False,
               step: int = 37) -> tuple[float, float, np.ndarray]:
    """A point where this (random-weight) segmenter answers a click with a non-empty mask (or an
    empty one with ``empty``), trying a grid; returns (x, y, expected mask). Random weights give
    empty masks at some points, so tests choose their clicks instead of hard-coding them."""
    from text2seg_widgets.core.masks import mask_bbox_xyxy
    from text2seg_widgets.widgets.refine import RefineSession

    h, w = rgb.shape[:2]
    for y in range(step // 2, h, step):
        for x in range(step // 2, w, step):
            session = RefineSession.for_mask(None, None if mask is None else mask_bbox_xyxy(mask))
            session.add_point(x, y, True)
            got = decode_on_window(segmenter, rgb, session)
            if bool(got.any()) != empty:
                return float(x), float(y), got
    raise AssertionError("no suitable click found on the grid")


def decode_on_window(segmenter, rgb: np.ndarray, session) -> np.ndarray:
    """The whole-image mask the Annotator's tools give for ``session``: decoded on the session's
    prompt window (imagery.windows) and put back in image pixels."""
    from text2seg_widgets.widgets.refine import session_window

    h, w = rgb.shape[:2]
    win = session_window(session, w, h, segmenter.input_size)
    session.use_window(win)
    segmenter.set_image(np.ascontiguousarray(rgb[win.y0:win.y1, win.x0:win.x1]))
    out = np.zeros((h, w), bool)
    out[win.y0:win.y1, win.x0:win.x1] = session.predict(segmenter).mask
    return out


def pick_box(segmenter, rgb: np.ndarray, size: int = 120, step: int = 53) -> tuple[tuple[float, ...], np.ndarray]:
    """A box for which the segmenter returns a non-empty mask; returns (xyxy, expected mask)."""
    from text2seg_widgets.widgets.refine import RefineSession

    h, w = rgb.shape[:2]
    for y in range(0, h - size, step):
        for x in range(0, w - size, step):
            box = (float(x), float(y), float(x + size), float(y + size))
            session = RefineSession.for_mask(None, None)
            session.set_box(np.array(box))
            got = decode_on_window(segmenter, rgb, session)
            if got.any():
                return box, got
    raise AssertionError("no suitable box found on the grid")


@pytest.fixture
def open_app():
    """A factory for Annotators that closes every one it made when the test ends (threads joined,
    events unhooked): ``app = open_app(project, models, ...)``."""
    from text2seg_widgets.widgets import Annotator

    apps = []

    def make(*args, **kwargs):
        app = Annotator(*args, **kwargs)
        apps.append(app)
        return app

    yield make
    for app in apps:
        app.close()
