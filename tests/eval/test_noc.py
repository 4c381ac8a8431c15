"""The simulated-click protocol pinned on constructed shapes with deterministic oracles."""

from __future__ import annotations

import numpy as np
import pytest

from tests.eval.oracles import BoxOnlyOracle, DiskOracle
from text2seg_widgets.core import mask_iou
from text2seg_widgets.errors import InputError
from text2seg_widgets.eval.noc import (Click, GTObject, attach_pseudo_labels, label_objects, mask_box, mask_to_low_res_logits,
                                       next_click, simulate_image, simulate_object, summarize)


def _rect(shape, y0, y1, x0, x1) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[y0:y1, x0:x1] = True
    return m


SHAPE = (64, 64)
SQUARE_A = _rect(SHAPE, 5, 16, 5, 16)  # 11 x 11, centre (10, 10)
SQUARE_B = _rect(SHAPE, 40, 51, 40, 51)  # 11 x 11, centre (45, 45)
TWO_SQUARES = SQUARE_A | SQUARE_B
L_SHAPE = _rect(SHAPE, 10, 30, 10, 50) & ~_rect(SHAPE, 10, 20, 30, 50)  # 600 px in a 800 px box
IMAGE = np.zeros(SHAPE + (3,), np.uint8)


def test_next_click_goes_to_the_centre_of_the_largest_error():
    gt = _rect((50, 50), 10, 31, 10, 31)
    assert next_click(gt, np.zeros_like(gt)) == Click(x=20, y=20, positive=True)
    assert next_click(gt, gt) is None
    # a false-positive strip bigger than the missing corner: a negative click in the strip
    pred = (gt | _rect((50, 50), 40, 48, 0, 50)) & ~_rect((50, 50), 10, 13, 10, 13)
    assert next_click(gt, pred) == Click(x=3, y=43, positive=False)
    # the image border is a boundary: a region in the corner gets its own centre, not the far edge
    corner = _rect((50, 50), 0, 10, 0, 10)
    assert next_click(corner, np.zeros_like(corner)) == Click(x=4, y=4, positive=True)


def test_next_click_ties_and_ignore():
    gt = _rect((20, 20), 0, 5, 0, 5)
    pred = _rect((20, 20), 10, 15, 10, 15)  # FN and FP regions of 25 px each: FN first
    assert next_click(gt, pred).positive is True
    ignore = _rect((20, 20), 0, 5, 0, 5)
    assert next_click(gt, pred, ignore) == Click(x=12, y=12, positive=False)
    # the largest region wins even if another is listed first in raster order
    two = _rect((30, 30), 0, 3, 0, 3) | _rect((30, 30), 10, 20, 10, 20)
    assert next_click(two, np.zeros_like(two)) == Click(x=14, y=14, positive=True)


def test_mask_helpers():
    assert mask_box(L_SHAPE).tolist() == [10, 10, 50, 30]
    assert mask_iou(L_SHAPE, _rect(SHAPE, 10, 30, 10, 50)) == pytest.approx(0.75)
    assert mask_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    logits = mask_to_low_res_logits(_rect((64, 128), 0, 64, 0, 64))
    assert logits.shape == (1, 256, 256) and logits.dtype == np.float32
    assert (logits[0, :128, :128] > 0).all() and (logits[0, :, 128:] < 0).all() and (logits[0, 128:] < 0).all()
    with pytest.raises(InputError, match="empty"):
        mask_box(np.zeros((3, 3), bool))


def test_from_nothing_two_parts_two_clicks():
    oracle = DiskOracle(TWO_SQUARES, radius=10)
    trace = simulate_object(oracle, TWO_SQUARES, start="none")
    assert trace.ious[:4] == [0.0, 0.5, 1.0, 1.0] and len(trace.ious) == 21
    assert trace.interactions == [{"type": "click", "x": 10, "y": 10, "positive": True},
                                  {"type": "click", "x": 45, "y": 45, "positive": True}]
    assert trace.noc(0.85) == 2 and trace.noc(0.90) == 2 and trace.noc(0.4) == 1
    assert len(oracle.calls) == 2 and oracle.calls[1]["points"] == [[10, 10], [45, 45]]
    assert oracle.calls[1]["labels"] == [1, 1] and oracle.calls[1]["mask_input"] is True


def test_from_box_then_a_negative_click():
    oracle = DiskOracle(L_SHAPE, radius=30)
    trace = simulate_object(oracle, L_SHAPE, start="box")
    assert trace.ious[:3] == [0.0, 0.75, 1.0]
    assert trace.interactions == [{"type": "box", "box": [10.0, 10.0, 50.0, 30.0]},
                                  {"type": "click", "x": 34, "y": 14, "positive": False}]
    assert trace.noc(0.85) == 2 and trace.noc(0.70) == 1
    assert oracle.calls[1]["box"] == [10.0, 10.0, 50.0, 30.0]  # the box stays in the prompt


def test_from_a_pseudo_label():
    oracle = DiskOracle(TWO_SQUARES, radius=10)
    trace = simulate_object(oracle, TWO_SQUARES, start="mask", init_mask=SQUARE_A)
    assert trace.ious[:3] == [0.5, 1.0, 1.0]
    assert trace.noc(0.85) == 1
    assert oracle.calls[0]["mask_input"] is True  # the pseudo-label went in as mask_input
    perfect = simulate_object(DiskOracle(TWO_SQUARES, 10), TWO_SQUARES, start="mask", init_mask=TWO_SQUARES)
    assert perfect.noc(0.9) == 0 and perfect.interactions == []
    with pytest.raises(InputError, match="init_mask"):
        simulate_object(oracle, TWO_SQUARES, start="mask")


def test_never_reached_counts_max_clicks():
    big = _rect(SHAPE, 10, 51, 10, 51)  # 1681 px; each click adds at most 5 px
    oracle = DiskOracle(big, radius=1)
    trace = simulate_object(oracle, big, start="none")
    assert len(trace.interactions) == 20 and len(oracle.calls) == 20
    assert trace.ious[-1] == pytest.approx(100 / 1681)
    assert trace.noc(0.85) == 20 and trace.noc(0.90) == 20
    assert simulate_object(DiskOracle(big, 1), big, max_clicks=5).noc(0.85) == 5


def test_stop_at_saves_calls_and_keeps_noc():
    oracle = DiskOracle(TWO_SQUARES, radius=10)
    trace = simulate_object(oracle, TWO_SQUARES, stop_at=0.4)
    assert len(oracle.calls) == 1 and trace.ious == [0.0] + [0.5] * 20 and trace.noc(0.4) == 1


@pytest.mark.parametrize("declare", [True, False])
def test_box_only_segmenter_follows_the_box_protocol(declare):
    rect = _rect(SHAPE, 10, 30, 10, 50)
    for start in ("none", "box"):
        oracle = BoxOnlyOracle(L_SHAPE, declare=declare)
        trace = simulate_object(oracle, L_SHAPE, start=start)
        assert trace.box_only and trace.interactions == [{"type": "box", "box": [10.0, 10.0, 50.0, 30.0]}]
        assert trace.ious == [0.0] + [0.75] * 20
        assert trace.noc(0.85) == 20 and trace.noc(0.7) == 1
        assert all(call["points"] is None for call in oracle.calls)
    ok = simulate_object(BoxOnlyOracle(rect, declare=declare), rect, start="none")
    assert ok.noc(0.9) == 1 and ok.box_only
    from_mask = simulate_object(BoxOnlyOracle(rect, declare=declare), rect, start="mask", init_mask=L_SHAPE)
    assert from_mask.ious[:2] == [0.75, 1.0] and from_mask.noc(0.9) == 1 and from_mask.noc(0.7) == 0


def test_simulate_image_encodes_once_and_summarize():
    field_mask = _rect(SHAPE, 40, 60, 2, 30)  # 20 x 28: more than one disk of radius 10
    oracle = DiskOracle(TWO_SQUARES | field_mask, radius=10)
    objects = [GTObject(SQUARE_A, "house"), GTObject(SQUARE_B, "house"), GTObject(field_mask, "field")]
    traces = simulate_image(oracle, IMAGE, objects, start="none")
    assert oracle.encoder_calls == 1
    assert [t.noc(0.85) for t in traces[:2]] == [1, 1]
    s = summarize(traces)
    field = traces[2]
    assert field.noc(0.85) > 1 and field.ious[1] < 0.85
    assert s.objects == 3 and s.miou_at[0] == 0.0 and s.miou_at[1] == pytest.approx((2 + field.ious[1]) / 3)
    assert s.noc[0.85] == pytest.approx((1 + 1 + field.noc(0.85)) / 3)
    assert s.per_class["house"]["noc@85"] == 1.0 and s.per_class["house"]["objects"] == 2
    assert s.to_dict()["reached@90"] == pytest.approx(s.reached[0.9])
    with pytest.raises(InputError, match="differs from the image size"):
        simulate_image(oracle, IMAGE[:10], objects)


def test_label_objects():
    label = np.full((20, 20), 0, np.uint8)
    label[2:6, 2:6] = 1  # 16 px
    label[10:12, 10:12] = 1  # 4 px, below min_area
    label[14:20, 0:3] = 1  # 18 px
    label[0, :] = 255
    objects = label_objects(label, ["bg", "house"], classes=["house"], min_area=5)
    assert [int(o.mask.sum()) for o in objects] == [16, 18]
    assert all(o.class_name == "house" and o.ignore is not None for o in objects)
    with pytest.raises(InputError, match="not in the label classes"):
        label_objects(label, ["bg", "house"], classes=["car"])


def test_attach_pseudo_labels_picks_the_best_overlap_of_the_same_class():
    objects = [GTObject(SQUARE_A.copy(), "house"), GTObject(SQUARE_B.copy(), "house"), GTObject(L_SHAPE, "field")]
    most_of_a = SQUARE_A & _rect(SHAPE, 0, 64, 0, 14)  # 99 of 121 px: IoU 0.82 beats 121/242 = 0.5
    attach_pseudo_labels(objects, [("house", most_of_a), ("house", SQUARE_A | SQUARE_B), ("tree", SQUARE_B)])
    assert np.array_equal(objects[0].init_mask, most_of_a)
    assert np.array_equal(objects[1].init_mask, SQUARE_A | SQUARE_B)  # the only house mask touching B
    assert not objects[2].init_mask.any()  # no field proposal: start from an empty mask
    traces = [simulate_object(DiskOracle(TWO_SQUARES, 10), o.mask, start="mask", init_mask=o.init_mask)
              for o in objects[:2]]
    assert traces[0].ious[0] == pytest.approx(99 / 121)
    # the missing 2-px-wide strip: every pixel is 1 px from its edge, so the first in raster order
    # wins (x=14, y=5), whose disk just misses the far corner (15, 15); the next click takes it
    assert traces[0].interactions[0] == {"type": "click", "x": 14, "y": 5, "positive": True}
    assert traces[0].ious[1:3] == [pytest.approx(120 / 121), 1.0]
    assert traces[1].ious[0] == pytest.approx(0.5)
