"""SAM 3 through transformers (``Sam3Model`` + ``Sam3Processor``): a text phrase in, every instance
mask of that concept out.

The vision encoder runs once per image: :meth:`Sam3ConceptSegmenter.segment` computes
``get_vision_features`` (cached by image fingerprint) and passes them as ``vision_embeds`` to one
light forward pass (DETR encoder/decoder and mask head) per phrase. The text tower runs once for
all phrases of a call. Masks, boxes and scores come from the processor's
``post_process_instance_segmentation`` at the original image size (H, W).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from transformers.modeling_outputs import BaseModelOutputWithPooling

from text2seg_widgets.errors import InputError
from text2seg_widgets.models._validate import check_rgb, fingerprint
from text2seg_widgets.models.device import autocast, resolve_device, resolve_dtype
from text2seg_widgets.models.protocols import ConceptResult

__all__ = ["Sam3ConceptSegmenter"]

log = logging.getLogger(__name__)


class Sam3ConceptSegmenter:
    """SAM 3 behind the ``ConceptSegmenter`` protocol.

    ``threshold`` is the instance score cut (``segment``'s default), ``mask_threshold`` the
    probability cut of mask pixels. ``encoder_calls`` counts vision-encoder runs."""

    def __init__(self, model: torch.nn.Module, processor: Any, name: str = "sam3",
                 device: str | torch.device = "auto", dtype: str | torch.dtype | None = "auto",
                 mask_threshold: float = 0.5) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.name = name
        self.mask_threshold = mask_threshold
        self.encoder_calls = 0
        self._key: tuple[tuple[int, ...], str] | None = None
        self._vision: Any = None

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "auto",
                        dtype: str | torch.dtype | None = "auto", name: str | None = None) -> "Sam3ConceptSegmenter":
        """Load a local folder in the layout of ``facebook/sam3``."""
        from transformers import Sam3Model, Sam3Processor

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise InputError(f"{folder} is not a SAM 3 folder (no config.json); fetch it with "
                             "`text2seg-widgets weights fetch sam3`")
        return cls(Sam3Model.from_pretrained(folder), Sam3Processor.from_pretrained(folder),
                   name=name or folder.name, device=device, dtype=dtype)

    def set_image(self, image: np.ndarray) -> None:
        """Run the vision encoder on ``image`` unless it is the image already encoded."""
        check_rgb(image, "SAM 3")
        key = fingerprint(image)
        if key == self._key:
            return
        pixels = self.processor(images=image, return_tensors="pt")["pixel_values"].to(self.device)
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
        boxes (N, 4) xyxy in pixels, instances scoring above ``threshold``."""
        if isinstance(phrases, str) or len(phrases) == 0:
            raise InputError("segment needs a non-empty list of phrases, e.g. ['building']")
        clean = [" ".join(str(p).split()) for p in phrases]
        if any(not p for p in clean):
            raise InputError("empty phrase given to SAM 3; give words such as 'building'")
        self.set_image(image)
        h, w = image.shape[:2]
        text, mask = self._text(clean)
        results = []
        for i, phrase in enumerate(phrases):
            embeds = BaseModelOutputWithPooling(last_hidden_state=text.last_hidden_state[i:i + 1],
                                                pooler_output=text.pooler_output[i:i + 1])
            with autocast(self.device, self.dtype):
                out = self.model(vision_embeds=self._vision, text_embeds=embeds, attention_mask=mask[i:i + 1])
                post = self.processor.post_process_instance_segmentation(
                    out, threshold=threshold, mask_threshold=self.mask_threshold, target_sizes=[(h, w)])[0]
            masks = post["masks"].cpu().numpy().astype(bool).reshape(-1, h, w)
            results.append(ConceptResult(phrase=str(phrase), masks=masks,
                                         scores=post["scores"].float().cpu().numpy().reshape(-1),
                                         boxes=post["boxes"].float().cpu().numpy().reshape(-1, 4)))
        return results
