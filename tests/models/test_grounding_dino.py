"""Grounding DINO adapter (tiny random model): one forward per image for all phrases, boxes in
pixels of the original image, phrases mapped back to the given list, local-folder loading."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tiny_models import count_forwards
from text2seg_widgets.errors import InputError
from text2seg_widgets.models.grounding_dino import GroundingDinoDetector, caption_for, phrase_spans
from text2seg_widgets.models.protocols import Detections, TextBoxDetector
from text2seg_widgets.models.tiny import bert_vocab, tiny_grounding_dino

PHRASES = ["building", "red roof", "water"]


@pytest.fixture(scope="module")
def det() -> GroundingDinoDetector:
    return tiny_grounding_dino(seed=9)


def test_vocab_keeps_grounding_dino_ids():
    vocab = bert_vocab()
    assert [vocab[t] for t in ("[CLS]", "[SEP]", ".", "?", "[PAD]")] == [101, 102, 1012, 1029, 0]


def test_caption_and_spans(det):
    assert caption_for(["Building ", "red  roof.", "water"]) == "building. red roof. water."
    ids = det.processor.tokenizer(caption_for(PHRASES))["input_ids"]
    spans = phrase_spans(ids)
    assert len(spans) == 3
    decoded = [det.processor.tokenizer.decode([ids[i] for i in span]) for span in spans]
    assert decoded == PHRASES
    with pytest.raises(InputError, match="empty phrase"):
        caption_for(["building", " . "])


def test_detect_boxes_scores_phrases(det, tiny_image, tiny_models):
    assert isinstance(tiny_models.detector, TextBoxDetector)
    h, w = tiny_image.shape[:2]
    out = det.detect(tiny_image, PHRASES, box_threshold=0.0, text_threshold=0.0)
    assert isinstance(out, Detections) and len(out) == 20  # every query kept at zero thresholds
    assert out.boxes.shape == (20, 4) and out.scores.shape == (20,)
    assert np.all(out.boxes[:, [0, 2]] >= 0) and np.all(out.boxes[:, [0, 2]] <= w)
    assert np.all(out.boxes[:, [1, 3]] >= 0) and np.all(out.boxes[:, [1, 3]] <= h)
    assert np.all(out.boxes[:, 2] >= out.boxes[:, 0]) and np.all(out.boxes[:, 3] >= out.boxes[:, 1])
    assert set(out.phrases) <= set(PHRASES) and len(out.phrases) == 20
    assert np.all(np.diff(out.scores) <= 0)  # best first


def test_boxes_match_transformers_post_processing(det, tiny_image):
    """Reference: the processor's own post-processing with target_sizes=(H, W) on the same forward."""
    import torch

    h, w = tiny_image.shape[:2]
    inputs = det.processor(images=tiny_image, text=caption_for(PHRASES), return_tensors="pt")
    with torch.no_grad():
        outputs = det.model(**inputs)
    ref = det.processor.post_process_grounded_object_detection(
        outputs, inputs["input_ids"], threshold=0.0, text_threshold=0.0, target_sizes=[(h, w)])[0]
    order = torch.argsort(ref["scores"], descending=True)
    ref_boxes = ref["boxes"][order].numpy()
    ref_boxes[:, [0, 2]] = ref_boxes[:, [0, 2]].clip(0, w)
    ref_boxes[:, [1, 3]] = ref_boxes[:, [1, 3]].clip(0, h)
    out = det.detect(tiny_image, PHRASES, box_threshold=0.0, text_threshold=0.0)
    np.testing.assert_allclose(out.scores, ref["scores"][order].numpy(), atol=1e-5)
    np.testing.assert_allclose(out.boxes, ref_boxes, atol=1e-3)


def test_thresholds(det, tiny_image):
    assert (det.box_threshold, det.text_threshold) == (0.3, 0.25)
    assert GroundingDinoDetector(det.model, det.processor).box_threshold == 0.35
    assert GroundingDinoDetector(det.model, det.processor).text_threshold == 0.25
    none = det.detect(tiny_image, PHRASES, box_threshold=1.0)
    assert len(none) == 0 and none.boxes.shape == (0, 4) and none.phrases == []
    all_boxes = det.detect(tiny_image, PHRASES, box_threshold=0.0, text_threshold=0.0)
    some = det.detect(tiny_image, PHRASES, box_threshold=float(np.median(all_boxes.scores)), text_threshold=0.0)
    assert 0 < len(some) < len(all_boxes)
    assert np.all(some.scores > np.median(all_boxes.scores))


def test_one_forward_for_all_phrases(det, tiny_image):
    before = det.encoder_calls
    with count_forwards(det.model.model.backbone) as backbone, count_forwards(det.model) as model:
        det.detect(tiny_image, PHRASES + ["tree", "car"])
    assert backbone[0] == 1 and model[0] == 1
    assert det.encoder_calls - before == 1


def test_bad_input(det, tiny_image):
    with pytest.raises(InputError, match="non-empty list"):
        det.detect(tiny_image, [])
    with pytest.raises(InputError, match="non-empty list"):
        det.detect(tiny_image, "building")
    with pytest.raises(InputError, match="RGB"):
        det.detect(tiny_image[..., 0], PHRASES)
    with pytest.raises(InputError, match="at most 128"):  # the tiny model reads 128 tokens
        det.detect(tiny_image, [f"building number {i}" for i in range(60)])


def test_local_folder_round_trip(det, tiny_image, tmp_path):
    det.model.save_pretrained(tmp_path / "gd")
    det.processor.save_pretrained(tmp_path / "gd")
    loaded = GroundingDinoDetector.from_pretrained(tmp_path / "gd", device="cpu", box_threshold=0.0,
                                                   text_threshold=0.0)
    assert loaded.name == "gd"
    a = det.detect(tiny_image, PHRASES, box_threshold=0.0, text_threshold=0.0)
    b = loaded.detect(tiny_image, PHRASES)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
    assert a.phrases == b.phrases
    with pytest.raises(InputError, match="weights fetch grounding-dino-tiny"):
        GroundingDinoDetector.from_pretrained(tmp_path / "missing")
