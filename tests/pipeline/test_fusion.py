import numpy as np
import pytest

from text2seg_widgets.core import Candidate
from text2seg_widgets.pipeline import fuse


def box_mask(h, w, y0, y1, x0, x1):
    m = np.zeros((h, w), bool)
    m[y0:y1, x0:x1] = True
    return m


def cand(mask, cls, score, branch):
    return Candidate.from_mask(mask, class_name=cls, score=score, branch=branch)


def test_fusion_constructed_case():
    h, w = 40, 60
    a_det = cand(box_mask(h, w, 0, 20, 0, 20), "building", 0.9, "detector")
    a_filt = cand(box_mask(h, w, 0, 20, 1, 20), "building", 0.6, "filter")     # IoU 0.95 with a_det
    b_road = cand(box_mask(h, w, 10, 30, 10, 50), "road", 0.7, "heatmap")     # overlaps a_det
    tiny = cand(box_mask(h, w, 35, 37, 55, 57), "road", 0.99, "concept")       # 4 px < min_area
    other = cand(box_mask(h, w, 30, 40, 0, 10), "building", 0.3, "concept")
    res = fuse([b_road, a_filt, tiny, other, a_det], ["building", "road"], h, w, min_area=16)

    assert [(c.class_name, c.branch, c.score) for c in res.candidates] == [
        ("building", "detector", 0.9), ("building", "concept", 0.3), ("road", "heatmap", 0.7)]
    top = res.candidates[0]
    assert top.extra["branches"] == ["detector", "filter"] and top.extra["votes"] == 2
    # overlap building (0.9) vs road (0.7): building wins; road elsewhere; background 0
    assert res.label_map[15, 15] == 1
    assert res.label_map[15, 40] == 2
    assert res.label_map[35, 5] == 1
    assert res.label_map[36, 56] == 0  # the tiny candidate was dropped
    assert res.label_map.dtype == np.uint8 and res.label_map.shape == (h, w)
    counts = np.bincount(res.label_map.ravel(), minlength=3)
    assert counts.tolist() == [h * w - 400 - 100 - (800 - 100), 500, 700]
    np.testing.assert_array_equal(res.score_maps.argmax(0), res.label_map)
    assert res.score_maps.shape == (3, h, w)
    assert res.score_maps[1, 15, 15] == pytest.approx(0.9) and res.score_maps[2, 15, 15] == pytest.approx(0.7)


def test_vote_keeps_only_agreed_candidates():
    h, w = 20, 20
    m = box_mask(h, w, 2, 12, 2, 12)
    cands = [cand(m, "water", 0.8, "detector"), cand(m, "water", 0.5, "concept"),
             cand(box_mask(h, w, 14, 20, 14, 20), "water", 0.9, "filter")]
    res = fuse(cands, ["water"], h, w, min_votes=2)
    assert len(res.candidates) == 1 and res.candidates[0].extra["votes"] == 2
    assert int(res.label_map.sum()) == 100


def test_same_branch_duplicates_do_not_count_as_votes():
    h, w = 20, 20
    m = box_mask(h, w, 2, 12, 2, 12)
    res = fuse([cand(m, "water", 0.8, "filter"), cand(m, "water", 0.7, "filter")], ["water"], h, w, min_votes=2)
    assert res.candidates == []
    assert not res.label_map.any()


def test_background_score_suppresses_weak_candidates():
    h, w = 10, 10
    res = fuse([cand(box_mask(h, w, 0, 10, 0, 10), "tree", 0.2, "heatmap")], ["tree"], h, w,
               min_area=1, background_score=0.3)
    assert len(res.candidates) == 1  # kept as a candidate for review ...
    assert not res.label_map.any()  # ... but too weak for the label map


def test_empty_input():
    res = fuse([], ["a", "b"], 5, 7)
    assert res.candidates == [] and res.label_map.shape == (5, 7) and not res.label_map.any()
