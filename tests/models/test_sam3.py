"""SAM 3 adapter (tiny random model): masks at the image size, one vision encoding for many
phrases, results per phrase in order, local-folder loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_models import count_forwards, synthetic_rgb
from text2seg_widgets.errors import InputError
from text2seg_widgets.models.protocols import ConceptResult, ConceptSegmenter
from text2seg_widgets.models.sam3 import Sam3ConceptSegmenter
from text2seg_widgets.models.tiny import clip_bpe_tokenizer, tiny_sam3


@pytest.fixture(scope="module")
def sam3() -> Sam3ConceptSegmenter:
    return tiny_sam3(seed=11)


def test_clip_bpe_tokenizer_is_real():
    tok = clip_bpe_tokenizer()
    ids = tok("a red building")["input_ids"]
    assert ids == [49406, 320, 736, 2307, 49407]  # CLIP's own ids, not one id for every word


def test_masks_at_image_size(sam3, tiny_image, tiny_models):
    assert isinstance(tiny_models.concept, ConceptSegmenter)
    h, w = tiny_image.shape[:2]
    results = sam3.segment(tiny_image, ["building", "road"], threshold=0.0)
    assert [r.phrase for r in results] == ["building", "road"]
    for r in results:
        assert isinstance(r, ConceptResult)
        assert r.masks.shape == (10, h, w) and r.masks.dtype == bool
        assert r.scores.shape == (10,) and r.boxes.shape == (10, 4)
        assert np.all((r.scores >= 0) & (r.scores <= 1))
    # different phrases give different scores (the text reaches the decoder)
    assert not np.allclose(results[0].scores, results[1].scores)


def test_threshold_filters(sam3, tiny_image):
    h, w = tiny_image.shape[:2]
    (none,) = sam3.segment(tiny_image, ["building"], threshold=1.0)
    assert none.masks.shape == (0, h, w) and none.scores.shape == (0,) and none.boxes.shape == (0, 4)
    (allr,) = sam3.segment(tiny_image, ["building"], threshold=0.0)
    cut = float(np.median(allr.scores))
    (some,) = sam3.segment(tiny_image, ["building"], threshold=cut)
    assert np.all(some.scores > cut) and len(some.scores) < len(allr.scores)


def test_vision_encoded_once_for_all_phrases(sam3):
    image = synthetic_rgb(70, 90, seed=30)
    before = sam3.encoder_calls
    with count_forwards(sam3.model.vision_encoder) as calls:
        sam3.segment(image, ["building", "road", "water", "tree"])
        sam3.segment(image.copy(), ["car"])
        assert calls[0] == 1
        sam3.segment(synthetic_rgb(70, 90, seed=31), ["car"])
        assert calls[0] == 2
    assert sam3.encoder_calls - before == 2


def test_bad_input(sam3, tiny_image):
    with pytest.raises(InputError, match="non-empty list"):
        sam3.segment(tiny_image, [])
    with pytest.raises(InputError, match="empty phrase"):
        sam3.segment(tiny_image, ["  "])
    with pytest.raises(InputError, match="dtype uint8"):
        sam3.segment(tiny_image.astype(np.float32), ["building"])


def test_local_folder_round_trip(sam3, tiny_image, tmp_path):
    sam3.model.save_pretrained(tmp_path / "sam3")
    sam3.processor.save_pretrained(tmp_path / "sam3")
    loaded = Sam3ConceptSegmenter.from_pretrained(tmp_path / "sam3", device="cpu")
    a = sam3.segment(tiny_image, ["building"], threshold=0.0)[0]
    b = loaded.segment(tiny_image, ["building"], threshold=0.0)[0]
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    assert (a.masks != b.masks).mean() < 1e-3
    with pytest.raises(InputError, match="weights fetch sam3"):
        Sam3ConceptSegmenter.from_pretrained(tmp_path / "missing")


# -- dense scenes: batches of phrases, caps, out-of-memory fallbacks ------------------------------
PHRASES = ["building", "road", "water"]


def _fresh(**settings) -> Sam3ConceptSegmenter:
    seg = tiny_sam3(seed=11)
    for key, value in settings.items():
        setattr(seg, key, value)
    return seg


def _same(a: list[ConceptResult], b: list[ConceptResult]) -> None:
    assert [r.phrase for r in a] == [r.phrase for r in b]
    for x, y in zip(a, b):
        np.testing.assert_allclose(x.scores, y.scores, atol=1e-6)
        np.testing.assert_array_equal(x.masks, y.masks)
        np.testing.assert_allclose(x.boxes, y.boxes, atol=1e-4)


def _oom_once(monkeypatch, seg: Sam3ConceptSegmenter, times: int = 1) -> list[int]:
    """Make the model's forward raise torch.OutOfMemoryError on its first ``times`` calls."""
    calls = [0]
    forward = seg.model.forward

    def flaky(*args, **kwargs):
        calls[0] += 1
        if calls[0] <= times:
            raise torch.OutOfMemoryError("CUDA out of memory (injected by the test)")
        return forward(*args, **kwargs)

    monkeypatch.setattr(seg.model, "forward", flaky)
    return calls


def test_phrase_batches_give_the_same_results_as_one_at_a_time():
    image = synthetic_rgb(70, 90, seed=30)
    one = _fresh(phrases_per_batch=1).segment(image, PHRASES, threshold=0.0)
    _same(_fresh(phrases_per_batch=2).segment(image, PHRASES, threshold=0.0), one)
    _same(_fresh(phrases_per_batch=4).segment(image, PHRASES, threshold=0.0), one)
    assert [len(r.scores) for r in one] == [10, 10, 10]  # the tiny model's 10 queries, threshold 0


def test_caps_on_queries_and_detections():
    image = synthetic_rgb(70, 90, seed=30)
    full = _fresh(max_detections=None).segment(image, PHRASES, threshold=0.0)
    capped = _fresh(max_queries=3, max_detections=None).segment(image, PHRASES, threshold=0.0)
    for a, b in zip(capped, full):
        assert len(a.scores) == 3
        np.testing.assert_allclose(np.sort(a.scores), np.sort(b.scores)[-3:], atol=1e-6)
    five = _fresh(max_detections=5).segment(image, PHRASES, threshold=0.0)
    kept = np.sort(np.concatenate([r.scores for r in five]))
    assert len(kept) == 5 and sum(r.masks.shape[0] for r in five) == 5
    np.testing.assert_allclose(kept, np.sort(np.concatenate([r.scores for r in full]))[-5:], atol=1e-6)
    with pytest.raises(InputError, match="max_queries"):
        Sam3ConceptSegmenter(tiny_sam3().model, tiny_sam3().processor, device="cpu", max_queries=0)


def test_out_of_memory_halves_the_phrase_batch(monkeypatch, caplog):
    image = synthetic_rgb(70, 90, seed=30)
    expected = _fresh(phrases_per_batch=1).segment(image, PHRASES, threshold=0.0)
    seg = _fresh(phrases_per_batch=4)
    calls = _oom_once(monkeypatch, seg)
    with caplog.at_level("WARNING", logger="text2seg_widgets.models.sam3"):
        got = seg.segment(image, PHRASES, threshold=0.0)
    _same(got, expected)
    assert seg.phrases_per_batch == 2 and seg.encoder_calls == 1
    assert calls[0] == 1 + 2  # the failed batch of 3, then batches of 2 and 1
    assert "retrying with 2 phrases per batch" in caplog.text


def test_out_of_memory_with_one_phrase_halves_the_tile(monkeypatch, caplog):
    image = synthetic_rgb(140, 180, seed=32)
    h, w = image.shape[:2]
    seg = _fresh(phrases_per_batch=1, max_detections=None)
    _oom_once(monkeypatch, seg)
    with caplog.at_level("WARNING", logger="text2seg_widgets.models.sam3"):
        got = seg.segment(image, ["building", "road"], threshold=0.0)
    assert "two 90x140 halves" in caplog.text
    assert seg.encoder_calls == 1 + 2  # the whole tile (before the error), then each half
    left = _fresh(max_detections=None).segment(np.ascontiguousarray(image[:, :90]), ["building", "road"], threshold=0.0)
    right = _fresh(max_detections=None).segment(np.ascontiguousarray(image[:, 90:]), ["building", "road"], threshold=0.0)
    for g, a, b in zip(got, left, right):
        assert g.masks.shape == (20, h, w)
        np.testing.assert_array_equal(g.masks[:10, :, :90], a.masks)
        assert not g.masks[:10, :, 90:].any() and not g.masks[10:, :, :90].any()
        np.testing.assert_array_equal(g.masks[10:, :, 90:], b.masks)
        np.testing.assert_allclose(g.boxes[10:], b.boxes + [90, 0, 90, 0], atol=1e-4)


def test_out_of_memory_on_a_small_tile_is_raised_with_advice(monkeypatch):
    seg = _fresh(phrases_per_batch=1)
    _oom_once(monkeypatch, seg, times=100)
    with pytest.raises(torch.OutOfMemoryError, match="smaller tile size or fewer phrases"):
        seg.segment(synthetic_rgb(100, 120, seed=33), ["building"], threshold=0.0)
