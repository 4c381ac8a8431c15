"""Small helpers shared by the store and export tests: images written in code, masks, projects."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import rasterio
from rasterio.errors import NotGeoreferencedWarning
from rasterio.transform import from_origin

from text2seg_widgets import Candidate
from text2seg_widgets.store import Project

__all__ = ["write_png", "write_geotiff", "rect", "small_project"]


def write_png(path: Path, height: int = 64, width: int = 80, seed: int = 0) -> Path:
    """An RGB PNG of random pixels (no georeferencing)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 255, (3, height, width), dtype=np.uint8)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path, "w", driver="PNG", width=width, height=height, count=3,
                           dtype="uint8") as dst:
            dst.write(data)
    return path


def write_geotiff(path: Path, height: int = 64, width: int = 80, *, crs: str = "EPSG:32633",
                  origin: tuple[float, float] = (500000.0, 5000000.0), res: float = 0.5,
                  seed: int = 0) -> Path:
    """A georeferenced RGB GeoTIFF (UTM 33N by default, 0.5 m pixels)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 255, (3, height, width), dtype=np.uint8)
    with rasterio.open(path, "w", driver="GTiff", width=width, height=height, count=3,
                       dtype="uint8", crs=crs, transform=from_origin(*origin, res, res)) as dst:
        dst.write(data)
    return path


def rect(height: int, width: int, y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    m = np.zeros((height, width), bool)
    m[y0:y1, x0:x1] = True
    return m


def small_project(folder: Path, image: Path) -> tuple[Project, int, list[int]]:
    """A project with classes building/road, one image and three candidates on it."""
    p = Project.create(folder, classes=["building", {"name": "road", "color": "#808080",
                                                    "prompts": ["street", "highway"]}])
    rec = p.add_image(image)
    h, w = rec.height, rec.width
    cands = [Candidate.from_mask(rect(h, w, 2, 3, 12, 20), class_name="building", score=0.9,
                                 branch="detector", prompt="building", model="tiny"),
             Candidate.from_mask(rect(h, w, 30, 0, 40, w), class_name="road", score=0.6,
                                 branch="heatmap", prompt="road"),
             Candidate.from_mask(rect(h, w, 20, 40, 28, 60), class_name="building", score=0.3,
                                 branch="filter")]
    ids = p.add_candidates(rec.id, cands)
    return p, rec.id, ids
