"""Instance pieces in scene coordinates: exact RLE placement, seam merging, duplicate removal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from text2seg_widgets.imagery.instances import (crop_to_scene_rle, merge_pieces, piece_from_tile_mask, union_rle,
                                                union_of)
from text2seg_widgets.core import mask_to_rle, rle_area, rle_to_mask


@settings(max_examples=150, deadline=None)
@given(st.integers(1, 25), st.integers(1, 25), st.data())
def test_crop_rle_equals_full_mask_rle(height, width, data):
    h = data.draw(st.integers(1, height)); w = data.draw(st.integers(1, width))
    y0 = data.draw(st.integers(0, height - h)); x0 = data.draw(st.integers(0, width - w))
    bits = data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w))
    crop = np.array(bits, bool).reshape(h, w)
    full = np.zeros((height, width), bool)
    full[y0:y0 + h, x0:x0 + w] = crop
    assert crop_to_scene_rle(crop, x0, y0, height, width) == mask_to_rle(full)


def test_crop_rle_for_big_scene_stays_small():
    crop = np.ones((30, 40), bool)
    rle = crop_to_scene_rle(crop, 19_000, 15_000, 20_000, 20_000)
    assert rle["size"] == [20_000, 20_000]
    assert rle_area(rle) == 1200
    assert len(rle["counts"]) < 400


def test_crop_outside_scene_is_refused():
    with pytest.raises(ValueError):
        crop_to_scene_rle(np.ones((3, 3), bool), 9, 0, 10, 10)


def _tile_mask(shape, box):
    m = np.zeros(shape, bool)
    x, y, w, h = box
    m[y:y + h, x:x + w] = True
    return m


def test_piece_records_cuts_only_on_interior_edges():
    # tile at (64, 0) of a 128 x 64 scene, size 64: its right edge is the scene border
    p = piece_from_tile_mask(_tile_mask((64, 64), (0, 10, 64, 5)), 64, 0, 128, 64, key="a", score=1)
    assert (p.x0, p.y0, p.w, p.h, p.area) == (64, 10, 64, 5, 320)
    assert p.cuts == [("x", 64, -1)]
    assert piece_from_tile_mask(np.zeros((8, 8), bool), 0, 0, 8, 8, key="a", score=1) is None


def test_object_split_by_seam_without_overlap_is_one_object():
    # scene 100 x 40, tiles [0, 50) and [50, 100); a building spans x 40..60
    obj = _tile_mask((40, 100), (40, 5, 20, 10))
    a = piece_from_tile_mask(obj[:, :50], 0, 0, 100, 40, key="building", score=0.6)
    b = piece_from_tile_mask(obj[:, 50:], 50, 0, 100, 40, key="building", score=0.8)
    assert merge_pieces([a, b]) == [[0, 1]]
    x0, y0, m = union_of([a, b])
    full = np.zeros((40, 100), bool); full[y0:y0 + m.shape[0], x0:x0 + m.shape[1]] = m
    np.testing.assert_array_equal(full, obj)


def test_object_split_by_seam_with_overlap_is_one_object():
    # tiles [0, 60) and [40, 100): a long road crossing both
    obj = _tile_mask((40, 100), (0, 18, 100, 4))
    a = piece_from_tile_mask(obj[:, :60], 0, 0, 100, 40, key="road", score=0.6)
    b = piece_from_tile_mask(obj[:, 40:], 40, 0, 100, 40, key="road", score=0.7)
    assert merge_pieces([a, b]) == [[0, 1]]


def test_neighbours_not_touching_the_seam_stay_apart():
    obj1 = _tile_mask((40, 100), (10, 5, 10, 10))
    obj2 = _tile_mask((40, 100), (21, 5, 10, 10))  # adjacent to obj1 but no tile edge between them
    a = piece_from_tile_mask(obj1[:, :50], 0, 0, 100, 40, key="building", score=0.6)
    b = piece_from_tile_mask(obj2[:, :50], 0, 0, 100, 40, key="building", score=0.6)
    assert merge_pieces([a, b]) == [[0], [1]]


def test_duplicates_from_overlap_merge_and_classes_stay_apart():
    obj = _tile_mask((40, 100), (45, 5, 10, 10))  # inside the overlap of [0, 60) and [40, 100)
    a = piece_from_tile_mask(obj[:, :60], 0, 0, 100, 40, key="building", score=0.6)
    b = piece_from_tile_mask(obj[:, 40:], 40, 0, 100, 40, key="building", score=0.9)
    c = piece_from_tile_mask(obj[:, 40:], 40, 0, 100, 40, key="tree", score=0.9)
    assert merge_pieces([a, b, c]) == [[0, 1], [2]]


def test_partial_duplicate_joins_the_full_object():
    full = _tile_mask((40, 100), (30, 5, 25, 10))     # x 30..55 fully inside tile [0, 60)
    a = piece_from_tile_mask(full[:, :60], 0, 0, 100, 40, key="b", score=0.9)
    b = piece_from_tile_mask(full[:, 40:], 40, 0, 100, 40, key="b", score=0.5)  # cut at x=40
    groups = merge_pieces([a, b])
    assert groups == [[0, 1]]
    x0, y0, m = union_of([a, b])
    assert (x0, y0, int(m.sum())) == (30, 5, 250)
    assert rle_to_mask(crop_to_scene_rle(m, x0, y0, 40, 100)).sum() == 250


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_union_rle_equals_dense_union(data):
    height, width = data.draw(st.integers(2, 30)), data.draw(st.integers(2, 30))
    pieces, full = [], np.zeros((height, width), bool)
    for k in range(data.draw(st.integers(1, 4))):
        h, w = data.draw(st.integers(1, height)), data.draw(st.integers(1, width))
        y0, x0 = data.draw(st.integers(0, height - h)), data.draw(st.integers(0, width - w))
        crop = np.array(data.draw(st.lists(st.booleans(), min_size=h * w, max_size=h * w)), bool).reshape(h, w)
        crop[0, 0] = True
        p = piece_from_tile_mask(crop, x0, y0, width, height, key="a", score=1.0, tile_size=(w, h))
        pieces.append(p)
        full[y0:y0 + h, x0:x0 + w] |= crop
    rle, area = union_rle(pieces, height, width)
    assert rle == mask_to_rle(full) and area == int(full.sum())
