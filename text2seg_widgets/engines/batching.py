"""Batched image embeddings: the segmenter's encoder run once for a batch of tiles.

The SAM image encoder is by far the most expensive step of the pipeline (a ViT-B at 1024 px), and
on a GPU a batch of tiles through it costs little more than one. :class:`EmbeddingBatcher`
encodes a list of tiles in one forward pass and then, tile by tile, hands the segmenter the
embedding of the tile about to be segmented, exactly as ``set_image`` would have left it; the
pipeline's own ``set_image`` call then finds the embedding cached and encodes nothing.

What batches:

* SAM v1 (:class:`~text2seg_widgets.models.sam.SamSegmenter`): the image encoder; the detector
  and heatmap branches' prompts and the filter branch's automatic masks all reuse the embedding.
* LiteMedSAM (:class:`~text2seg_widgets.models.litemedsam.LiteMedSamSegmenter`): the encoder.

What does not (one forward pass per tile, batched *within* the tile by the adapters): Grounding
DINO (all prompts of a tile in one pass), CLIP Surgery (all classes in one pass), CLIP crop
scoring (up to 64 crops per pass), SAM box decoding (32 boxes per pass), SAM 3 (all phrases in
one pass). Their adapters take one image per call; batching them across tiles would need a
batched adapter API.

This module reaches into the two adapters' embedding cache (their private attributes); the
engine tests check that batched and unbatched runs give identical candidates.
"""

from __future__ import annotations

import logging
from typing import Any, Sequence

import numpy as np
import torch

from text2seg_widgets.models._validate import check_rgb, fingerprint

__all__ = ["EmbeddingBatcher"]

log = logging.getLogger(__name__)


class EmbeddingBatcher:
    """Base: encode tiles in one pass (:meth:`encode`), then :meth:`install` one embedding."""

    def __init__(self, segmenter: Any) -> None:
        self.segmenter = segmenter
        self.batches = 0

    @staticmethod
    def for_segmenter(segmenter: Any) -> "EmbeddingBatcher | None":
        """The batcher for this segmenter type, or None (then tiles are encoded one by one)."""
        from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
        from text2seg_widgets.models.sam import SamSegmenter

        if isinstance(segmenter, SamSegmenter):
            return _SamBatcher(segmenter)
        if isinstance(segmenter, LiteMedSamSegmenter):
            return _LiteMedSamBatcher(segmenter)
        if segmenter is not None:
            log.info("no batched encoder for %s; tiles are encoded one at a time",
                     type(segmenter).__name__)
        return None

    def _inputs(self, image: np.ndarray) -> tuple[torch.Tensor, Any]:
        raise NotImplementedError

    def _encode(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.segmenter.model.image_encoder(pixels)

    def encode(self, images: Sequence[np.ndarray]) -> list[tuple[torch.Tensor, Any]]:
        """One (1, C, h, w) embedding and its geometry per image, from a single encoder pass.
        Each image counts as one encoder call of the segmenter."""
        inputs = [self._inputs(check_rgb(img, "tile")) for img in images]
        pixels = torch.cat([p for p, _ in inputs]).to(self.segmenter.device)
        with torch.inference_mode():
            feats = self._encode(pixels)
        self.batches += 1
        self.segmenter.encoder_calls += len(images)
        return [(feats[k:k + 1], geometry) for k, (_, geometry) in enumerate(inputs)]

    def install(self, image: np.ndarray, entry: tuple[torch.Tensor, Any]) -> None:
        raise NotImplementedError


class _SamBatcher(EmbeddingBatcher):
    """segment-anything: ResizeLongestSide + normalise/pad, as ``SamPredictor.set_image`` does."""

    def _inputs(self, image: np.ndarray) -> tuple[torch.Tensor, Any]:
        seg = self.segmenter
        resized = seg.predictor.transform.apply_image(image)
        t = torch.as_tensor(resized, device=seg.device).permute(2, 0, 1).contiguous()[None]
        return seg.model.preprocess(t), (tuple(image.shape[:2]), tuple(t.shape[-2:]))

    def install(self, image: np.ndarray, entry: tuple[torch.Tensor, Any]) -> None:
        feats, (original_size, input_size) = entry
        seg = self.segmenter
        predictor = seg.predictor
        predictor.reset_image()
        predictor.original_size = original_size
        predictor.input_size = input_size
        predictor.features = feats
        predictor.is_image_set = True
        seg._key = fingerprint(image)


class _LiteMedSamBatcher(EmbeddingBatcher):
    """LiteMedSAM: its own 256 px resize + pad."""

    def _inputs(self, image: np.ndarray) -> tuple[torch.Tensor, Any]:
        pixels, resized = self.segmenter.preprocess(image)
        return pixels, resized

    def install(self, image: np.ndarray, entry: tuple[torch.Tensor, Any]) -> None:
        feats, resized = entry
        seg = self.segmenter
        seg._embedding, seg._resized_hw, seg._key = feats, resized, fingerprint(image)
