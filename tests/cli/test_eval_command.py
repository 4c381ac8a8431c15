"""``text2seg-widgets eval`` through click's CliRunner on constructed and project cases."""

from __future__ import annotations

import csv
import json

import numpy as np
from click.testing import CliRunner
from PIL import Image

from text2seg_widgets.cli import main
from text2seg_widgets.core import Candidate


def _png(path, array) -> None:
    Image.fromarray(np.asarray(array, np.uint8)).save(path)


def _constructed(tmp_path):
    gt, pred = tmp_path / "gt", tmp_path / "pred"
    gt.mkdir()
    pred.mkdir()
    # LoveDA codes: 0 no-data, 1 background, 2 building, 3 road
    _png(gt / "a.png", [[1, 1, 2, 2], [1, 1, 2, 0]])
    _png(pred / "a.png", [[1, 1, 2, 1], [1, 2, 2, 3]])
    _png(gt / "b.png", [[3, 3], [1, 1]])
    _png(pred / "b.png", [[3, 1], [1, 1]])
    return gt, pred


def test_eval_label_folders(tmp_path):
    gt, pred = _constructed(tmp_path)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--pred", str(pred), "--gt", str(gt), "--mapping", "loveda",
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "2 image(s), mapping loveda"
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:] if line and not line.startswith("-")}
    # background: gt 6 px, pred 7 px, tp 5 -> 5/8; building: gt 3, pred 3, tp 2 -> 2/4; road: gt 2, pred 1, tp 1 -> 1/2
    assert rows["background"] == ["62.50"] and rows["building"] == ["50.00"] and rows["road"] == ["50.00"]
    assert rows["water"] == ["-"] and rows["mIoU"] == ["54.17"]
    assert rows["overall"] == ["acc", "72.73"]  # 8 of 11 scored pixels
    assert f"saved {out / 'metrics.csv'}" in result.output
    table = list(csv.DictReader((out / "metrics.csv").open()))
    assert [r["class"] for r in table][:3] == ["background", "building", "road"]
    assert float(table[0]["iou"]) == 0.625 and table[3]["iou"] == ""
    data = json.loads((out / "metrics.json").read_text())
    assert data["meta"]["mapping"] == "loveda" and data["meta"]["ignore_index"] == 255
    assert abs(data["results"]["prediction"]["miou"] - (5 / 8 + 1 / 2 + 1 / 2) / 3) < 1e-12


def test_eval_errors_are_reported_not_raised(tmp_path):
    gt, pred = _constructed(tmp_path)
    _png(pred / "b.png", [[3, 1, 1], [1, 1, 1]])
    result = CliRunner().invoke(main, ["eval", "--pred", str(pred), "--gt", str(gt), "--mapping", "loveda",
                                       "--out", str(tmp_path / "fail")])
    assert result.exit_code == 1
    assert "Error: prediction" in result.output and "is 3x2 (width x height) but its label" in result.output
    _png(pred / "b.png", [[3, 9], [1, 1]])
    result = CliRunner().invoke(main, ["eval", "--pred", str(pred), "--gt", str(gt), "--mapping", "loveda",
                                       "--out", str(tmp_path / "fail")])
    assert result.exit_code == 1 and "9 (1 px)" in result.output and "--unknown ignore" in result.output
    result = CliRunner().invoke(main, ["eval", "--pred", str(pred), "--gt", str(gt), "--mapping", "loveda",
                                       "--unknown", "ignore", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(main, ["eval", "--pred", str(pred), "--gt", str(gt), "--mapping", "nope",
                                       "--out", str(tmp_path / "fail")])
    assert result.exit_code == 1 and "neither a preset (deepglobe, epfl_roads" in result.output
    assert not (tmp_path / "fail").exists()  # failed runs write nothing
    assert (tmp_path / "o" / "metrics.json").is_file()


def test_eval_project_per_branch(tmp_path):
    from text2seg_widgets.store import Project

    gt = np.zeros((40, 60), np.uint8)  # EPFL-style grey roads
    gt[10:20, :] = 255
    gt[:, 30:35] = 200
    (tmp_path / "gt").mkdir()
    _png(tmp_path / "gt" / "tile.png", gt)
    _png(tmp_path / "tile.png", np.zeros((40, 60, 3)))
    road = gt > 127
    with Project.create(tmp_path / "proj", classes=["road"]) as project:
        rec = project.add_image(tmp_path / "tile.png")
        horizontal = np.zeros_like(road)
        horizontal[10:20, :] = True
        project.add_candidates(rec.id, [
            Candidate.from_mask(horizontal, class_name="road", score=0.9, branch="detector"),
            Candidate.from_mask(road, class_name="road", score=0.5, branch="concept")])
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["eval", "--pred", str(tmp_path / "proj"), "--gt", str(tmp_path / "gt"),
                                       "--mapping", "epfl_roads", "--per-branch", "--out", str(out)])
    assert result.exit_code == 0, result.output
    header = result.output.splitlines()[1].split()
    assert header[-3:] == ["all", "concept", "detector"]
    road_row = [line.split() for line in result.output.splitlines() if line.startswith("road")][0]
    n_road, n_horizontal = int(road.sum()), 600
    assert road_row[1:] == ["100.00", "100.00", f"{100 * n_horizontal / n_road:.2f}"]
    data = json.loads((out / "metrics.json").read_text())
    assert set(data["results"]) == {"all", "concept", "detector"} and data["meta"]["per_branch"] is True


def test_eval_on_an_empty_or_truncated_label_file_is_a_clear_error(tmp_path):
    gt, pred = _constructed(tmp_path)
    big = np.random.default_rng(0).integers(0, 4, (256, 256))
    _png(gt / "c.png", big)
    data = (gt / "c.png").read_bytes()
    for name, content, message in [("empty", b"", "is empty (0 bytes)"),
                                   ("truncated", data[: len(data) // 3], "truncated or not an image")]:
        (pred / "c.png").write_bytes(content)
        result = CliRunner().invoke(main, ["eval", "--pred", str(pred), "--gt", str(gt), "--mapping", "loveda",
                                           "--out", str(tmp_path / name)])
        assert result.exit_code == 1 and message in result.output, (name, result.output)
        assert "Traceback" not in result.output
