"""Embeddings as values: identity (weights sha256 + preprocessing), encode / use_embedding on the
SAM and LiteMedSAM adapters, refusal of another model's embedding, clones for prefetching."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tests.tiny_models import count_forwards, synthetic_rgb
from text2seg_widgets.errors import InputError
from text2seg_widgets.models.embedding import Embedding, ModelIdentity, image_digest, state_dict_sha256
from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
from text2seg_widgets.models.sam import SamSegmenter
from text2seg_widgets.models.tiny import tiny_sam


@pytest.fixture(scope="module")
def lite() -> LiteMedSamSegmenter:
    return LiteMedSamSegmenter.from_checkpoint(device="cpu")


def test_identity_of_random_weights_is_the_state_dict_digest():
    a = SamSegmenter(tiny_sam(seed=1), name="a", device="cpu", dtype=None)
    b = SamSegmenter(tiny_sam(seed=1), name="b", device="cpu", dtype=None)
    c = SamSegmenter(tiny_sam(seed=2), name="a", device="cpu", dtype=None)
    assert a.identity.weights_sha256 == b.identity.weights_sha256 == state_dict_sha256(tiny_sam(seed=1))
    assert len(a.identity.weights_sha256) == 64
    assert a.identity.key == b.identity.key  # the name is not part of what must match
    assert c.identity.weights_sha256 != a.identity.weights_sha256
    explicit = SamSegmenter(tiny_sam(seed=1), device="cpu", dtype=None, weights_sha256="f" * 64)
    assert explicit.identity.weights_sha256 == "f" * 64
    assert a.identity.preprocessing == ("segment_anything ResizeLongestSide(256) "
                                        "mean=123.675,116.28,103.53 std=58.395,57.12,57.375 pad")


def test_embedding_records_what_makes_it_valid():
    seg = SamSegmenter(tiny_sam(seed=1), name="tiny", device="cpu", dtype=None)
    image = synthetic_rgb(90, 40, seed=3)
    emb = seg.encode(image)
    assert isinstance(emb, Embedding)
    assert (emb.model, emb.weights_sha256, emb.preprocessing) == (
        "tiny", seg.identity.weights_sha256, seg.identity.preprocessing)
    assert emb.input_hw == (90, 40) and emb.resized_hw == (256, 114)
    assert emb.image_digest == image_digest(image) and emb.matches(image.copy())
    assert not emb.matches(synthetic_rgb(90, 40, seed=4))
    assert emb.nbytes == 32 * 16 * 16 * 4
    with pytest.raises(AttributeError):
        emb.model = "other"  # frozen
    with pytest.raises(InputError, match=r"shape \(1, C, h, w\)"):
        emb.with_features(torch.zeros(32, 16, 16))


@pytest.mark.parametrize("make_other, match", [
    (lambda: SamSegmenter(tiny_sam(seed=2), name="other", device="cpu", dtype=None), "the weights differ"),
    (lambda: SamSegmenter(tiny_sam(seed=1, img_size=128), name="small", device="cpu", dtype=None),
     "differ"),
])
def test_use_embedding_refuses_another_model(make_other, match):
    seg = SamSegmenter(tiny_sam(seed=1), name="tiny", device="cpu", dtype=None)
    emb = seg.encode(synthetic_rgb(64, 64, seed=5))
    other = make_other()
    with pytest.raises(InputError, match=match):
        other.use_embedding(emb)
    assert other.embedding is None


def test_use_embedding_refuses_wrong_shape_and_non_embeddings():
    seg = SamSegmenter(tiny_sam(seed=1), name="tiny", device="cpu", dtype=None)
    emb = seg.encode(synthetic_rgb(64, 64, seed=5))
    with pytest.raises(InputError, match="decodes"):
        seg.use_embedding(emb.with_features(torch.zeros(1, 32, 8, 8)))
    with pytest.raises(InputError, match="expected an Embedding"):
        seg.use_embedding(emb.features)  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"resized to \(256, 200\).*\(256, 256\)"):
        seg.use_embedding(dataclasses.replace(emb, resized_hw=(256, 200)))
    assert seg.embedding is None


def test_litemedsam_refuses_inconsistent_sizes(lite):
    emb = lite.encode(synthetic_rgb(100, 300, seed=8))
    assert emb.resized_hw == (85, 256)
    with pytest.raises(InputError, match=r"resized to \(85, 256\), but LiteMedSAM resizes it to \(256, 85\)"):
        lite.use_embedding(dataclasses.replace(emb, input_hw=(300, 100)))


def test_sam_embedding_refused_by_litemedsam(lite):
    seg = SamSegmenter(tiny_sam(seed=1), name="tiny", device="cpu", dtype=None)
    emb = seg.encode(synthetic_rgb(64, 64, seed=5))
    with pytest.raises(InputError, match="litemedsam"):
        lite.use_embedding(emb)


def test_set_image_is_encode_plus_use_with_same_image_no_op(lite, rs_samples):
    from PIL import Image

    image = np.asarray(Image.open(rs_samples / "loveda" / "images" / "0.png").convert("RGB"))[:300, :500].copy()
    lite.reset_image()
    with count_forwards(lite.model.image_encoder) as calls:
        emb = lite.encode(image)
        assert lite.embedding is None and calls[0] == 1
        lite.set_image(image)
        lite.set_image(image.copy())
        assert calls[0] == 2
        lite.use_embedding(emb)  # an equal embedding from elsewhere
        lite.set_image(image)
        assert calls[0] == 2
    assert lite.embedding is emb and lite.image_hw == (300, 500)


def test_lite_encode_batch_equals_one_by_one(lite, rs_samples):
    from PIL import Image

    full = np.asarray(Image.open(rs_samples / "loveda" / "images" / "1.png").convert("RGB"))
    a, b = np.ascontiguousarray(full[:256, :256]), np.ascontiguousarray(full[300:700, 100:300])
    batch = lite.encode_batch([a, b])
    for one, image in zip(batch, (a, b)):
        single = lite.encode(image)
        torch.testing.assert_close(one.features, single.features, atol=2e-4, rtol=1e-4)
        assert one.resized_hw == single.resized_hw
    assert batch[1].resized_hw == (256, 128)


@pytest.mark.parametrize("kind", ["sam", "litemedsam"])
def test_clone_for_prefetch_shares_weights_not_the_image(kind, lite):
    seg = SamSegmenter(tiny_sam(seed=1), name="tiny", device="cpu", dtype=None) if kind == "sam" else lite
    image, other_image = synthetic_rgb(64, 80, seed=6), synthetic_rgb(64, 80, seed=7)
    seg.set_image(image)
    clone = seg.clone_for_prefetch()
    assert type(clone) is type(seg) and clone.model is seg.model
    assert clone.identity == seg.identity and clone.encoder_calls == 0 and clone.embedding is None
    clone.set_image(other_image)
    assert seg.is_set(image) and clone.is_set(other_image)
    seg.use_embedding(clone.embedding)  # a clone's embedding is valid on the original
    assert seg.is_set(other_image)


def test_model_identity_key():
    ident = ModelIdentity("x", "a" * 64, "prep")
    assert ident.key == ("a" * 64, "prep")
    assert ident == ModelIdentity("x", "a" * 64, "prep")
