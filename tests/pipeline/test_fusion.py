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


# -- overlap rules ------------------------------------------------------------------------------
def _field_with_house():
    """A large, confident 'field' mask (20 x 30) covering a small, less confident 'building' (4 x 5)."""
    h, w = 20, 30
    field = cand(box_mask(h, w, 0, 20, 0, 30), "field", 0.9, "detector")
    house = cand(box_mask(h, w, 5, 9, 10, 15), "building", 0.6, "detector")
    road = cand(box_mask(h, w, 12, 16, 0, 30), "road", 0.8, "detector")  # 120 px, overlaps the field only
    return [field, house, road], ["building", "road", "field"], h, w


@pytest.mark.parametrize("overlap, priority, counts", [
    # label counts [background, building, road, field]
    ("score", (), [0, 0, 0, 600]),  # the field (0.9) covers everything
    ("smaller-on-top", (), [0, 20, 120, 460]),  # the house (20 px) and the road (120 px) stay on top
    ("priority", ("road", "field"), [0, 0, 120, 480]),  # road > field > (unlisted) building
    ("priority", ("building", "road"), [0, 20, 120, 460]),
])
def test_overlap_rules(overlap, priority, counts):
    cands, names, h, w = _field_with_house()
    res = fuse(cands, names, h, w, overlap=overlap, priority=priority)
    assert np.bincount(res.label_map.ravel(), minlength=4).tolist() == counts
    np.testing.assert_array_equal(res.score_maps.argmax(0), res.label_map)  # soft and hard maps agree
    assert [c.class_name for c in res.candidates] == ["building", "road", "field"]  # same candidates


def test_smaller_on_top_score_maps_keep_the_winner_and_lower_the_rest():
    cands, names, h, w = _field_with_house()
    res = fuse(cands, names, h, w, overlap="smaller-on-top")
    assert res.label_map[6, 12] == 1
    assert res.score_maps[1, 6, 12] == pytest.approx(0.6)  # the house keeps its own score
    assert res.score_maps[3, 6, 12] < res.score_maps[1, 6, 12]  # the field is lowered below it
    assert res.score_maps[3, 6, 12] == pytest.approx(0.6)  # ... to just below, not to zero
    assert res.score_maps[3, 0, 0] == pytest.approx(0.9)  # untouched where the field wins anyway


def test_equal_areas_go_to_the_higher_score_and_weak_candidates_are_not_painted():
    h, w = 10, 10
    a = cand(box_mask(h, w, 0, 5, 0, 10), "a", 0.4, "detector")
    b = cand(box_mask(h, w, 0, 5, 0, 10), "b", 0.7, "filter")
    weak = cand(box_mask(h, w, 5, 7, 0, 10), "a", 0.1, "heatmap")
    res = fuse([a, b, weak], ["a", "b"], h, w, min_area=1, overlap="smaller-on-top", background_score=0.2)
    assert np.bincount(res.label_map.ravel(), minlength=3).tolist() == [50, 0, 50]
    assert len(res.candidates) == 3  # the weak one is kept for review, not painted


@pytest.mark.parametrize("kwargs, needle", [
    ({"overlap": "largest"}, "unknown overlap rule"),
    ({"overlap": "priority"}, "needs a priority list"),
    ({"overlap": "priority", "priority": ("tree",)}, "unknown class"),
    ({"priority": "road"}, "list of class names"),
])
def test_bad_overlap_settings(kwargs, needle):
    from text2seg_widgets.errors import InputError

    with pytest.raises(InputError, match=needle):
        fuse([], ["road", "field"], 4, 4, **kwargs)


def test_default_rule_is_smaller_on_top():
    from text2seg_widgets.pipeline import PipelineConfig
    from text2seg_widgets.pipeline.fusion import DEFAULT_OVERLAP

    cands, names, h, w = _field_with_house()
    res = fuse(cands, names, h, w)
    assert DEFAULT_OVERLAP == PipelineConfig().overlap == "smaller-on-top"
    assert np.bincount(res.label_map.ravel(), minlength=4).tolist() == [0, 20, 120, 460]
