"""Property tests: any masks (holes, touching borders, 1-pixel objects, empty images) survive
store -> COCO (RLE and polygons) -> pycocotools unchanged, with bbox/area from the mask."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from pycocotools import mask as mask_utils
from pycocotools.coco import COCO

from text2seg_widgets.export import build_coco, import_coco
from text2seg_widgets.store import Project
from tests.store.helpers import write_png

SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def image_masks(draw: st.DrawFn) -> tuple[int, int, list[np.ndarray]]:
    """An image size and 0-4 masks: random noise, rectangles with holes, single pixels, borders."""
    h, w = draw(st.integers(1, 24)), draw(st.integers(1, 24))
    masks = []
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["noise", "holed", "pixel", "border"]))
        if kind == "noise":
            m = draw(arrays(np.bool_, (h, w)))
        else:
            m = np.zeros((h, w), bool)
            if kind == "holed":
                m[:, :] = True
                m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = False
            elif kind == "pixel":
                m[draw(st.integers(0, h - 1)), draw(st.integers(0, w - 1))] = True
            else:
                m[0, :] = True
                m[:, w - 1] = True
        if m.any():
            masks.append(m)
    return h, w, masks


def _roundtrip(masks: list[np.ndarray], h: int, w: int, polygons: bool) -> None:
    with tempfile.TemporaryDirectory() as d:
        folder = Path(d)
        p = Project.create(folder / "p", classes=["a", "b"])
        rec = p.add_image(write_png(folder / "img.png", height=h, width=w))
        for i, m in enumerate(masks):
            p.add_annotation(rec.id, m, "ab"[i % 2], score=0.5)
        p.set_state(rec.id, "done")
        coco, stats = build_coco(p, p.images(), polygons=polygons)
        (folder / "c.json").write_text(json.dumps(coco))
        api = COCO(str(folder / "c.json"))
        assert api.imgs[1]["width"] == w and api.imgs[1]["height"] == h
        anns = api.loadAnns(api.getAnnIds(imgIds=[1]))
        assert len(anns) == len(masks)
        for ann, m in zip(anns, masks):
            assert ann["iscrowd"] == 0 and ann["category_id"] in (1, 2)
            assert np.array_equal(api.annToMask(ann).astype(bool), m)
            rle = mask_utils.encode(np.asfortranarray(m.astype(np.uint8)))
            assert ann["area"] == int(m.sum())
            assert ann["bbox"] == [float(v) for v in mask_utils.toBbox(rle)]
        if polygons:
            assert stats["polygons"] + stats["rle_fallback_holes"] == len(masks)
        q = Project.create(folder / "q", classes=["a", "b"])
        import_coco(q, folder / "c.json", image_root=folder)
        assert [np.array_equal(a.mask(), m) for a, m in zip(q.annotations(), masks)] == \
            [True] * len(masks)
        p.close()
        q.close()


@SETTINGS
@given(image_masks())
def test_rle_roundtrip_property(case: tuple[int, int, list[np.ndarray]]) -> None:
    h, w, masks = case
    _roundtrip(masks, h, w, polygons=False)


@SETTINGS
@given(image_masks())
def test_polygon_roundtrip_property(case: tuple[int, int, list[np.ndarray]]) -> None:
    h, w, masks = case
    _roundtrip(masks, h, w, polygons=True)
