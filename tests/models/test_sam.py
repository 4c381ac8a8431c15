"""SAM v1 adapter: prompt shapes, batched boxes, one encoding per image, shared generator."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

from tests.tiny_models import count_forwards, synthetic_rgb
from text2seg_widgets.errors import InputError
from text2seg_widgets.models import sam as sam_module
from text2seg_widgets.models.protocols import MaskGenerator, PromptableSegmenter
from text2seg_widgets.models.sam import SamMaskGenerator, SamSegmenter
from text2seg_widgets.models.tiny import tiny_mask_generator, tiny_sam


@pytest.fixture(scope="module")
def seg() -> SamSegmenter:
    return SamSegmenter(tiny_sam(seed=3), name="tiny-sam", device="cpu", dtype=None)


def test_protocols(tiny_models):
    assert isinstance(tiny_models.segmenter, PromptableSegmenter)
    assert isinstance(tiny_models.mask_generator, MaskGenerator)
    assert tiny_models.mask_generator.segmenter is tiny_models.segmenter


def test_set_image_encodes_once_per_equal_image(seg):
    a, b = synthetic_rgb(90, 150, seed=10), synthetic_rgb(90, 150, seed=11)
    before = seg.encoder_calls
    with count_forwards(seg.model.image_encoder) as calls:
        seg.set_image(a)
        seg.set_image(a.copy())  # equal content, different array: no re-encoding
        seg.predict(points=np.array([[10.0, 20.0]]), point_labels=np.array([1]))
        seg.predict(box=np.array([5, 5, 60, 40]))
        seg.predict_boxes(np.array([[0, 0, 30, 30], [40, 10, 100, 80]]))
        assert calls[0] == 1
        seg.set_image(b)
        assert calls[0] == 2
        seg.set_image(a)
        assert calls[0] == 3
    assert seg.encoder_calls - before == 3


def test_predict_shapes_points_box_mask(seg, tiny_image):
    h, w = tiny_image.shape[:2]
    seg.set_image(tiny_image)
    side = 4 * seg.model.prompt_encoder.image_embedding_size[0]
    multi = seg.predict(points=np.array([[20.0, 30.0], [150.0, 90.0]]), point_labels=np.array([1, 0]),
                        multimask=True)
    assert multi.masks.shape == (3, h, w) and multi.masks.dtype == bool
    assert multi.scores.shape == (3,)
    assert multi.low_res_logits.shape == (3, side, side)
    single = seg.predict(box=np.array([10, 10, 120, 100]))
    assert single.masks.shape == (1, h, w) and single.scores.shape == (1,)
    refined = seg.predict(box=np.array([10, 10, 120, 100]), mask_input=single.low_res_logits)
    assert refined.masks.shape == (1, h, w)
    # the previous mask changes the decoder's input, so the logits differ
    assert not np.allclose(refined.low_res_logits, single.low_res_logits)
    both = seg.predict(points=np.array([[50.0, 50.0]]), point_labels=np.array([1]), box=np.array([0, 0, 100, 90]))
    assert both.masks.shape == (1, h, w)


def test_predict_boxes_batched_equals_one_by_one(seg, tiny_image):
    seg.set_image(tiny_image)
    boxes = np.array([[0, 0, 50, 40], [30, 20, 190, 110], [100, 60, 200, 120]], dtype=float)
    batched = seg.predict_boxes(boxes)
    assert batched.masks.shape == (3, *tiny_image.shape[:2])
    for i, box in enumerate(boxes):
        one = seg.predict(box=box)
        np.testing.assert_allclose(batched.low_res_logits[i], one.low_res_logits, atol=1e-4)
        np.testing.assert_allclose(batched.scores[i], one.scores[0], atol=1e-5)
        assert (batched.masks[i] != one.masks[0]).mean() < 1e-3
    empty = seg.predict_boxes(np.zeros((0, 4)))
    assert empty.masks.shape == (0, *tiny_image.shape[:2])


def test_generator_reuses_the_segmenter_embedding(seg):
    image = synthetic_rgb(64, 96, seed=12)
    gen = SamMaskGenerator(seg, points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0)
    with count_forwards(seg.model.image_encoder) as calls:
        seg.set_image(image)  # e.g. the detector branch
        masks = gen.generate(image)  # the filter branch
        seg.predict(box=np.array([0, 0, 40, 40]))  # the embedding is still there after generate
        assert calls[0] == 1
    assert masks, "the tiny generator with filters off returns at least one mask"
    for m in masks:
        assert m.mask.shape == (64, 96) and m.mask.dtype == bool
        ys, xs = np.nonzero(m.mask)
        x, y, bw, bh = m.bbox_xywh
        assert (x, y) == (xs.min(), ys.min()) and (bw, bh) == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    assert [m.score for m in masks] == sorted((m.score for m in masks), reverse=True)


def test_generator_at_encoder_resolution(seg):
    """full_resolution=False decodes the grid at the encoder input size (256 px here) and upsamples:
    masks come back at the image size, match SAM's full-size masks for the same point, and the
    predictor is left intact for later prompts."""
    image = synthetic_rgb(300, 500, seed=14)
    seg.set_image(image)
    gen = SamMaskGenerator(seg, points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                           box_nms_thresh=1.0, full_resolution=False)
    with count_forwards(seg.model.image_encoder) as calls:
        masks = gen.generate(image)
    assert calls[0] == 0 and masks
    assert all(m.mask.shape == (300, 500) for m in masks)
    assert seg.predictor.original_size == (300, 500)
    # same decoding as SAM's own full-size generation: the same masks (scores equal, shapes close;
    # random weights give ragged edges that the low-res path smooths)
    full = SamMaskGenerator(seg, points_per_side=3, pred_iou_thresh=0.0, stability_score_thresh=0.0,
                            box_nms_thresh=1.0, full_resolution=True).generate(image)
    assert len(full) == len(masks) == 27
    np.testing.assert_allclose([m.score for m in masks], [m.score for m in full], atol=1e-5)
    ious = [(a.mask & b.mask).sum() / (a.mask | b.mask).sum() for a, b in zip(masks, full)]
    assert min(ious) > 0.75 and np.mean(ious) > 0.85


def test_generator_of_new_image_encodes_it(seg):
    gen = tiny_mask_generator(seg, points_per_side=2)
    image = synthetic_rgb(40, 70, seed=13)
    before = seg.encoder_calls
    gen.generate(image)
    gen.generate(image)
    assert seg.encoder_calls - before == 1 and gen.encoder_calls == seg.encoder_calls


@pytest.mark.parametrize("bad, match", [
    (np.zeros((20, 30), np.uint8), "RGB image of shape"),
    (np.zeros((20, 30, 4), np.uint8), "RGB image of shape"),
    (np.zeros((20, 30, 3), np.uint16), "dtype uint8"),
    (np.zeros((20, 30, 3), np.float32), "dtype uint8"),
    (np.zeros((1, 1, 3), np.uint8), "too small"),
])
def test_bad_images_raise_input_error(seg, bad, match):
    with pytest.raises(InputError, match=match):
        seg.set_image(bad)


def test_bad_prompts_raise_input_error(seg, tiny_image):
    fresh = SamSegmenter(tiny_sam(seed=4), device="cpu", dtype=None)
    with pytest.raises(InputError, match="no image is set"):
        fresh.predict(box=np.array([0, 0, 5, 5]))
    seg.set_image(tiny_image)
    with pytest.raises(InputError, match="at least one prompt"):
        seg.predict()
    with pytest.raises(InputError, match="outside"):
        seg.predict(box=np.array([500, 500, 600, 600]))
    with pytest.raises(InputError, match="finite"):
        seg.predict(box=np.array([np.nan, 0, 5, 5]))
    with pytest.raises(InputError, match="x1 >= x0"):
        seg.predict_boxes(np.array([[50, 0, 10, 5]]))
    with pytest.raises(InputError, match="outside"):
        seg.predict(points=np.array([[10.0, 500.0]]), point_labels=np.array([1]))
    with pytest.raises(InputError, match="use predict_boxes"):
        seg.predict(box=np.array([[0, 0, 5, 5], [1, 1, 6, 6]]))
    edge = seg.predict(points=np.array([[200.0, 120.0]]), point_labels=np.array([1]))  # (W, H) itself is fine
    assert edge.masks.shape == (1, 120, 200)
    with pytest.raises(InputError, match="labels"):
        seg.predict(points=np.array([[1.0, 2.0]]), point_labels=np.array([2]))
    with pytest.raises(InputError, match="mask_input"):
        seg.predict(box=np.array([0, 0, 5, 5]), mask_input=np.zeros((1, 256, 256)))


def test_from_checkpoint_loads_the_state(tmp_path, monkeypatch):
    reference = tiny_sam(seed=5)
    path = tmp_path / "tiny_sam.pth"
    torch.save(reference.state_dict(), path)
    monkeypatch.setitem(sam_module.sam_model_registry, "vit_b", lambda checkpoint=None: tiny_sam(seed=6))
    loaded = SamSegmenter.from_checkpoint(path, arch="vit_b", device="cpu")
    assert loaded.name == "sam-vit-b"
    # not the registry's file (another size): the identity is the checkpoint file's own sha256
    assert loaded.identity.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    for (name, p), (_, q) in zip(reference.state_dict().items(), loaded.model.state_dict().items()):
        assert torch.equal(p, q), name
    with pytest.raises(InputError, match="unknown SAM architecture"):
        SamSegmenter.from_checkpoint(path, arch="vit_x")
    with pytest.raises(InputError, match="weights fetch"):
        SamSegmenter.from_checkpoint(tmp_path / "missing.pth")


def test_batched_encode_and_use_embedding_equal_set_image(seg, tiny_image):
    """Embeddings from one batched encoder pass, used on another adapter sharing the weights,
    decode exactly as set_image does; the embedding records sizes and pixels."""
    other = seg.clone_for_prefetch()
    seg.set_image(tiny_image)
    reference = seg.predict(box=np.array([10, 10, 120, 100]))
    square = synthetic_rgb(64, 64, seed=20)
    first, second = other.encode_batch([tiny_image, square])
    assert other.encoder_calls == 2 and other.embedding is None  # encode changes nothing held
    assert first.input_hw == (120, 200) and first.resized_hw == (154, 256)
    assert second.input_hw == (64, 64) and second.resized_hw == (256, 256)
    assert tuple(first.features.shape) == (1, 32, 16, 16)
    other.use_embedding(first)
    assert other.is_set(tiny_image) and not other.is_set(square)
    other.set_image(tiny_image)  # already held: no encoder call
    assert other.encoder_calls == 2
    got = other.predict(box=np.array([10, 10, 120, 100]))
    np.testing.assert_allclose(got.low_res_logits, reference.low_res_logits, atol=1e-4)
