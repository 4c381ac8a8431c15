"""open_clip adapter and CLIP Surgery: exact features with surgery off, map shape, one
normalisation, heatmap points mapped with the true image size, crops, local-dir loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.tiny_models import count_forwards, synthetic_rgb
from text2seg_widgets.errors import InputError, MissingWeightsError, UnknownModelError
from text2seg_widgets.models.clip import OpenClipScorer, feature_surgery, heatmap_points, surgery_forward
from text2seg_widgets.models.protocols import ClipScorer
from text2seg_widgets.models.tiny import tiny_clip, write_tiny_clip_dir


@pytest.fixture(scope="module")
def clip() -> OpenClipScorer:
    return tiny_clip(seed=7)


def test_protocol(tiny_models):
    assert isinstance(tiny_models.clip, ClipScorer)


def test_surgery_off_reproduces_open_clip_features(clip):
    x = clip.pixels(synthetic_rgb(80, 130, seed=20))
    with torch.no_grad():
        expected = clip.model.encode_image(x)
        pooled, tokens = surgery_forward(clip.model.visual, x, depth=0)
        pooled_on, _ = surgery_forward(clip.model.visual, x, depth=2)
    assert tokens is None
    torch.testing.assert_close(pooled, expected, rtol=0, atol=0)
    # the original path is open_clip's own blocks, untouched, also with surgery on
    torch.testing.assert_close(pooled_on, expected, rtol=0, atol=0)


def test_surgery_on_changes_the_patch_tokens(clip):
    x = clip.pixels(synthetic_rgb(80, 130, seed=20))
    with torch.no_grad():
        _, vv1 = surgery_forward(clip.model.visual, x, depth=1)
        _, vv2 = surgery_forward(clip.model.visual, x, depth=2)
        out = clip.model.visual._embeds(x)
        for block in clip.model.visual.transformer.resblocks:
            out = block(out)
        plain = clip.model.visual.ln_post(out) @ clip.model.visual.proj
    gh, gw = clip.grid_size
    assert vv1.shape == vv2.shape == (1, 1 + gh * gw, 32)
    torch.testing.assert_close(vv1[:, 0], plain[:, 0])  # class token from the original path
    assert not torch.allclose(vv1[:, 1:], plain[:, 1:])
    assert not torch.allclose(vv1, vv2)


def test_similarity_map_shape_and_finite(clip, tiny_image):
    text = clip.encode_text(["building", "road", "water"])
    sim = clip.similarity_map(tiny_image, text)
    assert sim.shape == (3, 8, 8) == (3, *clip.grid_size)
    assert np.isfinite(sim).all() and sim.dtype == np.float32
    # feature surgery removes the mean over classes: the weighted products sum to zero per patch
    assert np.abs(sim.sum(axis=0)).max() < 1e-4
    one = clip.similarity_map(tiny_image, text[:1])  # single class: the empty prompt is the redundant feature
    assert one.shape == (1, 8, 8) and np.isfinite(one).all() and np.ptp(one) > 0


def test_similarity_map_encodes_the_image_once(clip, tiny_image):
    text = clip.encode_text(["building", "road"])
    with count_forwards(clip.model.visual.conv1) as calls:
        clip.similarity_map(tiny_image, text)
    assert calls[0] == 1


def test_feature_surgery_matches_definition():
    rng = np.random.default_rng(0)
    tokens = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(5, 4)), dtype=torch.float32), dim=-1)
    text = torch.nn.functional.normalize(torch.tensor(rng.normal(size=(2, 4)), dtype=torch.float32), dim=-1)
    prob = torch.softmax(2 * (tokens[0] @ text.T), dim=-1)
    w = prob / prob.mean()
    expected = torch.zeros(4, 2)
    for n in range(4):
        feats = torch.stack([tokens[n + 1] * text[c] * w[c] for c in range(2)])
        expected[n] = (feats - feats.mean(0)).sum(-1)
    torch.testing.assert_close(feature_surgery(tokens, text), expected)
    red = text.mean(0, keepdim=True)
    torch.testing.assert_close(feature_surgery(tokens, text, red), tokens[1:] @ (text - red).T)


def test_input_is_normalised_once(clip):
    mean = np.array(clip.mean)
    colour = np.round(mean * 255).astype(np.uint8)
    image = np.broadcast_to(colour, (50, 70, 3)).copy()
    px = clip.pixels(image)
    assert px.shape == (1, 3, 112, 112)
    # (x/255 - mean)/std == 0 up to rounding; a second normalisation would give -mean/std (about -1.7)
    assert px.abs().max().item() < 0.02


def test_heatmap_points_non_square_no_swap():
    sim = np.zeros((2, 4))
    sim[1, 3] = 5.0   # best cell: row 1, column 3
    sim[1, 2] = 4.0   # second best
    sim[0, 0] = -3.0  # worst
    points, labels = heatmap_points(sim, image_hw=(100, 400), n_pos=2, n_neg=1)
    # cells are 100 px wide (400 / 4) and 50 px high (100 / 2): centres at x = 350, 250, 50
    np.testing.assert_allclose(points, [[350.0, 75.0], [250.0, 75.0], [50.0, 25.0]])
    assert labels.tolist() == [1, 1, 0] and labels.dtype == np.int64
    pts, lab = heatmap_points(sim, (100, 400), n_pos=0, n_neg=0)
    assert pts.shape == (0, 2) and lab.shape == (0,)


@pytest.mark.parametrize("sim, kwargs, match", [
    (np.zeros((2, 2)), dict(n_pos=4, n_neg=1), "at most"),
    (np.array([[np.nan, 0.0]]), dict(n_pos=1, n_neg=0), "NaN"),
    (np.zeros((2, 2, 2)), dict(n_pos=1, n_neg=0), "2-D"),
])
def test_heatmap_points_bad_input(sim, kwargs, match):
    with pytest.raises(InputError, match=match):
        heatmap_points(sim, (10, 10), **kwargs)


def test_encode_text_and_crops(clip):
    text = clip.encode_text(["a building", "a road"])
    assert text.shape == (2, 32)
    np.testing.assert_allclose(np.linalg.norm(text, axis=1), 1.0, atol=1e-5)
    assert not np.allclose(text[0], text[1])
    crops = [synthetic_rgb(h, w, seed=s) for s, (h, w) in enumerate([(30, 50), (64, 20), (7, 9)])]
    with count_forwards(clip.model.visual.conv1) as calls:
        batched = clip.encode_crops(crops)
    assert calls[0] == 1 and batched.shape == (3, 32)
    singles = np.concatenate([clip.encode_crops([c]) for c in crops])
    np.testing.assert_allclose(batched, singles, atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(batched, axis=1), 1.0, atol=1e-5)
    assert clip.encode_crops([]).shape == (0, 32)
    with pytest.raises(InputError):
        clip.encode_text([])


def test_local_dir_loading_matches_the_saved_model(tmp_path, tiny_image):
    folder = write_tiny_clip_dir(tmp_path / "tiny-clip", seed=8)
    loaded = OpenClipScorer.from_name(f"local-dir:{folder}", device="cpu")
    reference = tiny_clip(seed=8)
    np.testing.assert_allclose(loaded.encode_text(["building"]), reference.encode_text(["building"]), atol=1e-6)
    np.testing.assert_allclose(loaded.similarity_map(tiny_image, reference.encode_text(["a", "b"])),
                               reference.similarity_map(tiny_image, reference.encode_text(["a", "b"])), atol=1e-5)


def test_unknown_names_fail_clearly(tmp_path):
    with pytest.raises(UnknownModelError, match="open_clip does not know"):
        OpenClipScorer.from_name("ViT-Nonexistent-99", device="cpu")
    with pytest.raises(InputError, match="not found"):
        OpenClipScorer.from_name(f"local-dir:{tmp_path / 'nowhere'}", device="cpu")
    # tests run with HF_HUB_OFFLINE=1: an uncached hub model fails fast with the way out
    with pytest.raises(MissingWeightsError, match="local-dir:"):
        OpenClipScorer.from_name("hf-hub:example-org/not-cached-clip", device="cpu")
