"""Fixtures for the Annotator logic tests: real sample tiles, a real project store, tiny models."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from text2seg_widgets.pipeline.candidate import Candidate
from text2seg_widgets.store import Project


@pytest.fixture(scope="session")
def tiny_models():
    from text2seg_widgets.models.tiny import tiny_model_set

    return tiny_model_set(seed=0)


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
