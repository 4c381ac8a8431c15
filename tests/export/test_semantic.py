"""Semantic dataset export: class-index PNGs (real Potsdam tile), GeoTIFF with CRS, overlaps."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import rasterio
from PIL import Image

from text2seg_widgets import InputError
from text2seg_widgets.export import export_semantic
from text2seg_widgets.imagery.labels import read_class_names
from text2seg_widgets.store import Project
from tests.store.helpers import rect, write_geotiff, write_png

POTSDAM = ["impervious", "building", "low vegetation", "tree", "car", "clutter"]

#: Images with hand-drawn annotations and no candidates are "in progress" until finished.
PROGRESS = ("in progress", "done")


def test_potsdam_labels_round_trip(rs_samples: Path, tmp_path: Path) -> None:
    image = rs_samples / "potsdam" / "images" / "2_10_0_0_512_512.png"
    truth = np.asarray(Image.open(rs_samples / "potsdam" / "labels" / image.name))
    p = Project.create(tmp_path / "p", classes=POTSDAM)
    rec = p.add_image(image)
    for value, name in enumerate(POTSDAM, start=1):
        if (truth == value).any():
            p.add_annotation(rec.id, truth == value, name)
    p.set_state(rec.id, "done")
    manifest = export_semantic(p, tmp_path / "sem")
    labels = np.asarray(Image.open(tmp_path / "sem" / "labels" / "000001_2_10_0_0_512_512.png"))
    expected = np.where(truth == 0, 255, truth)  # Potsdam's 0 (ignore) has no annotation
    assert np.array_equal(labels, expected)
    assert Image.open(tmp_path / "sem" / "labels" / "000001_2_10_0_0_512_512.png").mode == "P"
    classes = json.loads((tmp_path / "sem" / "classes.json").read_text())
    assert [(c["index"], c["name"]) for c in classes] == [
        (0, "background"), *enumerate(POTSDAM, start=1), (255, "ignore")]
    assert manifest["counts"]["pixels"]["ignore"] == int((truth == 0).sum()) == 24696
    assert manifest["counts"]["pixels"]["building"] == 64023
    assert manifest["counts"]["geotiffs"] == 0
    export_semantic(p, tmp_path / "bg", unlabelled="background")
    bg = np.asarray(Image.open(tmp_path / "bg" / "labels" / "000001_2_10_0_0_512_512.png"))
    assert np.array_equal(bg, truth)  # uncovered pixels of a done image are background (0)


def test_overlap_rule_highest_score_then_newest(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p", classes=["a", "b", "c"])
    rec = p.add_image(write_png(tmp_path / "i.png", height=10, width=10))
    p.add_annotation(rec.id, rect(10, 10, 0, 0, 6, 6), "a", score=0.9)
    p.add_annotation(rec.id, rect(10, 10, 3, 3, 9, 9), "b", score=0.4)
    p.add_annotation(rec.id, rect(10, 10, 5, 5, 10, 10), "c", score=0.4)  # newer, same score
    export_semantic(p, tmp_path / "sem", states=PROGRESS)
    labels = np.asarray(Image.open(tmp_path / "sem" / "labels" / "000001_i.png"))
    assert labels[4, 4] == 1  # a (0.9) beats b (0.4)
    assert labels[7, 7] == 3  # c beats b: same score, newer
    assert labels[5, 5] == 1
    assert labels[8, 3] == 2 and labels[0, 9] == 255
    with pytest.raises(InputError, match="unlabelled must be one of"):
        export_semantic(p, tmp_path / "x", unlabelled="zero")


def test_georeferenced_labels_as_geotiff_with_source_crs(tmp_path: Path) -> None:
    tif = write_geotiff(tmp_path / "g.tif", height=60, width=90, crs="EPSG:32633", res=0.5)
    p = Project.create(tmp_path / "p", classes=["water", "field"])
    whole = p.add_image(tif)
    tile = p.add_image(tif, window=(30, 20, 40, 30))
    p.add_annotation(whole.id, rect(60, 90, 10, 10, 20, 50), "water")
    p.add_annotation(tile.id, rect(30, 40, 0, 0, 5, 5), "field")
    manifest = export_semantic(p, tmp_path / "sem", states=PROGRESS)
    assert manifest["counts"]["geotiffs"] == 2
    entries = json.loads((tmp_path / "sem" / "images.json").read_text())
    with rasterio.open(tmp_path / "sem" / entries[0]["label_tif"]) as ds, rasterio.open(tif) as src:
        assert ds.crs == src.crs and ds.transform == src.transform
        assert ds.nodata == 255 and ds.dtypes[0] == "uint8"
        assert np.array_equal(ds.read(1), np.where(rect(60, 90, 10, 10, 20, 50), 1, 255))
    with rasterio.open(tmp_path / "sem" / entries[1]["label_tif"]) as ds:
        assert ds.transform.c == 500000.0 + 30 * 0.5 and ds.transform.f == 5000000.0 - 20 * 0.5
        assert (ds.width, ds.height) == (40, 30)
        assert ds.read(1)[:5, :5].tolist() == [[2] * 5] * 5
    assert read_class_names(tmp_path / "sem" / entries[0]["label_tif"]) == [
        "background", "water", "field"]


def test_cli_semantic_copies_images_and_takes_unlabelled(tmp_path):
    import shutil

    from click.testing import CliRunner

    from text2seg_widgets.cli import main
    from tests.store.helpers import small_project

    source = write_png(tmp_path / "a.png")
    p, image_id, ids = small_project(tmp_path / "p", source)
    p.accept(ids[0])
    p.finish_image(image_id, rest="reject")
    p.close()
    runner = CliRunner()
    for mode, fill in (("ignore", 255), ("background", 0)):
        out = tmp_path / f"sem-{mode}"
        result = runner.invoke(main, ["project", "export", str(tmp_path / "p"), str(out), "--format", "semantic",
                                      "--unlabelled", mode])
        assert result.exit_code == 0, result.output
        moved = shutil.move(str(out), str(tmp_path / f"moved-{mode}"))  # the folder travels whole
        (entry,) = json.loads((Path(moved) / "images.json").read_text())
        assert entry["image"] == "images/000001_a.png" and entry["path"] == str(source)
        assert (Path(moved) / entry["image"]).read_bytes() == source.read_bytes()
        labels = np.array(Image.open(Path(moved) / entry["label_png"]))
        assert labels[0, 0] == fill and labels[5, 10] == 1  # inside the accepted building box
