"""`text2seg-widgets segment` end to end with the tiny models, and its error messages."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from tests.tiny_models import synthetic_rgb
from text2seg_widgets.cli import main
from text2seg_widgets.core import rle_to_mask


@pytest.fixture()
def png(tmp_path):
    path = tmp_path / "tile.png"
    Image.fromarray(synthetic_rgb(96, 128, seed=3)).save(path)
    return path


def test_segment_writes_candidates_labels_and_overlay(png, tmp_path):
    out = tmp_path / "out"
    classes = tmp_path / "classes.txt"
    classes.write_text("building: building, roof\nroad\n")
    result = CliRunner().invoke(main, ["segment", str(png), "--classes", str(classes), "--models", "tiny",
                                       "--out", str(out), "--box-threshold", "0", "--text-threshold", "0"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["width"] == 128 and summary["height"] == 96 and summary["n_tiles"] == 1
    data = json.loads((out / "scene_candidates.json").read_text())
    assert data["schema"] == "text2seg-widgets/scene-candidates" and data["version"] == 1
    assert not (out / "candidates.json").exists()  # the COCO export's name is not reused
    cands = data["candidates"]
    assert len(cands) == summary["n_candidates"] > 0
    labels = np.asarray(Image.open(out / "labels.png"))
    assert labels.shape == (96, 128)
    assert set(np.unique(labels)) <= {0, 1, 2}
    for c in cands:
        mask = rle_to_mask(c["rle"])
        assert mask.shape == (96, 128) and mask.sum() == c["area"]
        assert c["class_name"] in ("building", "road") and c["branch"] in ("detector", "heatmap", "filter", "concept")
    overlay = Image.open(out / "overlay.png")
    assert overlay.width >= 128 and overlay.height > 96  # the legend sits under the image (may widen it)


@pytest.mark.parametrize("args, message", [
    (["--classes", " , "], "class list is empty"),
    (["--classes", "road,Road"], "duplicate class name"),
    (["--classes", "road", "--models", "enormous"], "unknown model preset"),
    (["--classes", "road", "--branches", "magic"], "unknown branch"),
])
def test_segment_bad_input(png, tmp_path, args, message):
    result = CliRunner().invoke(main, ["segment", str(png), "--out", str(tmp_path / "o"), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_segment_missing_image(tmp_path):
    result = CliRunner().invoke(main, ["segment", str(tmp_path / "nope.png"), "--classes", "road", "--out",
                                       str(tmp_path / "o")])
    assert result.exit_code != 0 and "does not exist" in result.output


def test_segment_offline_without_weights_names_the_fix(png, tmp_path, monkeypatch):
    monkeypatch.setenv("TEXT2SEG_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("TEXT2SEG_OFFLINE", "1")
    result = CliRunner().invoke(main, ["segment", str(png), "--classes", "road", "--models", "default",
                                       "--out", str(tmp_path / "o")])
    assert result.exit_code != 0
    assert "sam-vit-b" in result.output
    assert str(tmp_path / "empty-cache") in result.output
    assert "text2seg-widgets weights fetch sam-vit-b" in result.output
    assert not (tmp_path / "o" / "scene_candidates.json").exists()
