import json

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from text2seg_widgets.core import Candidate, boxes_overlap, mask_to_rle, rle_to_mask


def test_rle_round_trip_and_bbox_from_mask():
    rng = np.random.default_rng(0)
    mask = np.zeros((37, 53), bool)  # non-square: width/height must not swap
    mask[5:9, 40:50] = True
    mask[20, 3] = True
    mask |= rng.random(mask.shape) > 0.995
    rle = mask_to_rle(mask)
    assert isinstance(rle["counts"], str) and rle["size"] == [37, 53]
    np.testing.assert_array_equal(rle_to_mask(rle), mask)
    c = Candidate.from_mask(mask, class_name="building", score=0.5, branch="filter", prompt="roof")
    ys, xs = np.nonzero(mask)
    assert c.bbox == [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
    assert c.area == int(mask.sum()) and (c.height, c.width) == (37, 53)
    # JSON-able and readable by pycocotools directly
    back = Candidate.from_dict(json.loads(json.dumps(c.to_dict())))
    np.testing.assert_array_equal(back.mask(), mask)
    coco_rle = {"size": back.rle["size"], "counts": back.rle["counts"].encode()}
    assert int(mask_utils.area(coco_rle)) == c.area


def test_empty_mask():
    c = Candidate.from_mask(np.zeros((4, 6), bool), class_name="x", score=0, branch="manual")
    assert c.area == 0 and c.bbox == [0.0, 0.0, 0.0, 0.0]
    assert not c.mask().any() and c.mask().shape == (4, 6)


def test_uncompressed_rle_is_decoded():
    mask = np.zeros((3, 4), bool)
    mask[1, 1:3] = True
    # column-major run lengths: 4 zeros, 1 one, 2 zeros, 1 one, 4 zeros
    rle = {"size": [3, 4], "counts": [4, 1, 2, 1, 4]}
    np.testing.assert_array_equal(rle_to_mask(rle), mask)


@pytest.mark.parametrize("a, b, expected", [
    ([0, 0, 10, 10], [5, 5, 10, 10], True),     # corner overlap
    ([0, 0, 10, 10], [10, 0, 5, 5], False),     # touching edge: no shared area
    ([0, 0, 10, 10], [2, 2, 3, 3], True),       # inside
    ([0, 0, 10, 10], [0, 20, 10, 10], False),   # apart vertically
])
def test_boxes_overlap_table(a, b, expected):
    assert boxes_overlap(a, b) is expected
    assert boxes_overlap(b, a) is expected
