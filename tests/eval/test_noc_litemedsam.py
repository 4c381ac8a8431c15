"""The click protocol with the real LiteMedSAM (box-only) on a real LoveDA building and water body."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from text2seg_widgets.eval.labels import load_label, load_mapping
from text2seg_widgets.eval.noc import label_objects, mask_box, simulate_image, summarize

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def litemedsam():
    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter

    return LiteMedSamSegmenter.from_checkpoint(device="cpu")


def _largest(rs_samples, stem: str, class_name: str):
    classes = load_mapping("loveda").classes
    image = np.array(Image.open(rs_samples / f"loveda/images/{stem}.png").convert("RGB"))
    label = load_label(rs_samples / f"loveda/labels/{stem}.png", "loveda")
    objects = label_objects(label, classes, classes=[class_name], min_area=300)
    return image, max(objects, key=lambda o: int(o.mask.sum()))


def test_litemedsam_box_protocol_on_a_real_building_and_water(litemedsam, rs_samples):
    building_image, building = _largest(rs_samples, "0", "building")
    water_image, water = _largest(rs_samples, "2", "water")
    assert int(building.mask.sum()) == 5176 and int(water.mask.sum()) == 29109

    [b_trace] = simulate_image(litemedsam, building_image, [building], start="box")
    [w_trace] = simulate_image(litemedsam, water_image, [water], start="none")  # box-only: the box first
    assert litemedsam.encoder_calls == 2
    for trace, obj in ((b_trace, building), (w_trace, water)):
        assert trace.box_only
        assert trace.interactions == [{"type": "box", "box": mask_box(obj.mask).tolist()}]
        assert len(trace.ious) == 21 and len(set(trace.ious[1:])) == 1
    # a real but imperfect building mask from the true box (DESIGN: about 0.45-0.65 on these tiles)
    assert 0.45 < b_trace.ious[1] < 0.85
    assert b_trace.noc(0.85) == 20 and b_trace.noc(0.90) == 20
    # the pond/river in tile 2 is an easy object: the box alone reaches 90 %
    assert w_trace.ious[1] > 0.9
    assert w_trace.noc(0.85) == 1 and w_trace.noc(0.90) == 1
    summary = summarize([b_trace, w_trace])
    assert summary.box_only and summary.noc[0.85] == pytest.approx(10.5)
    assert summary.reached[0.85] == 0.5 and summary.miou_at[1] == pytest.approx((b_trace.ious[1] + w_trace.ious[1]) / 2)


def test_litemedsam_from_a_pseudo_label(litemedsam, rs_samples):
    image, water = _largest(rs_samples, "2", "water")
    from scipy import ndimage

    rough = ndimage.binary_erosion(water.mask, iterations=6)  # a pseudo-label that misses the shore
    water.init_mask = rough
    [trace] = simulate_image(litemedsam, image, [water], start="mask")
    assert trace.box_only and trace.ious[0] == pytest.approx(rough.sum() / water.mask.sum())
    assert trace.ious[0] < 0.85 < trace.ious[1]
    assert trace.noc(0.85) == 1
