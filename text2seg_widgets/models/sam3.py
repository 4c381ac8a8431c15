"""SAM 3 through transformers (``Sam3Model`` + ``Sam3Processor``): a text phrase in, every instance
mask of that concept out.

The vision encoder runs once per image: :meth:`Sam3ConceptSegmenter.segment` computes
``get_vision_features`` (cached by image digest) and passes them as ``vision_embeds`` to one
light forward pass (DETR encoder/decoder and mask head) per phrase. The text tower runs once for
all phrases of a call. Masks, boxes and scores come from the processor's
``post_process_instance_segmentation`` at the original image size (H, W).

Dense scenes (hundreds of objects, many phrases) are bounded by three settings:

* ``phrases_per_batch``: phrases decoded in one forward pass (the vision features repeated);
* ``max_queries``: per phrase, only the best-scoring object queries are post-processed (their
  masks upsampled to (H, W)); None post-processes all of the model's queries;
* ``max_detections``: per tile (one ``segment`` call), the best instances over all phrases are
  kept, the rest dropped with a log line; None keeps all.

On a CUDA out-of-memory error (``torch.OutOfMemoryError``) the call degrades instead of failing:
the batch of phrases is halved and retried (and stays halved for later calls); with one phrase per
batch the tile is halved along its longer side and each half segmented on its own (its own
vision encoding; an object cut by the seam comes back as two instances), down to
``MIN_TILE_SIDE`` pixels. Each step logs a warning.
"""

from __future__ import annotations

import logging
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from text2seg_widgets.errors import InputError
from text2seg_widgets.models._validate import check_rgb
from text2seg_widgets.models.device import autocast, resolve_device, resolve_dtype
from text2seg_widgets.models.embedding import image_digest
from text2seg_widgets.models.protocols import ConceptResult

if TYPE_CHECKING:
    from transformers import Sam3Model

__all__ = ["Sam3ConceptSegmenter", "MIN_TILE_SIDE"]

log = logging.getLogger(__name__)

#: the smallest tile side an out-of-memory error may halve a tile to; below it the error is raised
MIN_TILE_SIDE = 64


class Sam3ConceptSegmenter:
    """SAM 3 behind the ``ConceptSegmenter`` protocol.

    ``threshold`` is the instance score cut (``segment``'s default), ``mask_threshold`` the
    probability cut of mask pixels. ``encoder_calls`` counts vision-encoder runs.
    ``phrases_per_batch``, ``max_queries`` and ``max_detections`` bound dense scenes (module docs)."""

    def __init__(self, model: "Sam3Model", processor: Any, name: str = "sam3",
                 device: str | torch.device = "auto", dtype: str | torch.dtype | None = "auto",
                 mask_threshold: float = 0.5, phrases_per_batch: int = 4, max_queries: int | None = None,
                 max_detections: int | None = 300) -> None:
        for label, value in (("phrases_per_batch", phrases_per_batch), ("max_queries", max_queries),
                             ("max_detections", max_detections)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise InputError(f"{label} must be a positive integer{'' if label == 'phrases_per_batch' else ' or None'}, "
                                 f"got {value!r}")
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        # transformers wraps PreTrainedModel.to in a decorator whose signature mypy misreads
        self.model: Sam3Model = model.to(self.device).eval()  # type: ignore[arg-type]  # transformers wraps .to() in a decorator mypy misreads
        self.processor = processor
        self.name = name
        self.mask_threshold = mask_threshold
        self.phrases_per_batch = phrases_per_batch
        self.max_queries = max_queries
        self.max_detections = max_detections
        self.encoder_calls = 0
        self._key: str | None = None  # image_digest of the encoded image
        self._vision: Any = None

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "auto",
                        dtype: str | torch.dtype | None = "auto", name: str | None = None,
                        **settings: Any) -> "Sam3ConceptSegmenter":
        """Load a local folder in the layout of ``facebook/sam3``; ``settings``: the dense-scene bounds."""
        from transformers import Sam3Model, Sam3Processor

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise InputError(f"{folder} is not a SAM 3 folder (no config.json); fetch it with "
                             "`text2seg-widgets weights fetch sam3`")
        return cls(Sam3Model.from_pretrained(folder), Sam3Processor.from_pretrained(folder),
                   name=name or folder.name, device=device, dtype=dtype, **settings)

    def set_image(self, image: np.ndarray) -> None:
        """Run the vision encoder on ``image`` unless it is the image already encoded."""
        check_rgb(image, "SAM 3")
        key = image_digest(image)
        if key == self._key:
            return
        pixels = self.processor(images=image, return_tensors="pt")["pixel_values"].to(self.device)
        self._key, self._vision = None, None  # never keep a half-replaced cache after an error
        with autocast(self.device, self.dtype):
            self._vision = self.model.get_vision_features(pixel_values=pixels)
        self._key = key
        self.encoder_calls += 1

    def _text(self, phrases: list[str]) -> tuple[Any, torch.Tensor]:
        tokens = self.processor(text=phrases, return_tensors="pt", padding=True)
        ids = tokens["input_ids"].to(self.device)
        mask = tokens["attention_mask"].to(self.device)
        with autocast(self.device, self.dtype):
            text = self.model.get_text_features(input_ids=ids, attention_mask=mask)
        return text, mask

    def segment(self, image: np.ndarray, phrases: Sequence[str], *,
                threshold: float = 0.5) -> list[ConceptResult]:
        """One :class:`ConceptResult` per phrase (same order): masks (N, H, W) bool, scores (N,),
        boxes (N, 4) xyxy in pixels, instances scoring above ``threshold`` (at most
        ``max_detections`` over all phrases)."""
        if isinstance(phrases, str) or len(phrases) == 0:
            raise InputError("segment needs a non-empty list of phrases, e.g. ['building']")
        clean = [" ".join(str(p).split()) for p in phrases]
        if any(not p for p in clean):
            raise InputError("empty phrase given to SAM 3; give words such as 'building'")
        check_rgb(image, "SAM 3")
        try:
            results = self._segment_tile(image, clean, threshold)
        except torch.OutOfMemoryError:
            self._forget_after_oom()
            results = self._segment_halves(image, clean, threshold)
        results = [ConceptResult(str(p), r.masks, r.scores, r.boxes) for p, r in zip(phrases, results)]
        return self._cap_detections(results)

    # -- one tile, phrases in batches ---------------------------------------------------------
    def _segment_tile(self, image: np.ndarray, phrases: list[str], threshold: float) -> list[ConceptResult]:
        self.set_image(image)
        h, w = image.shape[:2]
        text, mask = self._text(phrases)
        results: list[ConceptResult] = []
        while len(results) < len(phrases):
            start, size = len(results), self.phrases_per_batch
            try:
                results.extend(self._decode(phrases[start:start + size], text, mask, start, (h, w), threshold))
            except torch.OutOfMemoryError:
                if size == 1:
                    raise
                self._forget_after_oom(keep_vision=True)
                self.phrases_per_batch = max(1, size // 2)
                log.warning("SAM 3 ran out of GPU memory decoding %d phrases at once on a %dx%d tile; retrying "
                            "with %d phrases per batch", size, w, h, self.phrases_per_batch)
        return results

    def _decode(self, batch: list[str], text: Any, mask: torch.Tensor, start: int, hw: tuple[int, int],
                threshold: float) -> list[ConceptResult]:
        n = len(batch)
        embeds = BaseModelOutputWithPooling(last_hidden_state=text.last_hidden_state[start:start + n],
                                            pooler_output=text.pooler_output[start:start + n])
        with autocast(self.device, self.dtype):
            out = self.model(vision_embeds=_repeat_batch(self._vision, n), text_embeds=embeds,
                             attention_mask=mask[start:start + n])
            out = self._cap_queries(out)
            posts = self.processor.post_process_instance_segmentation(
                out, threshold=threshold, mask_threshold=self.mask_threshold, target_sizes=[hw] * n)
        h, w = hw
        return [ConceptResult(phrase=phrase, masks=post["masks"].cpu().numpy().astype(bool).reshape(-1, h, w),
                              scores=post["scores"].float().cpu().numpy().reshape(-1),
                              boxes=post["boxes"].float().cpu().numpy().reshape(-1, 4))
                for phrase, post in zip(batch, posts)]

    def _cap_queries(self, out: Any) -> Any:
        """Keep the ``max_queries`` best object queries of each phrase before post-processing."""
        logits = out["pred_logits"]
        if self.max_queries is None or logits.shape[1] <= self.max_queries:
            return out
        top = logits.topk(self.max_queries, dim=1).indices  # (B, k)
        for key in ("pred_logits", "pred_boxes", "pred_masks"):
            value = out[key]
            index = top.view(*top.shape, *([1] * (value.dim() - 2))).expand(*top.shape, *value.shape[2:])
            out[key] = value.gather(1, index)
        return out

    def _cap_detections(self, results: list[ConceptResult]) -> list[ConceptResult]:
        """Keep the ``max_detections`` best instances over all phrases (ties: earlier phrase first)."""
        total = sum(len(r.scores) for r in results)
        if self.max_detections is None or total <= self.max_detections:
            return results
        scores = np.concatenate([r.scores for r in results])
        owner = np.concatenate([np.full(len(r.scores), i) for i, r in enumerate(results)])
        chosen = np.zeros(total, bool)
        chosen[np.argsort(-scores, kind="stable")[:self.max_detections]] = True
        log.info("SAM 3: %d instances on one tile, kept the best %d (max_detections)", total, self.max_detections)
        out = []
        for i, r in enumerate(results):
            keep = chosen[owner == i]
            out.append(ConceptResult(r.phrase, r.masks[keep], r.scores[keep], r.boxes[keep]))
        return out

    # -- out of memory: halve the tile --------------------------------------------------------
    def _forget_after_oom(self, keep_vision: bool = False) -> None:
        if not keep_vision:
            self._key, self._vision = None, None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()

    def _segment_halves(self, image: np.ndarray, phrases: list[str], threshold: float) -> list[ConceptResult]:
        h, w = image.shape[:2]
        if max(h, w) // 2 < MIN_TILE_SIDE:
            raise torch.OutOfMemoryError(f"SAM 3 ran out of GPU memory on a {w}x{h} tile even with one phrase per "
                                         f"batch; use a smaller tile size or fewer phrases")
        if h >= w:
            parts = [(image[:h // 2], 0, 0), (image[h // 2:], 0, h // 2)]
        else:
            parts = [(image[:, :w // 2], 0, 0), (image[:, w // 2:], w // 2, 0)]
        log.warning("SAM 3 ran out of GPU memory on a %dx%d tile with one phrase per batch; segmenting it "
                    "as two %dx%d halves", w, h, parts[0][0].shape[1], parts[0][0].shape[0])
        pieces = []
        for part, x0, y0 in parts:
            part = np.ascontiguousarray(part)
            try:
                pieces.append((self._segment_tile(part, phrases, threshold), x0, y0))
            except torch.OutOfMemoryError:
                self._forget_after_oom()
                pieces.append((self._segment_halves(part, phrases, threshold), x0, y0))
        return [_paste([(res[i], x0, y0) for res, x0, y0 in pieces], phrases[i], (h, w)) for i in range(len(phrases))]


def _paste(parts: list[tuple[ConceptResult, int, int]], phrase: str, hw: tuple[int, int]) -> ConceptResult:
    """Results of sub-tiles at offsets (x0, y0) -> one result in the (H, W) tile."""
    h, w = hw
    masks, scores, boxes = [], [], []
    for res, x0, y0 in parts:
        ph, pw = res.masks.shape[1:]
        full = np.zeros((len(res.scores), h, w), dtype=bool)
        full[:, y0:y0 + ph, x0:x0 + pw] = res.masks
        masks.append(full)
        scores.append(res.scores)
        boxes.append(res.boxes + np.array([x0, y0, x0, y0], dtype=np.float32))
    return ConceptResult(phrase, np.concatenate(masks), np.concatenate(scores), np.concatenate(boxes).reshape(-1, 4))


def _repeat_batch(value: Any, n: int) -> Any:
    """The vision features of one image repeated to a batch of ``n`` (tensors along dim 0; tuples,
    lists and model outputs element-wise); ``n == 1`` returns ``value`` itself."""
    if n == 1:
        return value
    if isinstance(value, torch.Tensor):
        return value.expand(n, *value.shape[1:]) if value.shape[0] == 1 else value
    if isinstance(value, (tuple, list)):
        return type(value)(_repeat_batch(v, n) for v in value)
    if is_dataclass(value) and not isinstance(value, type):
        return type(value)(**{f.name: _repeat_batch(getattr(value, f.name), n) for f in fields(value)})
    return value
