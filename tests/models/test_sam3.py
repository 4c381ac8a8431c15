"""SAM 3 adapter (tiny random model): masks at the image size, one vision encoding for many
phrases, results per phrase in order, local-folder loading."""

from __future__ import annotations

import numpy as np
import pytest

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
