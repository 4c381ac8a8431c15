"""The stand-in run's mechanics on a constructed label map: objects, jitter bounds, the known
false-positive share per class, bad prompts used only by false positives, the simulated reviewer."""

from __future__ import annotations

import numpy as np
import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.insights.standin import best_iou, gt_objects, plan_prompts, reviewer_accepts


def label_map():
    lab = np.zeros((64, 96), np.uint8)
    lab[2:12, 2:12] = 2          # building 100 px
    lab[20:30, 40:60] = 2        # building 200 px
    lab[50:53, 80:83] = 2        # building 9 px: below min_area
    lab[40:44, :] = 3            # road 384 px
    lab[0:8, 70:78] = 5          # another value, not asked for
    return lab


def test_objects_are_components_of_the_class_values():
    objs = gt_objects(label_map(), {"building": [2], "road": [3]}, min_area=16)
    assert [(o.class_name, o.box, int(o.mask.sum())) for o in objs] == [
        ("building", (40, 20, 60, 30), 200), ("building", (2, 2, 12, 12), 100), ("road", (0, 40, 96, 44), 384)]
    assert [o.box for o in gt_objects(label_map(), {"building": [2]}, min_area=16, max_per_class=1)] == [(40, 20, 60, 30)]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_plan_has_the_known_false_positive_share(seed):
    objs = gt_objects(label_map(), {"building": [2], "road": [3]}, min_area=16)
    rng = np.random.default_rng(seed)
    plans = plan_prompts(objs, (64, 96), rng, classes=["building", "road"], fp_rate={"building": 0.5, "road": 0.0},
                         prompts={"building": ["building", "roof", "tank"], "road": ["road"]},
                         bad_prompts={"building": ["tank"]}, second_branch=1.0)
    kinds = [(p.class_name, p.branch, p.kind) for p in plans if p.kind == "true"]
    # second_branch=1: every object has a detector and a heatmap box
    assert kinds == [("building", "detector", "true"), ("building", "heatmap", "true")] * 2 + \
        [("road", "detector", "true"), ("road", "heatmap", "true")]
    fps = [p for p in plans if p.kind != "true"]
    assert len(fps) == 4 and {p.class_name for p in fps} == {"building"}  # 0.5 / (1 - 0.5) * 4 true boxes
    assert [p.kind for p in fps] == ["wrong-class", "wrong-object", "wrong-class", "wrong-object"]
    assert all(objs[p.target].class_name == "road" for p in fps if p.kind == "wrong-class")
    assert all(p.prompt != "tank" for p in plans if p.kind == "true")
    for p in plans:
        x0, y0, x1, y1 = p.box
        assert 0 <= x0 < x1 <= 96 and 0 <= y0 < y1 <= 64
        if p.kind == "true":  # each side moved by 10-30 % of the object's size (before clipping)
            bx0, by0, bx1, by1 = objs[p.target].box
            w, h = bx1 - bx0, by1 - by0
            assert abs(x0 - bx0) <= 0.3 * w + 0.1 and abs(y0 - by0) <= 0.3 * h + 0.1


def test_plan_is_seeded_and_checks_rates():
    objs = gt_objects(label_map(), {"building": [2]}, min_area=16)
    args = dict(classes=["building"], fp_rate={"building": 0.2}, prompts={"building": ["building"]})
    a = plan_prompts(objs, (64, 96), np.random.default_rng(7), **args)
    b = plan_prompts(objs, (64, 96), np.random.default_rng(7), **args)
    assert a == b
    with pytest.raises(InputError):
        plan_prompts(objs, (64, 96), np.random.default_rng(7), classes=["building"], fp_rate={"building": 1.0},
                     prompts={})


def test_simulated_reviewer_uses_iou_half():
    objs = gt_objects(label_map(), {"building": [2]}, min_area=16)
    mask = np.zeros((64, 96), bool)
    mask[20:30, 40:50] = True            # half of the 200 px building: IoU 0.5
    assert best_iou(mask, "building", objs) == 0.5 and reviewer_accepts(mask, "building", objs)
    mask[20:30, 49] = False              # IoU 0.45
    assert not reviewer_accepts(mask, "building", objs)
    assert best_iou(mask, "road", objs) == 0.0
