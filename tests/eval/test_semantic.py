"""Evaluation of label files, package label GeoTIFFs and projects (per branch) against real labels."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from text2seg_widgets.errors import InputError
from text2seg_widgets.eval.labels import load_label
from text2seg_widgets.eval.semantic import evaluate, evaluate_label_files, rasterize
from text2seg_widgets.core import Candidate

LOVEDA = ["background", "building", "road", "water", "barren", "forest", "agriculture"]
BG, BUILDING, ROAD, WATER, BARREN, FOREST, AGRI = range(7)


def _iou(gt: np.ndarray, pred: np.ndarray, k: int) -> float:
    """Reference IoU over concatenated pixels, computed with plain boolean algebra."""
    valid = gt != 255
    g, p = (gt == k) & valid, (pred == k) & valid
    return (g & p).sum() / (g | p).sum()


def test_rasterize_overlap_rule():
    a = np.zeros((2, 4), bool)
    a[:, :3] = True
    b = np.zeros((2, 4), bool)
    b[:, 1:] = True
    assert rasterize([(1, 0.9, a), (2, 0.5, b)], (2, 4)).tolist() == [[1, 1, 1, 2]] * 2
    assert rasterize([(2, 0.5, b), (1, 0.9, a)], (2, 4)).tolist() == [[1, 1, 1, 2]] * 2
    assert rasterize([(1, 0.5, a), (2, 0.5, b)], (2, 4), fill=0).tolist() == [[1, 2, 2, 2]] * 2  # tie: later wins
    assert rasterize([], (1, 2)).tolist() == [[255, 255]]
    with pytest.raises(InputError, match="mask size 4x2 differs from the image size 3x2"):
        rasterize([(1, 1.0, a)], (2, 3))


def _write_loveda_png(path, index_map: np.ndarray) -> None:
    raw = np.where(index_map == 255, 0, index_map + 1).astype(np.uint8)  # back to LoveDA codes
    Image.fromarray(raw).save(path)


def test_label_folders_on_real_loveda(rs_samples, tmp_path):
    gt_dir = rs_samples / "loveda" / "labels"
    gts = {s: load_label(gt_dir / f"{s}.png", "loveda") for s in ("0", "1", "2")}
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    preds = {}
    for stem, gt in gts.items():  # buildings missed (predicted as background), water predicted as forest
        pred = np.where(gt == BUILDING, BG, np.where(gt == WATER, FOREST, gt)).astype(np.uint8)
        _write_loveda_png(pred_dir / f"{stem}.png", pred)
        preds[stem] = pred
    result = evaluate_label_files(pred_dir, gt_dir, "loveda")
    all_gt = np.concatenate([gts[s].ravel() for s in sorted(gts)])
    all_pred = np.concatenate([preds[s].ravel() for s in sorted(preds)])
    assert result.images == 3 and result.extra["pairs"] == 3
    assert result.iou[BUILDING] == 0.0 and result.iou[WATER] == 0.0 and np.isnan(result.iou[BARREN])
    assert result.iou[BG] == pytest.approx(377085 / (377085 + 17930))  # GT background vs + building pixels
    assert result.iou[FOREST] == pytest.approx(957183 / (957183 + 277613))
    for k in (BG, ROAD, FOREST, AGRI):
        assert result.iou[k] == pytest.approx(_iou(all_gt, all_pred, k))
    assert result.miou == pytest.approx(np.mean([result.iou[k] for k in (BG, BUILDING, ROAD, WATER, FOREST, AGRI)]))
    assert result.overall_accuracy == pytest.approx(1 - (17930 + 277613) / (3 * 1024 * 1024))
    perfect = evaluate_label_files(gt_dir / "1.png", gt_dir / "1.png", "loveda")
    assert perfect.miou == 1.0 and perfect.images == 1


def test_pairing_and_size_errors(rs_samples, tmp_path):
    gt_dir = rs_samples / "loveda" / "labels"
    pred_dir = tmp_path / "pred"
    pred_dir.mkdir()
    _write_loveda_png(pred_dir / "0.png", np.zeros((1024, 1024), np.uint8))
    _write_loveda_png(pred_dir / "extra.png", np.zeros((1024, 1024), np.uint8))
    with pytest.raises(InputError, match=r"1 prediction\(s\) in .* have no ground-truth label .*: extra"):
        evaluate_label_files(pred_dir, gt_dir, "loveda")
    (pred_dir / "extra.png").unlink()
    with pytest.raises(InputError, match=r"2 label\(s\) in .* have no prediction .*: 1, 2"):
        evaluate_label_files(pred_dir, gt_dir, "loveda")
    _write_loveda_png(tmp_path / "small.png", np.zeros((512, 400), np.uint8))
    with pytest.raises(InputError, match=r"small.png is 400x512 \(width x height\) but its label .*0.png is 1024x1024"):
        evaluate_label_files(tmp_path / "small.png", gt_dir / "0.png", "loveda")
    with pytest.raises(InputError, match="per-branch needs a project"):
        evaluate(pred_dir, gt_dir, "loveda", per_branch=True)


def test_package_label_geotiff_is_read_by_class_names(rs_samples, tmp_path):
    from text2seg_widgets.export.rasters import write_label_geotiff

    gt = load_label(rs_samples / "potsdam/labels/2_10_0_0_512_512.png", "potsdam")
    # our convention: 0 background, i = i-th class of the run's names (different order, other spellings)
    names = ["Cars", "buildings", "tree"]
    ours = np.zeros(gt.shape, np.uint8)
    ours[gt == 4] = 1
    ours[gt == 1] = 2
    ours[gt == 3] = 3
    path = write_label_geotiff(tmp_path / "2_10_0_0_512_512.tif", ours, None, None, names,
                               [(255, 255, 0), (0, 0, 255), (0, 255, 0)])
    result = evaluate(path, rs_samples / "potsdam/labels", "potsdam")["prediction"]
    assert result.iou[1] == 1.0 and result.iou[3] == 1.0 and result.iou[4] == 1.0
    assert result.iou[0] == 0.0 and result.iou[2] == 0.0  # never predicted: background is "no prediction"
    assert result.unpredicted_pixels == int(((gt == 0) | (gt == 2)).sum())
    bad = write_label_geotiff(tmp_path / "x" / "2_10_0_0_512_512.tif", ours, None, None, ["helicopter", "building", "tree"],
                              [(1, 1, 1)] * 3)
    with pytest.raises(InputError, match=r"classes \['helicopter'\] .* not in mapping 'potsdam'"):
        evaluate(bad, rs_samples / "potsdam/labels", "potsdam")
    dropped = evaluate(bad, rs_samples / "potsdam/labels", "potsdam", unknown_classes="ignore")["prediction"]
    assert dropped.iou[1] == 1.0 and dropped.iou[4] == 0.0


@pytest.fixture()
def loveda_project(rs_samples, tmp_path):
    from text2seg_widgets.store import Project

    images = tmp_path / "images"
    images.mkdir()
    for stem in ("0", "2"):
        shutil.copy(rs_samples / f"loveda/images/{stem}.png", images / f"{stem}.png")
    project = Project.create(tmp_path / "proj", classes=["building", "water", "forest"])
    gts = {}
    for stem in ("0", "2"):
        rec = project.add_image(images / f"{stem}.png")
        gt = load_label(rs_samples / f"loveda/labels/{stem}.png", "loveda")
        gts[rec.id] = gt
        cands = []
        if (gt == BUILDING).any():
            cands.append(Candidate.from_mask(gt == BUILDING, class_name="building", score=0.9, branch="detector"))
            # a wrong, lower-scored forest mask over the buildings: loses the overlap in "all"
            cands.append(Candidate.from_mask(gt == BUILDING, class_name="forest", score=0.3, branch="heatmap"))
        cands.append(Candidate.from_mask(gt == WATER, class_name="water", score=0.8, branch="heatmap"))
        project.add_candidates(rec.id, cands)
    yield project, gts
    project.close()


def test_project_per_branch(loveda_project, rs_samples):
    project, gts = loveda_project
    results = evaluate(project, rs_samples / "loveda/labels", "loveda", per_branch=True)
    assert list(results) == ["all", "detector", "heatmap"]
    gt_all = np.concatenate([g.ravel() for g in gts.values()])
    assert all(r.images == 2 for r in results.values())
    detector, heatmap, fused = results["detector"], results["heatmap"], results["all"]
    assert detector.iou[BUILDING] == 1.0 and detector.iou[WATER] == 0.0
    assert heatmap.iou[WATER] == 1.0 and heatmap.iou[BUILDING] == 0.0
    assert fused.iou[BUILDING] == 1.0 and fused.iou[WATER] == 1.0
    # everything not covered is scored as background (the loveda mapping's background class)
    pred_heatmap = np.where(gt_all == WATER, WATER, np.where(gt_all == BUILDING, FOREST, BG))
    assert heatmap.iou[FOREST] == pytest.approx(_iou(gt_all, pred_heatmap, FOREST))
    assert heatmap.iou[BG] == pytest.approx(_iou(gt_all, pred_heatmap, BG))
    assert results["all"].miou > max(detector.miou, heatmap.miou)


def test_project_annotations_and_statuses(loveda_project, rs_samples):
    project, gts = loveda_project
    building = [c for c in project.candidates() if c.candidate.branch == "detector"][0]
    project.accept(building.id)
    ann = evaluate(project, rs_samples / "loveda/labels", "loveda", source="annotations")["annotations"]
    assert ann.iou[BUILDING] == 1.0 and ann.iou[WATER] == 0.0 and ann.images == 2
    accepted = evaluate(project.folder, rs_samples / "loveda/labels", "loveda", statuses=["accepted"])["candidates"]
    assert accepted.iou[BUILDING] == 1.0 and accepted.iou[WATER] == 0.0
    with pytest.raises(InputError, match="needs source='candidates'"):
        evaluate(project, rs_samples / "loveda/labels", "loveda", source="annotations", per_branch=True)


def test_project_bad_inputs(loveda_project, rs_samples, tmp_path):
    project, _ = loveda_project
    wrong_size = tmp_path / "labels_small"
    wrong_size.mkdir()
    for stem in ("0", "2"):
        _write_loveda_png(wrong_size / f"{stem}.png", np.zeros((300, 200), np.uint8))
    with pytest.raises(InputError, match=r"image 1 \(.*0.png\) is 1024x1024 .* but its label .*0.png is 200x300"):
        evaluate(project, wrong_size, "loveda")
    project.add_image(rs_samples / "potsdam/images/2_10_0_0_512_512.png")
    with pytest.raises(InputError, match=r"1 project image\(s\) have no ground-truth label .*: 3: .*2_10_0_0_512_512.png"):
        evaluate(project, rs_samples / "loveda/labels", "loveda")


def test_project_unknown_class_and_window(rs_samples, tmp_path):
    from text2seg_widgets.store import Project

    with Project.create(tmp_path / "p", classes=["car", "helicopter"]) as project:
        rec = project.add_image(rs_samples / "potsdam/images/2_10_0_0_512_512.png", window=(256, 0, 256, 128))
        gt = load_label(rs_samples / "potsdam/labels/2_10_0_0_512_512.png", "potsdam")[0:128, 256:512]
        assert (gt == 4).any() and (gt == 0).any()
        project.add_candidates(rec.id, [
            Candidate.from_mask(gt == 4, class_name="car", score=0.7, branch="concept"),
            Candidate.from_mask(gt == 0, class_name="helicopter", score=0.6, branch="concept")])
        with pytest.raises(InputError, match=r"classes \['helicopter'\] in the project's candidates"):
            evaluate(project, rs_samples / "potsdam/labels", "potsdam")
        result = evaluate(project, rs_samples / "potsdam/labels", "potsdam", unknown_classes="ignore")["candidates"]
        assert result.iou[4] == 1.0 and result.iou[0] == 0.0  # the helicopter mask was left out
        assert result.gt_pixels.sum() == int((gt != 255).sum())  # the window's pixels only


def test_prediction_array_against_a_label_file(rs_samples):
    label = rs_samples / "vaihingen/labels/area1_0_0_512_512.png"
    gt = load_label(label, "vaihingen")
    pred = np.where(gt == 4, 255, gt).astype(np.uint8)  # cars unpredicted
    result = evaluate(pred, label, "vaihingen")["prediction"]
    assert result.iou[4] == 0.0 and result.iou[0] == 1.0 and result.unpredicted_pixels == 4212
    with pytest.raises(InputError, match="single ground-truth file"):
        evaluate(pred, rs_samples / "loveda/labels", "loveda")
