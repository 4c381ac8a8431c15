"""A fast automatic mask generator: SAM's point-grid recipe, with the work done at low resolution.

segment-anything's :class:`~segment_anything.SamAutomaticMaskGenerator` upsamples every decoded
mask (3 per grid point, 3,072 for a 32 x 32 grid) to full resolution before it filters them,
computes stability scores and boxes at full resolution, and run-length-encodes every mask. On a
2-core CPU that is ~18 minutes per 1024 px tile with SAM ViT-B. :class:`FastMaskGenerator`
gives the same masks (tested: every reference mask has a fast mask with IoU >= 0.9 and vice
versa) by doing the same steps in a cheaper order:

1. the grid is decoded in batches against the ONE cached image embedding (the segmenter's: an
   image that the detector or heatmap branch already encoded costs no encoder call);
2. masks are filtered by predicted IoU and by the stability score of their **low-resolution**
   logits (256 x 256 for SAM, the decoder's own output); the few whose low-res score lies within
   :data:`STABILITY_MARGIN` of the threshold are scored at full resolution, as the reference does;
3. duplicates are removed before any upsampling: box NMS on boxes of the low-res masks (as
   SAM does at full resolution), then greedy mask-IoU de-duplication (``mask_dedupe_iou``) on
   low-res masks in one image-wide canvas (this also removes duplicates across crop layers);
4. only the survivors are upsampled (the model's own bilinear post-processing, then the
   threshold), so each output mask is exactly the full-resolution mask SAM would have produced
   for that prompt.

Prompts: a point grid (``prompt="points"``, SAM) or a grid of boxes (``prompt="boxes"``; box-only
models such as LiteMedSAM): squares of side ``box_sizes`` x the crop's longer side centred on the
grid points, clipped to the crop. ``prompt="auto"`` picks points when the segmenter takes them.

Crop layers (``crop_n_layers``) follow SAM: layer i splits the image into 2^i x 2^i overlapping
crops, each encoded separately through the segmenter's ``encode`` (its cached whole-image embedding is
left untouched) with a grid ``points_per_side / crop_n_points_downscale_factor^i``; masks touching
a crop edge that is not an image edge are dropped and masks from smaller crops win cross-crop NMS.

Defaults depend on the device (:func:`amg_defaults`): on the CPU a 16 x 16 grid and no crop
layers, on CUDA SAM's 32 x 32 grid and one crop layer.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, fields, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from segment_anything.utils.amg import (batched_mask_to_box, build_all_layer_point_grids, calculate_stability_score,
                                        generate_crop_boxes, is_box_near_crop_edge)
from torchvision.ops import batched_nms

from text2seg_widgets.core.masks import mask_bbox_xywh
from text2seg_widgets.errors import InputError
from text2seg_widgets.models._validate import check_rgb
from text2seg_widgets.models.protocols import AutoMask

if TYPE_CHECKING:
    from text2seg_widgets.models.protocols import PromptableSegmenter

__all__ = ["FastMaskGenerator", "AmgSettings", "amg_defaults", "box_prompts", "mask_generator", "MASK_GENERATORS"]

log = logging.getLogger(__name__)

_UPSAMPLE_CHUNK = 16  # survivors upsampled per batch: bounds full-resolution float memory
#: low-res and full-res stability scores differ by < 0.035 on LiteMedSAM/LoveDA (measured); within
#: this margin of the threshold the full-resolution score is computed and decides
STABILITY_MARGIN = 0.05


@dataclass(frozen=True)
class AmgSettings:
    """Settings of automatic mask generation (segment-anything's names and meanings where shared).

    ``points_per_side`` / ``crop_n_layers`` may be ``None``: the device's default (:func:`amg_defaults`).
    ``mask_dedupe_iou`` > 1 turns the mask-IoU step off. ``max_masks`` keeps only the best masks
    (by predicted IoU) before upsampling; None keeps all."""

    points_per_side: int | None = None
    crop_n_layers: int | None = None
    points_per_batch: int = 64
    pred_iou_thresh: float = 0.88
    stability_score_thresh: float = 0.95
    stability_score_offset: float = 1.0
    box_nms_thresh: float = 0.7
    mask_dedupe_iou: float = 0.9
    crop_nms_thresh: float = 0.7
    crop_overlap_ratio: float = 512 / 1500
    crop_n_points_downscale_factor: int = 1
    prompt: str = "auto"
    box_sizes: tuple[float, ...] = (0.125, 0.25)
    max_masks: int | None = None

    def __post_init__(self) -> None:
        if self.points_per_side is not None and self.points_per_side < 1:
            raise InputError(f"points_per_side must be >= 1 (or None for the device default), got {self.points_per_side}")
        if self.crop_n_layers is not None and self.crop_n_layers < 0:
            raise InputError(f"crop_n_layers must be >= 0 (or None for the device default), got {self.crop_n_layers}")
        if self.points_per_batch < 1 or self.crop_n_points_downscale_factor < 1:
            raise InputError("points_per_batch and crop_n_points_downscale_factor must be >= 1")
        if self.prompt not in ("auto", "points", "boxes"):
            raise InputError(f"prompt must be 'auto', 'points' or 'boxes', got {self.prompt!r}")
        if not self.box_sizes or any(not 0.0 < s <= 1.0 for s in self.box_sizes):
            raise InputError(f"box_sizes are fractions of the crop's longer side in (0, 1], got {self.box_sizes}")
        for name in ("box_nms_thresh", "crop_nms_thresh"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in (0, 1], got {getattr(self, name)}")
        if self.max_masks is not None and self.max_masks < 1:
            raise InputError(f"max_masks must be >= 1 or None, got {self.max_masks}")

    def resolved(self, device: torch.device | str) -> "AmgSettings":
        """These settings with ``None`` grid density / crop layers replaced by the device default."""
        defaults = amg_defaults(device)
        return replace(self, points_per_side=self.points_per_side or defaults["points_per_side"],
                       crop_n_layers=defaults["crop_n_layers"] if self.crop_n_layers is None else self.crop_n_layers)


def amg_defaults(device: torch.device | str) -> dict[str, int]:
    """Grid density and crop layers for a device: CPU 16 x 16 and no crops (a 1024 px tile in
    about a minute with SAM ViT-B), CUDA 32 x 32 and one crop layer (SAM's quality setting)."""
    if torch.device(device).type == "cuda":
        return {"points_per_side": 32, "crop_n_layers": 1}
    return {"points_per_side": 16, "crop_n_layers": 0}


def box_prompts(centres: np.ndarray, sizes: tuple[float, ...], hw: tuple[int, int]) -> np.ndarray:
    """(N * len(sizes), 4) xyxy squares of side ``size * max(h, w)`` centred on ``centres``
    ((N, 2) xy pixels), clipped to the (h, w) frame; grouped by centre, then size."""
    h, w = hw
    side = np.asarray(sizes, dtype=np.float64)[None, :, None] * max(h, w) / 2.0
    c = np.asarray(centres, dtype=np.float64)[:, None, :]
    boxes = np.concatenate([c - side, c + side], axis=2).reshape(-1, 4)
    boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
    boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
    return boxes


@dataclass
class _Frame:
    """One encoded image: the whole image, or a crop of it. ``factor`` = crop pixels per low-res
    pixel; ``low_hw`` = the low-res region that covers the crop."""

    features: torch.Tensor
    crop_box: tuple[int, int, int, int]
    hw: tuple[int, int]
    low_hw: tuple[int, int]
    factor: tuple[float, float]
    resized_hw: tuple[int, int]


class _Backend:
    """Decoding through the adapter's public API only: ``set_image`` + ``embedding`` for the whole
    image (the segmenter's own cached embedding), ``encode`` for crops (leaves the segmenter's
    embedding alone), ``decode_grid`` / ``upsample_logits`` / ``mask_threshold`` /
    ``low_res_ratio`` for the prompts. A new box model is a new adapter with these, not an edit
    here."""

    def __init__(self, segmenter: "PromptableSegmenter") -> None:
        from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
        from text2seg_widgets.models.sam import SamSegmenter

        if not isinstance(segmenter, (SamSegmenter, LiteMedSamSegmenter)):
            raise InputError("FastMaskGenerator needs a SAM-family segmenter (SamSegmenter, "
                             f"LiteMedSamSegmenter); got {type(segmenter).__name__}")
        self.seg = segmenter
        self.threshold = float(segmenter.mask_threshold)
        self.ratio = float(segmenter.low_res_ratio)

    def _frame(self, emb: Any, box: tuple[int, int, int, int]) -> _Frame:
        rh, rw = (int(v) for v in emb.resized_hw)
        hw = (int(emb.input_hw[0]), int(emb.input_hw[1]))
        k = self.ratio
        low_hw = (math.ceil(rh * k), math.ceil(rw * k))
        return _Frame(emb.features.to(self.seg.device, torch.float32), box, hw, low_hw,
                      (hw[0] / (rh * k), hw[1] / (rw * k)), (rh, rw))

    def whole(self, image: np.ndarray) -> _Frame:
        self.seg.set_image(image)  # a no-op when this image is already encoded
        return self._frame(self.seg.embedding, (0, 0, image.shape[1], image.shape[0]))

    def crop(self, image: np.ndarray, box: tuple[int, int, int, int]) -> _Frame:
        x0, y0, x1, y1 = box
        return self._frame(self.seg.encode(np.ascontiguousarray(image[y0:y1, x0:x1])), box)

    def decode(self, frame: _Frame, prompts: np.ndarray, boxes: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, K, low, low) logits and (B, K) predicted IoU; K = 3 for SAM points, else 1."""
        return self.seg.decode_grid(frame.features, frame.hw, prompts, boxes=boxes)

    def upsample_logits(self, frame: _Frame, low: torch.Tensor) -> torch.Tensor:
        """(N, 1, low, low) logits -> (N, 1, h, w) logits at the frame's size, as the adapter makes them."""
        return self.seg.upsample_logits(low, frame.hw, frame.resized_hw)

    def upsample(self, frame: _Frame, low: torch.Tensor) -> torch.Tensor:
        """(N, 1, low, low) logits -> (N, 1, h, w) bool masks of the frame."""
        return self.upsample_logits(frame, low) > self.threshold


@dataclass
class _Decoded:
    """The per-mask columns of one decoded batch (low-res logits, predicted IoU), filtered together."""

    low: torch.Tensor
    iou: torch.Tensor

    def flat(self) -> "_Decoded":
        """(B, K, ...) -> (B * K, ...): one row per mask."""
        return _Decoded(self.low.flatten(0, 1), self.iou.flatten(0, 1))

    def keep(self, ok: torch.Tensor) -> "_Decoded":
        """The rows where ``ok`` (a bool mask on any device) is True."""
        return _Decoded(self.low[ok.to(self.low.device)], self.iou[ok.to(self.iou.device)])


@dataclass
class _Found:
    """Masks that passed the filters in one frame: the decoder's whole low-res logits (float16),
    image-frame xyxy boxes, predicted IoU, and the frame they belong to."""

    low: torch.Tensor
    boxes: torch.Tensor
    scores: torch.Tensor
    frame: _Frame


class FastMaskGenerator:
    """Automatic masks behind the ``MaskGenerator`` protocol, sharing ``segmenter``'s embedding.

    Args:
        segmenter: a :class:`~models.sam.SamSegmenter` (points or boxes) or a
            :class:`~models.litemedsam.LiteMedSamSegmenter` (boxes).
        settings: :class:`AmgSettings`; keyword arguments override single fields.
    """

    def __init__(self, segmenter: "PromptableSegmenter", settings: AmgSettings | None = None, **overrides: Any) -> None:
        unknown = set(overrides) - {f.name for f in fields(AmgSettings)}
        if unknown:
            raise InputError(f"unknown mask generator setting(s) {sorted(unknown)}; see AmgSettings")
        self.segmenter = segmenter
        self.name = str(getattr(segmenter, "name", "sam"))
        self.settings = replace(settings or AmgSettings(), **overrides)
        self._backend = _Backend(segmenter)

    @property
    def encoder_calls(self) -> int:
        """The segmenter's encoder runs (crop layers included: crops go through its ``encode``)."""
        return int(getattr(self.segmenter, "encoder_calls", 0))

    def effective_settings(self, settings: AmgSettings | None = None) -> AmgSettings:
        """``settings`` (default: the generator's) with device defaults and the prompt kind filled in."""
        s = (settings or self.settings).resolved(getattr(self.segmenter, "device", "cpu"))
        if s.prompt == "auto":
            s = replace(s, prompt="points" if self.segmenter.supports_points else "boxes")
        return s

    def generate(self, image: np.ndarray, settings: AmgSettings | None = None) -> list[AutoMask]:
        """All masks found on ``image`` (each (H, W) bool), best predicted IoU first.
        ``settings`` replaces the generator's own for this call."""
        check_rgb(image, "mask generator")
        s = self.effective_settings(settings)
        h, w = image.shape[:2]
        crop_boxes, layers = generate_crop_boxes((h, w), s.crop_n_layers, s.crop_overlap_ratio)
        grids = build_all_layer_point_grids(s.points_per_side, s.crop_n_layers, s.crop_n_points_downscale_factor)
        found = []
        with torch.inference_mode():
            for box, layer in zip(crop_boxes, layers):
                box = tuple(int(v) for v in box)
                frame = self._backend.whole(image) if layer == 0 else self._backend.crop(image, box)
                found.append(self._frame_masks(frame, grids[layer], s, (h, w)))
            masks = self._dedupe_and_upsample(found, s, (h, w), several_crops=len(crop_boxes) > 1)
        log.debug("%s: %d automatic masks (%d crops, %d points per side)", self.name, len(masks),
                  len(crop_boxes), s.points_per_side)
        return masks

    # -- per frame: decode, filter, box NMS ---------------------------------------------------
    def _frame_masks(self, frame: _Frame, grid: np.ndarray, s: AmgSettings, hw: tuple[int, int]) -> _Found:
        ch, cw = frame.hw
        centres = grid * np.array([[cw, ch]], dtype=np.float64)
        as_boxes = s.prompt == "boxes"
        prompts = box_prompts(centres, s.box_sizes, frame.hw) if as_boxes else centres
        parts = [self._decode_batch(frame, prompts[start:start + s.points_per_batch], as_boxes, s, hw)
                 for start in range(0, len(prompts), s.points_per_batch)]
        if not parts:
            return _Found(torch.zeros((0, 1, 1), dtype=torch.float16), torch.zeros((0, 4)), torch.zeros((0,)), frame)
        low, boxes, scores = (torch.cat([p[i] for p in parts]) for i in range(3))
        keep = batched_nms(boxes, scores, torch.zeros(len(scores)), iou_threshold=s.box_nms_thresh)
        return _Found(low[keep], boxes[keep], scores[keep], frame)

    def _decode_batch(self, frame: _Frame, prompts: np.ndarray, as_boxes: bool, s: AmgSettings,
                      hw: tuple[int, int]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Decode one batch; keep masks passing the predicted-IoU and low-res stability filters that
        are not empty and do not touch an inner crop edge. Returns (full low-res logits as float16,
        image-frame boxes, predicted IoU)."""
        lh, lw = frame.low_hw
        b = _Decoded(*self._backend.decode(frame, prompts, as_boxes)).flat()
        if s.pred_iou_thresh > 0.0:
            b = b.keep(b.iou > s.pred_iou_thresh)
        if s.stability_score_thresh > 0.0:
            b = b.keep(self._stable(frame, b.low, s))
        b = b.keep((b.low[:, :lh, :lw] > self._backend.threshold).flatten(1).any(dim=1))
        binary = b.low[:, :lh, :lw] > self._backend.threshold
        boxes = self._crop_boxes(batched_mask_to_box(binary).float().cpu(), frame)
        x0, y0, x1, y1 = frame.crop_box
        ok = ~is_box_near_crop_edge(boxes, [x0, y0, x1, y1], [0, 0, hw[1], hw[0]])
        boxes = boxes[ok] + torch.tensor([x0, y0, x0, y0], dtype=torch.float32)
        b = b.keep(ok)
        return b.low.half().cpu(), boxes, b.iou.cpu()

    def _stable(self, frame: _Frame, low: torch.Tensor, s: AmgSettings) -> torch.Tensor:
        """Stability filter: scores of the low-res logits decide, except within
        :data:`STABILITY_MARGIN` of the threshold, where the full-resolution logits (what the
        reference scores) are computed for those masks alone and decide exactly."""
        lh, lw = frame.low_hw
        thr, off = self._backend.threshold, s.stability_score_offset
        score = calculate_stability_score(low[:, :lh, :lw], thr, off)
        unsure = ((score - s.stability_score_thresh).abs() < STABILITY_MARGIN).nonzero().flatten()
        for start in range(0, len(unsure), _UPSAMPLE_CHUNK):
            part = unsure[start:start + _UPSAMPLE_CHUNK]
            full = self._backend.upsample_logits(frame, low[part][:, None])[:, 0]
            score[part] = calculate_stability_score(full, thr, off).to(score.device)
        return score >= s.stability_score_thresh

    @staticmethod
    def _crop_boxes(low_boxes: torch.Tensor, frame: _Frame) -> torch.Tensor:
        """Inclusive low-res pixel boxes -> inclusive pixel xyxy boxes of the frame (crop)."""
        fy, fx = frame.factor
        out = torch.empty_like(low_boxes)
        out[:, 0] = low_boxes[:, 0] * fx
        out[:, 1] = low_boxes[:, 1] * fy
        out[:, 2] = (low_boxes[:, 2] + 1) * fx - 1
        out[:, 3] = (low_boxes[:, 3] + 1) * fy - 1
        return out

    # -- across frames: crop NMS, mask-IoU de-duplication, upsampling -------------------------
    def _dedupe_and_upsample(self, found: list[_Found], s: AmgSettings, hw: tuple[int, int],
                             several_crops: bool) -> list[AutoMask]:
        owner = torch.cat([torch.full((len(f.scores),), i, dtype=torch.long) for i, f in enumerate(found)])
        index = torch.cat([torch.arange(len(f.scores)) for f in found])
        boxes = torch.cat([f.boxes for f in found])
        scores = torch.cat([f.scores for f in found])
        if several_crops and len(scores):
            areas = torch.tensor([float((f.frame.crop_box[2] - f.frame.crop_box[0]) * (f.frame.crop_box[3] - f.frame.crop_box[1]))
                                  for f in found])
            keep = batched_nms(boxes, 1.0 / areas[owner], torch.zeros(len(scores)), iou_threshold=s.crop_nms_thresh)
            owner, index, boxes, scores = owner[keep], index[keep], boxes[keep], scores[keep]
        order = torch.argsort(scores, descending=True, stable=True)
        owner, index, boxes, scores = owner[order], index[order], boxes[order], scores[order]
        if s.mask_dedupe_iou <= 1.0 and len(scores) > 1:
            keep = self._mask_dedupe(found, owner, index, boxes, s.mask_dedupe_iou, found[0].frame)
            owner, index, scores = owner[keep], index[keep], scores[keep]
        if s.max_masks is not None:
            owner, index, scores = owner[:s.max_masks], index[:s.max_masks], scores[:s.max_masks]
        return self._upsample(found, owner, index, scores, hw)

    @staticmethod
    def _canvas(found: list[_Found], owner: torch.Tensor, index: torch.Tensor, canvas: _Frame) -> np.ndarray:
        """(N, P) binary low-res masks of the chosen entries in the whole image's low-res frame."""
        gh, gw = canvas.low_hw
        out = np.zeros((len(owner), gh, gw), dtype=bool)
        fy, fx = canvas.factor
        for k, (o, i) in enumerate(zip(owner.tolist(), index.tolist())):
            f = found[o]
            lh, lw = f.frame.low_hw
            low = f.low[i, :lh, :lw].float()
            if f.frame is canvas:
                out[k] = (low > 0.0).numpy()
                continue
            x0, y0, x1, y1 = f.frame.crop_box
            r0, c0 = min(gh - 1, int(round(y0 / fy))), min(gw - 1, int(round(x0 / fx)))
            r1, c1 = max(r0 + 1, min(gh, int(round(y1 / fy)))), max(c0 + 1, min(gw, int(round(x1 / fx))))
            low = F.interpolate(low[None, None], size=(r1 - r0, c1 - c0), mode="bilinear", align_corners=False)[0, 0]
            out[k, r0:r1, c0:c1] = (low > 0.0).numpy()
        return out.reshape(len(owner), -1)

    def _mask_dedupe(self, found: list[_Found], owner: torch.Tensor, index: torch.Tensor, boxes: torch.Tensor,
                     thresh: float, canvas: _Frame) -> torch.Tensor:
        """Greedy (best first) removal of masks whose low-res IoU with a kept mask is >= ``thresh``;
        only pairs whose boxes overlap are compared."""
        masks = self._canvas(found, owner, index, canvas)
        areas = masks.sum(axis=1)
        b = boxes.numpy()
        kept: list[int] = []
        for k in range(len(masks)):
            if kept:
                kb = b[kept]
                near = np.flatnonzero((kb[:, 0] <= b[k, 2]) & (b[k, 0] <= kb[:, 2])
                                      & (kb[:, 1] <= b[k, 3]) & (b[k, 1] <= kb[:, 3]))
                if len(near):
                    idx = np.asarray(kept)[near]
                    inter = (masks[idx] & masks[k]).sum(axis=1)
                    union = areas[idx] + areas[k] - inter
                    if np.any(inter >= thresh * np.maximum(union, 1)):
                        continue
            kept.append(k)
        return torch.as_tensor(kept, dtype=torch.long)

    def _upsample(self, found: list[_Found], owner: torch.Tensor, index: torch.Tensor, scores: torch.Tensor,
                  hw: tuple[int, int]) -> list[AutoMask]:
        out: list[AutoMask] = []
        for o in sorted(set(owner.tolist())):
            sel = (owner == o).nonzero().flatten()
            f = found[o]
            x0, y0, x1, y1 = f.frame.crop_box
            for start in range(0, len(sel), _UPSAMPLE_CHUNK):
                part = sel[start:start + _UPSAMPLE_CHUNK]
                low = f.low[index[part]].float()[:, None]
                full = self._backend.upsample(f.frame, low)[:, 0].cpu().numpy()
                for k, m in zip(part.tolist(), full):
                    if (x0, y0, x1, y1) != (0, 0, hw[1], hw[0]):
                        canvas = np.zeros(hw, dtype=bool)
                        canvas[y0:y1, x0:x1] = m
                        m = canvas
                    if m.any():
                        out.append(AutoMask(mask=m, score=float(scores[k]), bbox_xywh=mask_bbox_xywh(m)))
        out.sort(key=lambda a: -a.score)
        return out


#: mask generator kinds by name: ``fast`` (this module, the default) and ``reference``
#: (segment-anything's own ``SamAutomaticMaskGenerator`` through ``SamMaskGenerator``)
MASK_GENERATORS = ("fast", "reference")


def mask_generator(segmenter: "PromptableSegmenter", kind: str = "fast", **settings: Any) -> Any:
    """A mask generator sharing ``segmenter``'s embedding: ``kind="fast"`` gives
    :class:`FastMaskGenerator` (``settings``: :class:`AmgSettings` fields), ``"reference"`` gives
    :class:`~text2seg_widgets.models.sam.SamMaskGenerator` (``settings``: its keyword arguments)."""
    if kind == "fast":
        return FastMaskGenerator(segmenter, **settings)
    if kind == "reference":
        from text2seg_widgets.models.sam import SamMaskGenerator

        from text2seg_widgets.models.sam import SamSegmenter

        if not isinstance(segmenter, SamSegmenter):
            raise InputError("the reference mask generator needs a segment-anything SAM segmenter; "
                             f"got {type(segmenter).__name__} (use kind='fast')")
        return SamMaskGenerator(segmenter, **settings)
    raise InputError(f"unknown mask generator {kind!r}; use one of {', '.join(MASK_GENERATORS)}")
