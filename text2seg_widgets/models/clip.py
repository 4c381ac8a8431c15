"""CLIP through open_clip: text embeddings, crop scoring and the CLIP Surgery similarity map.

CLIP Surgery (Li et al., arXiv 2304.05653) makes CLIP's patch tokens usable as a dense
text-image similarity map with two changes, both implemented here without forking open_clip:

* **architecture surgery**: in the last ``surgery_depth`` residual blocks of the ViT image tower a
  second, parallel path accumulates *value-value* self-attention (``softmax(v v^T / sqrt(d)) v``,
  no MLP) computed from the same block inputs as the original path. The original path is run by
  open_clip's own blocks, untouched, so the pooled image feature is exactly open_clip's; the
  patch tokens of the v-v path give the map.
* **feature surgery**: the element-wise products of each patch feature with each class's text
  feature are re-weighted by the class-token probabilities and the mean over the classes (the
  redundant feature shared by all classes) is subtracted before summing. With a single class the
  redundant feature is that of the empty prompt ``""``, as the authors do.

The image for the map is resized (stretched) to the tower's input size and normalised exactly
once with the model's own mean/std (the original code normalised twice). Grid cells therefore
cover the whole image: cell (r, c) spans rows ``r*H/gh..(r+1)*H/gh`` and columns
``c*W/gw..(c+1)*W/gw`` of an H x W image; :func:`heatmap_points` uses that mapping.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from text2seg_widgets.errors import InputError, MissingWeightsError, UnknownModelError
from text2seg_widgets.models._validate import check_rgb
from text2seg_widgets.models.device import autocast, resolve_device, resolve_dtype

if TYPE_CHECKING:  # open_clip ships no type hints: these name the real classes for readers
    from open_clip.model import CLIP as OpenClipModel
    from open_clip.transformer import VisionTransformer

__all__ = ["OpenClipScorer", "heatmap_points", "surgery_forward", "feature_surgery"]

log = logging.getLogger(__name__)

_CROP_BATCH = 64


def _vv_attention(block: torch.nn.Module, h: torch.Tensor) -> torch.Tensor:
    """Value-value self-attention of an open_clip ``ResidualAttentionBlock`` on batch-first ``h``."""
    attn = block.attn
    if not isinstance(attn, torch.nn.MultiheadAttention) or attn.in_proj_weight is None:
        raise InputError("CLIP Surgery needs a ViT image tower with standard attention blocks "
                         f"(nn.MultiheadAttention); this model has {type(attn).__name__}. "
                         "Use a ViT-B/16-style open_clip model for the heatmap branch.")
    b, n, d = h.shape
    heads = attn.num_heads
    bias = attn.in_proj_bias[2 * d:] if attn.in_proj_bias is not None else None
    v = F.linear(h, attn.in_proj_weight[2 * d:], bias)
    v = v.view(b, n, heads, d // heads).transpose(1, 2)
    out = F.scaled_dot_product_attention(v, v, v)
    return attn.out_proj(out.transpose(1, 2).reshape(b, n, d))


def surgery_forward(visual: "VisionTransformer", x: torch.Tensor,
                    depth: int) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Run an open_clip ``VisionTransformer`` on normalised pixels ``x`` (B, 3, S, S).

    Returns ``(pooled, vv_tokens)``: ``pooled`` (B, E) is the original path's projected image
    feature (identical to ``visual(x)``); ``vv_tokens`` (B, 1 + gh*gw, E) are the projected tokens
    of the v-v path of the last ``depth`` blocks, with the class token taken from the original path
    (None when ``depth`` is 0)."""
    if getattr(visual, "attn_pool", None) is not None or not hasattr(visual, "_embeds"):
        raise InputError("CLIP Surgery needs an open_clip VisionTransformer without attentional pooling "
                         f"(got {type(visual).__name__}); use a ViT-B/16-style model for the heatmap branch")
    blocks = visual.transformer.resblocks
    start = len(blocks) - depth
    tokens = visual._embeds(x)
    batch_first = visual.transformer.batch_first
    seq = tokens if batch_first else tokens.transpose(0, 1)
    vv: torch.Tensor | None = None
    for i, block in enumerate(blocks):
        if i >= start:
            h = block.ln_1(seq if batch_first else seq.transpose(0, 1))
            res = block.ls_1(_vv_attention(block, h))
            vv = ((seq if batch_first else seq.transpose(0, 1)) if vv is None else vv) + res
        seq = block(seq)
    final = seq if batch_first else seq.transpose(0, 1)
    pooled, _ = visual._pool(final)
    if visual.proj is not None:
        pooled = pooled @ visual.proj
    if vv is None:
        return pooled, None
    vv = torch.cat([final[:, :1], vv[:, 1:]], dim=1)
    vv = visual.ln_post(vv)
    if visual.proj is not None:
        vv = vv @ visual.proj
    return pooled, vv


def feature_surgery(tokens: torch.Tensor, text: torch.Tensor,
                    redundant: torch.Tensor | None = None) -> torch.Tensor:
    """CLIP Surgery's feature surgery. ``tokens`` (1 + N, E) and ``text`` (C, E) L2-normalised;
    returns the (N, C) similarity of every patch to every class. With ``redundant`` (1, E) given the
    similarity is ``patch . (text - redundant)``; otherwise the class-weighted mean over the classes
    is the redundant feature."""
    patches = tokens[1:]
    if redundant is not None:
        return patches @ (text - redundant).t()
    prob = ((tokens[:1] @ text.t()) * 2).softmax(-1)  # (1, C): the class token's view of the classes
    weight = prob / prob.mean(-1, keepdim=True)
    feats = patches[:, None, :] * text[None, :, :] * weight.reshape(1, -1, 1)  # (N, C, E)
    feats = feats - feats.mean(1, keepdim=True)
    return feats.sum(-1)


def heatmap_points(sim_map_2d: np.ndarray, image_hw: tuple[int, int], n_pos: int = 3,
                   n_neg: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Point prompts from one class's (gh, gw) similarity map: the ``n_pos`` highest cells as
    positives (label 1), the ``n_neg`` lowest as negatives (label 0), each at its cell centre in
    pixels of the H x W image: ``x = (c + 0.5) * W / gw``, ``y = (r + 0.5) * H / gh``.

    Returns ``points`` (n_pos + n_neg, 2) float xy and ``labels`` (n_pos + n_neg,) int64."""
    sim = np.asarray(sim_map_2d, dtype=np.float64)
    if sim.ndim != 2:
        raise InputError(f"heatmap_points needs one class's 2-D map (gh, gw), got shape {sim.shape}")
    if not np.all(np.isfinite(sim)):
        raise InputError("the similarity map contains NaN or infinite values")
    if n_pos < 0 or n_neg < 0 or n_pos + n_neg > sim.size:
        raise InputError(f"n_pos={n_pos} and n_neg={n_neg} must be >= 0 and together at most the "
                         f"{sim.size} cells of the map")
    height, width = int(image_hw[0]), int(image_hw[1])
    gh, gw = sim.shape
    order = np.argsort(-sim.ravel(), kind="stable")
    cells = np.concatenate([order[:n_pos], order[::-1][:n_neg]]).astype(np.int64)
    rows, cols = np.divmod(cells, gw)
    points = np.stack([(cols + 0.5) * width / gw, (rows + 0.5) * height / gh], axis=1).astype(np.float64)
    labels = np.concatenate([np.ones(n_pos, np.int64), np.zeros(n_neg, np.int64)])
    return points.reshape(-1, 2), labels


def _find_normalize(preprocess: Callable) -> tuple[tuple[float, ...], tuple[float, ...]]:
    for t in getattr(preprocess, "transforms", []):
        if hasattr(t, "mean") and hasattr(t, "std"):
            return tuple(float(v) for v in t.mean), tuple(float(v) for v in t.std)
    raise InputError("the CLIP preprocess has no Normalize step; pass an open_clip preprocess transform")


class OpenClipScorer:
    """An open_clip model behind the ``ClipScorer`` protocol.

    ``encoder_calls`` counts forward passes of the image tower (one per :meth:`similarity_map`,
    one per batch of up to 64 crops in :meth:`encode_crops`); ``text_calls`` those of the text tower.
    ``surgery_depth`` is the number of final blocks given the v-v path (default: 6, as the authors
    use for ViT-B, or all blocks of a shallower tower)."""

    def __init__(self, model: "OpenClipModel", preprocess: Callable, tokenizer: Callable, name: str = "clip",
                 device: str | torch.device = "auto", dtype: str | torch.dtype | None = "auto",
                 surgery_depth: int | None = None) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model: OpenClipModel = model.to(self.device).eval()
        self.preprocess = preprocess
        self.tokenizer = tokenizer
        self.name = name
        self.encoder_calls = 0
        self.text_calls = 0
        n_blocks = len(getattr(getattr(model.visual, "transformer", None), "resblocks", []))
        self.surgery_depth = min(6, n_blocks) if surgery_depth is None else int(surgery_depth)
        self.mean, self.std = _find_normalize(preprocess)
        self._empty_text: torch.Tensor | None = None

    @classmethod
    def from_name(cls, model_name: str, pretrained: str | Path | None = None, device: str | torch.device = "auto",
                  dtype: str | torch.dtype | None = "auto", name: str | None = None) -> "OpenClipScorer":
        """Any open_clip model: a plain name (``"ViT-B-16"``) with ``pretrained`` a checkpoint path
        (or None for random weights), or a ``hf-hub:org/repo`` / ``local-dir:/path`` source."""
        import open_clip

        dev = resolve_device(device)
        pre = str(pretrained) if pretrained is not None else None
        try:
            model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=pre, device=dev)
            tokenizer = open_clip.get_tokenizer(model_name)
        except (FileNotFoundError, ValueError) as exc:
            raise InputError(f"cannot load the open_clip model {model_name!r}: {exc}") from exc
        except RuntimeError as exc:
            if model_name.startswith("hf-hub:"):
                raise MissingWeightsError(
                    f"cannot load {model_name}: it is not in the local Hugging Face cache and the hub is not "
                    f"reachable ({exc}). On a connected machine load it once (or download the repo) and "
                    "use 'local-dir:/path/to/folder' here") from exc
            if "not found" in str(exc).lower():
                raise UnknownModelError(f"open_clip does not know the model {model_name!r}; see "
                                        "open_clip.list_models() or use hf-hub:/local-dir: sources") from exc
            raise
        if pre is None and ":" not in model_name:
            log.warning("open_clip model %s built with random weights (no pretrained checkpoint given)", model_name)
        return cls(model, preprocess, tokenizer, name=name or model_name, device=dev, dtype=dtype)

    @property
    def image_size(self) -> tuple[int, int]:
        size = self.model.visual.image_size
        return (int(size), int(size)) if isinstance(size, int) else (int(size[0]), int(size[1]))

    @property
    def grid_size(self) -> tuple[int, int]:
        gh, gw = self.model.visual.grid_size
        return int(gh), int(gw)

    def _text(self, prompts: Sequence[str]) -> torch.Tensor:
        tokens = self.tokenizer(list(prompts)).to(self.device)
        with autocast(self.device, self.dtype):
            feats = self.model.encode_text(tokens)
        self.text_calls += 1
        return F.normalize(feats.float(), dim=-1)

    def encode_text(self, prompts: Sequence[str]) -> np.ndarray:
        """(N, D) L2-normalised text features, one tokenizer + text-tower pass for all prompts."""
        if isinstance(prompts, str) or len(prompts) == 0:
            raise InputError("encode_text needs a non-empty list of prompts")
        return self._text(prompts).cpu().numpy()

    def encode_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) L2-normalised image features of (h, w, 3) uint8 crops, through the model's own
        preprocess, in batches of up to 64."""
        if len(crops) == 0:
            return np.zeros((0, self.model.visual.output_dim), np.float32)
        out = []
        for start in range(0, len(crops), _CROP_BATCH):
            batch = [self.preprocess(Image.fromarray(check_rgb(c, "CLIP crop"))) for c in crops[start:start + _CROP_BATCH]]
            pixels = torch.stack(batch).to(self.device)
            with autocast(self.device, self.dtype):
                feats = self.model.encode_image(pixels)
            self.encoder_calls += 1
            out.append(F.normalize(feats.float(), dim=-1).cpu().numpy())
        return np.concatenate(out)

    def pixels(self, image: np.ndarray) -> torch.Tensor:
        """(1, 3, S, S) input of the map: the whole image stretched to the tower's size (bicubic),
        scaled to 0..1 and normalised ONCE with the model's mean and std."""
        check_rgb(image, "CLIP")
        t = torch.from_numpy(np.require(image, requirements=['C', 'W'])).permute(2, 0, 1)[None].float().div_(255.0)
        t = F.interpolate(t, size=self.image_size, mode="bicubic", align_corners=False).clamp_(0.0, 1.0)
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        return ((t - mean) / std).to(self.device)

    def similarity_map(self, image: np.ndarray, text_features: np.ndarray) -> np.ndarray:
        """(C, gh, gw) CLIP Surgery similarity of each patch to each of the C text features
        (raw feature-surgery scores, higher = more similar; compare within a class's map)."""
        text = torch.as_tensor(np.asarray(text_features, dtype=np.float32), device=self.device)
        if text.ndim != 2 or text.shape[0] == 0:
            raise InputError(f"text_features must be (C, D) with C >= 1, got shape {tuple(text.shape)}")
        if self.surgery_depth < 1:
            raise InputError("similarity_map needs surgery_depth >= 1")
        redundant = None
        if text.shape[0] == 1:
            if self._empty_text is None:
                self._empty_text = self._text([""])
            redundant = self._empty_text
        with autocast(self.device, self.dtype):
            _, tokens = surgery_forward(self.model.visual, self.pixels(image), self.surgery_depth)
        self.encoder_calls += 1
        assert tokens is not None
        with torch.inference_mode():
            tokens = F.normalize(tokens[0].float(), dim=-1)
            sim = feature_surgery(tokens, F.normalize(text.float(), dim=-1), redundant)
        gh, gw = self.grid_size
        if sim.shape[0] != gh * gw:
            raise InputError(f"the image tower returned {sim.shape[0]} patch tokens, expected {gh}x{gw}")
        return sim.t().reshape(-1, gh, gw).cpu().numpy().astype(np.float32)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "image_size": self.image_size, "grid": self.grid_size,
                "surgery_depth": self.surgery_depth}
