"""Chips: real LoveDA tiles cut into image + mask chips; reproducible, leak-free splits."""

from __future__ import annotations

import json
from itertools import combinations
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from text2seg_widgets import InputError
from text2seg_widgets.export import export_chips
from text2seg_widgets.export.chips import chip_starts
from text2seg_widgets.store import Project
from tests.store.helpers import write_geotiff

LOVEDA = {2: "building", 3: "road", 4: "water"}


@pytest.fixture(scope="module")
def loveda(rs_samples: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("chips")
    p = Project.create(folder / "p", classes=list(LOVEDA.values()))
    truths = {}
    for name in ("0.png", "1.png", "2.png"):
        rec = p.add_image(rs_samples / "loveda" / "images" / name)
        truth = np.asarray(Image.open(rs_samples / "loveda" / "labels" / name))
        for value, cls in LOVEDA.items():
            if (truth == value).any():
                p.add_annotation(rec.id, truth == value, cls)
        p.set_state(rec.id, "done")
        truths[rec.id] = (rs_samples / "loveda" / "images" / name, truth)
    yield p, folder, truths
    p.close()

#: Images with hand-drawn annotations and no candidates are "in progress" until finished.
PROGRESS = ("in progress", "done")


def _expected_labels(truth: np.ndarray) -> np.ndarray:
    out = np.full(truth.shape, 255, np.uint8)
    for i, value in enumerate(LOVEDA, start=1):
        out[truth == value] = i
    return out


def test_chip_starts_cover_the_image() -> None:
    assert chip_starts(1024, 256, 256) == [0, 256, 512, 768]
    assert chip_starts(1000, 256, 256) == [0, 256, 512, 744]
    assert chip_starts(100, 256, 256) == [0]
    assert chip_starts(300, 256, 128) == [0, 44]


def test_chips_hold_the_real_pixels_and_labels(loveda, tmp_path: Path) -> None:
    p, folder, truths = loveda
    manifest = export_chips(p, tmp_path / "chips", size=256, seed=3)
    chips = json.loads((tmp_path / "chips" / "chips.json").read_text())
    assert manifest["counts"]["chips"] == len(chips) == 48
    by_image: dict[int, set[str]] = {}
    sources = {i: (np.asarray(Image.open(src)), _expected_labels(truth))
               for i, (src, truth) in truths.items()}
    for c in chips:
        by_image.setdefault(c["image_id"], set()).add(c["split"])
        source, labels = sources[c["image_id"]]
        col, row, w, h = c["window"]
        pixels = np.asarray(Image.open(tmp_path / "chips" / c["image"]))
        assert np.array_equal(pixels, source[row:row + h, col:col + w])
        mask = np.asarray(Image.open(tmp_path / "chips" / c["mask"]))
        assert np.array_equal(mask, labels[row:row + h, col:col + w])
    assert all(len(s) == 1 for s in by_image.values())  # split by image: no image in two splits
    again = export_chips(p, tmp_path / "again", size=256, seed=3)
    assert json.loads((tmp_path / "again" / "chips.json").read_text()) == chips
    assert again["counts"] == manifest["counts"]


def test_block_split_never_shares_pixels_across_splits(loveda, tmp_path: Path) -> None:
    p, folder, truths = loveda
    manifest = export_chips(p, tmp_path / "chips", size=256, stride=128, split_by="block",
                            block_size=512, ratios=(0.5, 0.25, 0.25), seed=1)
    chips = json.loads((tmp_path / "chips" / "chips.json").read_text())
    assert manifest["counts"]["dropped_on_block_border"] > 0
    assert len({c["split"] for c in chips}) >= 2
    for a, b in combinations(chips, 2):
        if a["image_id"] != b["image_id"] or a["split"] == b["split"]:
            continue
        ax, ay, aw, ah = a["window"]
        bx, by, bw, bh = b["window"]
        overlap = ax < bx + bw and bx < ax + aw and ay < by + bh and by < ay + ah
        assert not overlap, (a, b)
    other = export_chips(p, tmp_path / "other", size=256, stride=128, split_by="block",
                         block_size=512, ratios=(0.5, 0.25, 0.25), seed=2)
    assert [c["split"] for c in json.loads((tmp_path / "other" / "chips.json").read_text())] != \
        [c["split"] for c in chips] or other["counts"] != manifest["counts"]


def test_window_records_padding_and_georeferenced_chips(tmp_path: Path) -> None:
    tif = write_geotiff(tmp_path / "scene.tif", height=300, width=400, res=2.0)
    p = Project.create(tmp_path / "p", classes=["a"])
    tile = p.add_image(tif, window=(100, 50, 200, 150))
    mask = np.zeros((150, 200), bool)
    mask[10:20, 30:40] = True
    p.add_annotation(tile.id, mask, "a")
    export_chips(p, tmp_path / "chips", size=128, min_labelled=0.001, states=PROGRESS)
    chips = json.loads((tmp_path / "chips" / "chips.json").read_text())
    assert [c["window"] for c in chips] == [[0, 0, 128, 128]]  # the other 3 have no label
    with rasterio.open(tmp_path / "chips" / chips[0]["image"]) as ds, rasterio.open(tif) as src:
        assert ds.crs == src.crs
        assert (ds.transform.c, ds.transform.f) == (500000.0 + 200.0, 5000000.0 - 100.0)
        assert np.array_equal(ds.read(), src.read(window=((50, 178), (100, 228))))
    small = Project.create(tmp_path / "q", classes=["a"])
    rec = small.add_image(write_geotiff(tmp_path / "small.tif", height=40, width=50))
    small.add_annotation(rec.id, np.ones((40, 50), bool), "a")
    export_chips(small, tmp_path / "pad", size=64, states=PROGRESS)
    [c] = json.loads((tmp_path / "pad" / "chips.json").read_text())
    m = np.asarray(Image.open(tmp_path / "pad" / c["mask"]))
    assert m.shape == (64, 64) and (m[:40, :50] == 1).all() and (m[40:, :] == 255).all()
    with rasterio.open(tmp_path / "pad" / c["image"]) as ds:
        assert (ds.read()[:, 40:, :] == 0).all() and (ds.read()[:, :, 50:] == 0).all()
    for bad in ({"size": 0}, {"ratios": (0.5, 0.5, 0.5)}, {"split_by": "tile"},
                {"split_by": "block", "block_size": 10}):
        with pytest.raises(InputError):
            export_chips(small, tmp_path / "bad", **bad)
