"""Confusion-matrix metrics pinned on constructed cases."""

from __future__ import annotations

import csv
import json
import math

import numpy as np
import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.eval.confusion import ConfusionMatrix, EvalResult, format_table, write_csv, write_json

ABC = ["a", "b", "c"]


def _result(gt, pred, classes=ABC) -> EvalResult:
    cm = ConfusionMatrix(classes)
    cm.update(np.array(gt), np.array(pred))
    return cm.result()


def test_hand_computed_case():
    # pixel pairs (gt -> pred): a->a, a->b, b->b, b->c, c->c, and one ignored pixel
    r = _result([[0, 0, 1], [1, 2, 255]], [[0, 1, 1], [2, 2, 0]])
    assert r.matrix.tolist() == [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 0]]
    assert r.iou.tolist() == pytest.approx([1 / 2, 1 / 3, 1 / 2])
    assert r.miou == pytest.approx((1 / 2 + 1 / 3 + 1 / 2) / 3)
    assert r.overall_accuracy == pytest.approx(3 / 5)
    assert r.accuracy.tolist() == pytest.approx([1 / 2, 1 / 2, 1.0])
    assert r.mean_accuracy == pytest.approx(2 / 3)
    assert r.gt_pixels.tolist() == [2, 2, 1] and r.pred_pixels.tolist() == [1, 2, 2]


def test_class_absent_from_both_is_nan_and_left_out_of_the_mean():
    r = _result([[0, 0, 1, 1]], [[0, 1, 1, 1]], classes=["a", "b", "c", "d"])
    assert r.iou[0] == pytest.approx(1 / 2) and r.iou[1] == pytest.approx(2 / 3)
    assert math.isnan(r.iou[2]) and math.isnan(r.iou[3])
    assert r.miou == pytest.approx((1 / 2 + 2 / 3) / 2)
    assert math.isnan(r.accuracy[2]) and r.mean_accuracy == pytest.approx((1 / 2 + 1) / 2)
    assert r.to_dict()["per_class"][2]["iou"] is None


def test_predicted_only_class_scores_zero_and_enters_the_mean():
    r = _result([[0, 0, 0, 0]], [[0, 0, 0, 2]])
    assert r.iou[0] == pytest.approx(3 / 4) and r.iou[2] == 0.0 and math.isnan(r.iou[1])
    assert r.miou == pytest.approx(3 / 8)
    assert r.mean_accuracy == pytest.approx(3 / 4)  # accuracy only over classes in the ground truth


def test_all_right():
    gt = np.array([[0, 1, 2], [2, 1, 0]])
    r = _result(gt, gt)
    assert r.iou.tolist() == [1.0, 1.0, 1.0] and r.miou == 1.0
    assert r.overall_accuracy == 1.0 and r.mean_accuracy == 1.0


def test_all_wrong():
    r = _result([[0, 1, 2], [0, 1, 2]], [[1, 2, 0], [1, 2, 0]])
    assert r.iou.tolist() == [0.0, 0.0, 0.0] and r.miou == 0.0
    assert r.overall_accuracy == 0.0 and r.mean_accuracy == 0.0


def test_ignore_pixels_are_not_scored_whatever_is_predicted():
    r = _result([[255, 255], [0, 255]], [[1, 2], [0, 255]])
    assert r.matrix.sum() == 1 and r.iou[0] == 1.0
    assert math.isnan(r.iou[1]) and math.isnan(r.iou[2]) and r.miou == 1.0


def test_everything_ignored_gives_nan_metrics():
    r = _result([[255, 255]], [[0, 1]])
    assert r.matrix.sum() == 0 and math.isnan(r.miou) and math.isnan(r.overall_accuracy)


def test_unpredicted_pixels_are_misses():
    r = _result([[0, 0, 1, 1]], [[0, 255, 255, 1]])
    assert r.matrix.tolist() == [[1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 0, 0]]
    assert r.iou[0] == pytest.approx(1 / 2) and r.iou[1] == pytest.approx(1 / 2)
    assert r.overall_accuracy == pytest.approx(1 / 2) and r.unpredicted_pixels == 2


def test_accumulates_pixels_over_images_not_a_mean_of_images():
    cm = ConfusionMatrix(["a", "b"])
    cm.update(np.array([[1, 1, 1, 1]]), np.array([[1, 1, 1, 1]]))  # per-image IoU(b) = 1
    cm.update(np.array([[1, 0, 0, 0]]), np.array([[0, 0, 0, 0]]))  # per-image IoU(b) = 0
    r = cm.result()
    assert r.iou[1] == pytest.approx(4 / 5) and r.iou[0] == pytest.approx(3 / 4)
    assert r.images == 2
    other = ConfusionMatrix(["a", "b"])
    other.update(np.array([[0]]), np.array([[0]]))
    assert cm.merge(other).result().iou[0] == pytest.approx(4 / 5)


def test_bad_inputs():
    cm = ConfusionMatrix(ABC)
    with pytest.raises(InputError, match=r"prediction size 2x3 .*differs from ground-truth size 3x2 .*tile_7"):
        cm.update(np.zeros((2, 3), int), np.zeros((3, 2), int), name="tile_7")
    with pytest.raises(InputError, match=r"ground truth for x holds values 3 \(1 px\), 7 \(2 px\)"):
        cm.update(np.array([[3, 7, 7]]), np.zeros((1, 3), int), name="x")
    with pytest.raises(InputError, match="prediction holds values -1"):
        cm.update(np.zeros((1, 1), int), np.array([[-1]]))
    with pytest.raises(InputError, match="collides"):
        ConfusionMatrix(ABC, ignore_index=1)
    with pytest.raises(InputError, match="unique"):
        ConfusionMatrix(["a", "a"])
    assert cm.matrix.sum() == 0  # failed updates added nothing


def test_table_csv_and_json_round_trip(tmp_path):
    r = _result([[0, 0, 1], [1, 2, 255]], [[0, 1, 1], [2, 2, 0]])
    other = _result([[0, 0, 1], [1, 2, 255]], [[0, 0, 1], [1, 2, 0]])
    table = format_table({"detector": r, "heatmap": other})
    lines = table.splitlines()
    assert lines[0].split() == ["class", "(IoU", "%)", "detector", "heatmap"]
    assert lines[2].split() == ["a", "50.00", "100.00"] and lines[3].split() == ["b", "33.33", "100.00"]
    assert lines[-3].split() == ["mIoU", "44.44", "100.00"]
    assert lines[-2].split() == ["overall", "acc", "60.00", "100.00"]
    rows = list(csv.DictReader(write_csv({"detector": r, "heatmap": other}, tmp_path / "m.csv").open()))
    assert [(row["source"], row["class"]) for row in rows][:5] == [
        ("detector", "a"), ("detector", "b"), ("detector", "c"), ("detector", "<mean>"), ("detector", "<overall>")]
    assert float(rows[1]["iou"]) == pytest.approx(1 / 3) and float(rows[3]["iou"]) == pytest.approx(4 / 9)
    assert float(rows[4]["accuracy"]) == pytest.approx(0.6)
    data = json.loads(write_json(r, tmp_path / "m.json", meta={"mapping": "x"}).read_text())
    assert data["meta"] == {"mapping": "x"}
    got = data["results"]["prediction"]
    assert got["miou"] == pytest.approx(4 / 9) and got["confusion_matrix"]["counts"][1] == [0, 1, 1, 0]
    assert got["confusion_matrix"]["columns"] == ["a", "b", "c", "<none>"]
    nan_table = format_table(_result([[0]], [[0]]))
    assert nan_table.splitlines()[3].split() == ["b", "-"]
