"""FastMaskGenerator against the reference on the same embedding and settings.

SAM (tiny random model): the reference is segment-anything's ``SamAutomaticMaskGenerator`` at full
resolution (through ``SamMaskGenerator(full_resolution=True)``), sharing the segmenter's embedding.
LiteMedSAM (real weights, box prompts only): the reference is SAM's recipe at full resolution on
the same grid of boxes, written out below (decode, upsample every mask, filter by predicted IoU and
full-resolution stability, box NMS). Equivalence: every reference mask has a fast mask with IoU >=
0.9 and every fast mask a reference mask with IoU >= 0.9.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from segment_anything.utils.amg import batched_mask_to_box, build_point_grid, calculate_stability_score
from torchvision.ops import batched_nms

from text2seg_widgets.errors import InputError
from text2seg_widgets.models.fast_amg import AmgSettings, FastMaskGenerator, amg_defaults, box_prompts
from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
from text2seg_widgets.models.protocols import MaskGenerator
from text2seg_widgets.models.sam import SamMaskGenerator
from text2seg_widgets.models.tiny import tiny_sam_segmenter


def best_ious(a: list[np.ndarray], b: list[np.ndarray]) -> np.ndarray:
    """For each mask of ``a``, its best IoU with a mask of ``b`` (0 when ``b`` is empty)."""
    out = []
    for x in a:
        ious = [float((x & y).sum()) / max(1.0, float((x | y).sum())) for y in b]
        out.append(max(ious, default=0.0))
    return np.asarray(out)


def assert_equivalent(ref: list[np.ndarray], fast: list[np.ndarray]) -> None:
    r, f = best_ious(ref, fast), best_ious(fast, ref)
    assert (r >= 0.9).all(), f"reference masks without a fast match: best IoUs {np.round(r, 3).tolist()}"
    assert (f >= 0.9).all(), f"fast masks without a reference match: best IoUs {np.round(f, 3).tolist()}"


@pytest.fixture(scope="module")
def loveda_rgb(rs_samples) -> np.ndarray:
    return np.asarray(Image.open(rs_samples / "loveda" / "images" / "0.png").convert("RGB"))


# seed, window (rows, cols) of the LoveDA tile, settings, reference count, fast count
TINY_CASES = [
    (0, (slice(0, 256), slice(0, 256)), dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.97), 4, 4),
    (0, (slice(100, 292), slice(0, 256)), dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.9), 3, 3),
    (1, (slice(0, 256), slice(0, 256)), dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.97), 5, 4),
    (1, (slice(100, 292), slice(0, 256)), dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.9), 3, 3),
]


@pytest.mark.parametrize("seed, window, settings, n_ref, n_fast", TINY_CASES)
def test_tiny_sam_matches_segment_anything(loveda_rgb, seed, window, settings, n_ref, n_fast):
    image = np.ascontiguousarray(loveda_rgb[window])
    seg = tiny_sam_segmenter(seed)
    seg.set_image(image)
    calls = seg.encoder_calls
    ref = SamMaskGenerator(seg, points_per_side=8, full_resolution=True, **settings).generate(image)
    fast_gen = FastMaskGenerator(seg, points_per_side=8, crop_n_layers=0, **settings)
    fast = fast_gen.generate(image)
    assert seg.encoder_calls == calls == fast_gen.encoder_calls  # both decoded the one cached embedding
    assert (len(ref), len(fast)) == (n_ref, n_fast)
    assert_equivalent([m.mask for m in ref], [m.mask for m in fast])
    assert all(m.mask.shape == image.shape[:2] and m.mask.dtype == bool for m in fast)
    assert [m.score for m in fast] == sorted((m.score for m in fast), reverse=True)
    assert isinstance(fast_gen, MaskGenerator)


def lite_reference(seg: LiteMedSamSegmenter, image: np.ndarray, s: AmgSettings) -> list[np.ndarray]:
    """SAM's recipe at full resolution on a box grid: every mask upsampled before filtering."""
    h, w = image.shape[:2]
    boxes = box_prompts(build_point_grid(s.points_per_side) * np.array([[w, h]]), s.box_sizes, (h, w))
    seg.set_image(image)
    nh, nw = seg.embedding.resized_hw
    pred = seg.predict_boxes(boxes)
    low = torch.as_tensor(pred.low_res_logits)
    logits = F.interpolate(low[..., :nh, :nw], size=(h, w), mode="bilinear", align_corners=False)[:, 0]
    iou = torch.as_tensor(pred.scores)
    ok = iou > s.pred_iou_thresh
    logits, iou = logits[ok], iou[ok]
    ok = calculate_stability_score(logits, 0.0, s.stability_score_offset) >= s.stability_score_thresh
    masks, iou = logits[ok] > 0, iou[ok]
    ok = masks.flatten(1).any(1)
    masks, iou = masks[ok], iou[ok]
    keep = batched_nms(batched_mask_to_box(masks).float(), iou, torch.zeros(len(iou)), iou_threshold=s.box_nms_thresh)
    return [masks[k].numpy() for k in keep]


@pytest.fixture(scope="module")
def lite() -> LiteMedSamSegmenter:
    return LiteMedSamSegmenter.from_checkpoint(device="cpu")


# window, settings, reference count, fast count
LITE_CASES = [
    ((slice(0, 512), slice(0, 384)), dict(points_per_side=8, pred_iou_thresh=0.5, stability_score_thresh=0.8), 13, 13),
    ((slice(0, 512), slice(0, 384)), dict(points_per_side=8, pred_iou_thresh=0.0, stability_score_thresh=0.85,
                                          box_nms_thresh=0.5), 3, 3),
]


@pytest.mark.parametrize("window, settings, n_ref, n_fast", LITE_CASES)
def test_litemedsam_box_grid_matches_full_resolution_reference(lite, loveda_rgb, window, settings, n_ref, n_fast):
    image = np.ascontiguousarray(loveda_rgb[window])
    gen = FastMaskGenerator(lite, crop_n_layers=0, **settings)
    fast = [m.mask for m in gen.generate(image)]
    assert gen.effective_settings().prompt == "boxes"  # LiteMedSAM takes no points
    ref = lite_reference(lite, image, gen.effective_settings())
    assert (len(ref), len(fast)) == (n_ref, n_fast)
    assert_equivalent(ref, fast)


def test_crop_layers_encode_crops_and_keep_the_whole_image_embedding(loveda_rgb):
    image = np.ascontiguousarray(loveda_rgb[:256, :256])
    seg = tiny_sam_segmenter(1)
    gen = FastMaskGenerator(seg, points_per_side=4, crop_n_layers=1, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    masks = gen.generate(image)
    assert seg.encoder_calls == 1 + 4  # the whole image, then 2 x 2 crops
    assert seg.is_set(image)  # the crops did not replace the segmenter's embedding
    assert len(masks) >= 1 and all(m.mask.shape == (256, 256) for m in masks)
    gen.generate(image)
    assert seg.encoder_calls == 1 + 8  # crops are encoded per call; the whole image is cached


def test_box_prompts_and_device_defaults():
    boxes = box_prompts(np.array([[10.0, 20.0], [0.0, 0.0]]), (0.25, 0.5), (40, 80))
    np.testing.assert_allclose(boxes, [[0, 10, 20, 30], [0, 0, 30, 40], [0, 0, 10, 10], [0, 0, 20, 20]])
    assert amg_defaults("cpu") == {"points_per_side": 16, "crop_n_layers": 0}
    assert amg_defaults("cuda") == {"points_per_side": 32, "crop_n_layers": 1}
    assert AmgSettings().resolved("cpu").points_per_side == 16
    assert AmgSettings(points_per_side=8, crop_n_layers=2).resolved("cuda").crop_n_layers == 2


@pytest.mark.parametrize("kwargs, needle", [
    ({"points_per_side": 0}, "points_per_side"),
    ({"crop_n_layers": -1}, "crop_n_layers"),
    ({"prompt": "clicks"}, "prompt"),
    ({"box_sizes": (0.0,)}, "box_sizes"),
    ({"box_nms_thresh": 0.0}, "box_nms_thresh"),
    ({"max_masks": 0}, "max_masks"),
])
def test_bad_settings_raise_input_error(kwargs, needle):
    with pytest.raises(InputError, match=needle):
        AmgSettings(**kwargs)


def test_unknown_setting_and_point_prompts_on_litemedsam(lite, loveda_rgb):
    with pytest.raises(InputError, match="unknown mask generator setting"):
        FastMaskGenerator(lite, grid=4)
    gen = FastMaskGenerator(lite, points_per_side=2, prompt="points")
    with pytest.raises(InputError, match="boxes only"):
        gen.generate(np.ascontiguousarray(loveda_rgb[:128, :128]))


def test_max_masks_keeps_the_best_before_upsampling(loveda_rgb):
    image = np.ascontiguousarray(loveda_rgb[:256, :256])
    seg = tiny_sam_segmenter(1)
    settings = dict(points_per_side=8, crop_n_layers=0, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                    box_nms_thresh=0.97)
    everything = FastMaskGenerator(seg, **settings).generate(image)
    best2 = FastMaskGenerator(seg, **settings).generate(image, dataclasses.replace(
        FastMaskGenerator(seg, **settings).settings, max_masks=2))
    assert len(everything) == 4 and len(best2) == 2
    assert [m.score for m in best2] == [m.score for m in everything[:2]]
    np.testing.assert_array_equal(best2[0].mask, everything[0].mask)


def test_pipeline_config_reaches_the_generator_and_reference_by_name(monkeypatch, loveda_rgb):
    from text2seg_widgets.models.fast_amg import mask_generator
    from text2seg_widgets.models.tiny import tiny_model_set
    from text2seg_widgets.pipeline import ClassSet, PipelineConfig, Text2SegPipeline

    models = tiny_model_set()
    models.mask_generator = mask_generator(models.segmenter, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    seen = []
    original = FastMaskGenerator.generate

    def spy(self, image, settings=None):
        seen.append(self.effective_settings(settings))
        return original(self, image, settings)

    monkeypatch.setattr(FastMaskGenerator, "generate", spy)
    config = PipelineConfig(branches=("filter",), amg_points_per_side=3, amg_crop_layers=0, amg_max_masks=2)
    assert config.amg_overrides() == {"points_per_side": 3, "crop_n_layers": 0, "max_masks": 2}
    Text2SegPipeline(models, ClassSet.parse("building,road"), config).run(np.ascontiguousarray(loveda_rgb[:128, :128]))
    assert [(s.points_per_side, s.crop_n_layers, s.max_masks, s.prompt) for s in seen] == [(3, 0, 2, "points")]
    assert isinstance(mask_generator(models.segmenter, "reference"), SamMaskGenerator)
    with pytest.raises(InputError, match="unknown mask generator"):
        mask_generator(models.segmenter, "slow")
    with pytest.raises(InputError, match="amg_points_per_side"):
        PipelineConfig(amg_points_per_side=0)
