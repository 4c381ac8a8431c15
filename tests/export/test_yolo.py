"""The YOLO segmentation export, read back by a strict parser of the Ultralytics format: data.yaml,
one label file per image with normalised polygons, and polygons that rasterise back to the masks."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from PIL import Image

from text2seg_widgets.cli import main
from text2seg_widgets.store import Project
from tests.store.helpers import rect, write_png

_IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
_NUMBER = re.compile(r"^-?\d+(\.\d+)?$")


def read_yolo_seg(root: Path) -> tuple[dict, dict[str, list[tuple[int, np.ndarray]]]]:
    """Parse a YOLO-seg dataset strictly; returns data.yaml and {image path: [(class, Nx2)]}."""
    data = yaml.safe_load((root / "data.yaml").read_text())
    assert set(data) <= {"path", "train", "val", "test", "names"} and {"train", "val", "names"} <= set(data)
    names = data["names"]
    assert isinstance(names, dict) and sorted(names) == list(range(len(names)))
    out: dict[str, list[tuple[int, np.ndarray]]] = {}
    for split in ("train", "val", "test"):
        if split not in data:
            continue
        images = root / data[split]
        assert images.is_dir() and images.parent.name == "images"
        labels = root / "labels" / images.name
        for image in sorted(images.iterdir()):
            assert image.suffix.lower() in _IMAGE_SUFFIXES
            label = labels / f"{image.stem}.txt"
            assert label.is_file(), f"no label file for {image}"
            rows = []
            for line in label.read_text().splitlines():
                fields = line.split()
                assert fields[0].isdigit() and int(fields[0]) in names
                assert len(fields) >= 7 and len(fields) % 2 == 1 and all(_NUMBER.match(f) for f in fields[1:])
                xy = np.array(fields[1:], float).reshape(-1, 2)
                assert (xy >= 0).all() and (xy <= 1).all()
                rows.append((int(fields[0]), xy))
            out[str(image.relative_to(root))] = rows
    return data, out


def _rasterise(xy: np.ndarray, width: int, height: int) -> np.ndarray:
    """The pixels whose centres lie inside the polygon (rasterio's rule), in pixel-corner coordinates."""
    from rasterio.features import rasterize
    from shapely.geometry import Polygon

    return rasterize([(Polygon(xy * [width, height]), 1)], out_shape=(height, width)).astype(bool)


def test_yolo_seg_export_reads_back_to_the_masks(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p", classes=["building", "road"])
    masks = {}
    for k in range(4):
        rec = p.add_image(write_png(tmp_path / f"im{k}.png", seed=k))
        h, w = rec.height, rec.width
        masks[rec.id] = [("building", rect(h, w, 2 + k, 3, 12 + k, 20)), ("road", rect(h, w, 30, 0, 40, w))]
        for name, mask in masks[rec.id]:
            p.add_annotation(rec.id, mask, name)
        p.finish_image(rec.id)
    p.close()
    result = CliRunner().invoke(main, ["project", "export", str(tmp_path / "p"), str(tmp_path / "yolo"),
                                       "--format", "yolo-seg", "--seed", "3"])
    assert result.exit_code == 0, result.output
    data, labels = read_yolo_seg(tmp_path / "yolo")
    assert data["names"] == {0: "building", 1: "road"} and len(labels) == 4
    for image, rows in labels.items():
        image_id = int(Path(image).stem.split("_")[0])
        width, height = Image.open(tmp_path / "yolo" / image).size
        assert [c for c, _ in rows] == [0, 1]
        for (cls, xy), (name, mask) in zip(rows, masks[image_id]):
            got = _rasterise(xy, width, height)
            assert np.array_equal(got, mask), (image, name)


def test_yolo_seg_refuses_images_none(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p", classes=["building"])
    p.close()
    result = CliRunner().invoke(main, ["project", "export", str(tmp_path / "p"), str(tmp_path / "y"),
                                       "--format", "yolo-seg", "--images", "none"])
    assert result.exit_code == 1 and "reads images beside the labels" in result.output


@pytest.mark.parametrize("seed", [0, 1])
def test_an_empty_val_split_points_val_at_train(tmp_path: Path, seed: int) -> None:
    p = Project.create(tmp_path / "p", classes=["building"])
    rec = p.add_image(write_png(tmp_path / "a.png"))
    p.add_annotation(rec.id, rect(64, 80, 2, 3, 12, 20), "building")
    p.finish_image(rec.id)
    from text2seg_widgets.export import export_yolo_seg

    manifest = export_yolo_seg(p, tmp_path / "y", ratios=(1, 0, 0), seed=seed)
    p.close()
    data, labels = read_yolo_seg(tmp_path / "y")
    assert data["val"] == data["train"] == "images/train" and "test" not in data
    assert manifest["notes"] and manifest["counts"]["polygons"] == 1
