"""Grounding DINO through transformers: phrases in, boxes with scores and matched phrases out.

All phrases go into ONE caption (``"building. red roof. water."``) and ONE forward pass per image.
Each box's score is its highest token probability (as in transformers' own post-processing);
boxes scoring at most ``box_threshold`` are dropped. The box's phrase is found from the token
spans of the caption: the phrase whose tokens reach the highest probability for that box. If that
probability is at most ``text_threshold`` the box matches no phrase well enough and is dropped, so
every returned phrase is exactly one of the given phrases (never a fragment or a merge of two).
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from text2seg_widgets.errors import InputError
from text2seg_widgets.models._validate import check_rgb
from text2seg_widgets.models.device import autocast, resolve_device, resolve_dtype
from text2seg_widgets.models.protocols import Detections

__all__ = ["GroundingDinoDetector", "caption_for", "phrase_spans"]

log = logging.getLogger(__name__)

# Grounding DINO's BERT tokenizer ids that the model itself relies on.
CLS_ID, SEP_ID, DOT_ID = 101, 102, 1012


def _clean(phrase: str) -> str:
    text = re.sub(r"\s+", " ", str(phrase).replace(".", " ")).strip().lower()
    if not text:
        raise InputError(f"empty phrase {phrase!r}; give words such as 'building' or 'red roof'")
    return text


def caption_for(phrases: Sequence[str]) -> str:
    """The single caption Grounding DINO reads: cleaned phrases joined as ``"a. b. c."``."""
    return ". ".join(_clean(p) for p in phrases) + "."


def phrase_spans(input_ids: Sequence[int]) -> list[list[int]]:
    """Token positions of each phrase in a tokenized caption: runs between [CLS], '.' and [SEP]."""
    spans: list[list[int]] = []
    current: list[int] = []
    for pos, tok in enumerate(input_ids):
        if tok in (CLS_ID, SEP_ID, DOT_ID):
            if current:
                spans.append(current)
            current = []
        else:
            current.append(pos)
    if current:
        spans.append(current)
    return spans


class GroundingDinoDetector:
    """A transformers Grounding DINO (``GroundingDinoForObjectDetection`` and its processor).

    Attributes ``box_threshold`` (default 0.35) and ``text_threshold`` (default 0.25) are the
    defaults of :meth:`detect`. ``encoder_calls`` counts forward passes (one per image)."""

    def __init__(self, model: torch.nn.Module, processor: Any, name: str = "grounding-dino",
                 device: str | torch.device = "auto", dtype: str | torch.dtype | None = "auto",
                 box_threshold: float = 0.35, text_threshold: float = 0.25) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.to(self.device).eval()
        self.processor = processor
        self.name = name
        self.box_threshold = box_threshold
        self.text_threshold = text_threshold
        self.encoder_calls = 0

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str | torch.device = "auto",
                        dtype: str | torch.dtype | None = "auto", name: str | None = None,
                        **thresholds: float) -> "GroundingDinoDetector":
        """Load a local folder in the layout of ``IDEA-Research/grounding-dino-tiny`` / ``-base``
        (config.json, model.safetensors, processor and tokenizer files)."""
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        folder = Path(folder)
        if not (folder / "config.json").is_file():
            raise InputError(f"{folder} is not a Grounding DINO folder (no config.json); fetch it with "
                             "`text2seg-widgets weights fetch grounding-dino-tiny`")
        model = AutoModelForZeroShotObjectDetection.from_pretrained(folder)
        processor = AutoProcessor.from_pretrained(folder)
        return cls(model, processor, name=name or folder.name, device=device, dtype=dtype, **thresholds)

    def _forward(self, image: np.ndarray, caption: str) -> tuple[Any, list[int]]:
        inputs = self.processor(images=image, text=caption, return_tensors="pt")
        ids = inputs["input_ids"][0].tolist()
        limit = int(getattr(self.model.config, "max_text_len", 256))
        if len(ids) > limit:
            raise InputError(f"the phrases make a caption of {len(ids)} tokens but Grounding DINO reads at most "
                             f"{limit}; use fewer or shorter phrases (or detect in several calls)")
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with autocast(self.device, self.dtype):
            outputs = self.model(**inputs)
        self.encoder_calls += 1
        return outputs, ids

    def detect(self, image: np.ndarray, phrases: Sequence[str], *, box_threshold: float | None = None,
               text_threshold: float | None = None) -> Detections:
        """Boxes (N, 4) xyxy in pixels of ``image``, scores (N,), and the phrase of each box, best
        first; one forward pass for all ``phrases``."""
        check_rgb(image, "Grounding DINO")
        if isinstance(phrases, str) or len(phrases) == 0:
            raise InputError("detect needs a non-empty list of phrases, e.g. ['building', 'road']")
        box_t = self.box_threshold if box_threshold is None else float(box_threshold)
        text_t = self.text_threshold if text_threshold is None else float(text_threshold)
        outputs, ids = self._forward(image, caption_for(phrases))
        spans = phrase_spans(ids)
        if len(spans) < len(phrases):
            log.warning("caption truncated: only the first %d of %d phrases reached Grounding DINO",
                        len(spans), len(phrases))
        with torch.inference_mode():
            probs = outputs.logits[0].float().sigmoid()[:, : len(ids)]  # (Q, T)
            box_scores = probs.max(dim=-1).values
            per_phrase = torch.stack([probs[:, span].max(dim=-1).values for span in spans[: len(phrases)]], dim=1)
            best_score, best = per_phrase.max(dim=1)
            keep = (box_scores > box_t) & (best_score > text_t)
            h, w = image.shape[:2]
            cxcywh = outputs.pred_boxes[0].float()
            xyxy = torch.cat([cxcywh[:, :2] - cxcywh[:, 2:] / 2, cxcywh[:, :2] + cxcywh[:, 2:] / 2], dim=1)
            xyxy = xyxy * torch.tensor([w, h, w, h], dtype=xyxy.dtype, device=xyxy.device)
            xyxy[:, [0, 2]] = xyxy[:, [0, 2]].clamp(0, w)
            xyxy[:, [1, 3]] = xyxy[:, [1, 3]].clamp(0, h)
            idx = torch.nonzero(keep).flatten()
            idx = idx[torch.argsort(box_scores[idx], descending=True)]
            return Detections(boxes=xyxy[idx].cpu().numpy().astype(np.float32),
                              scores=box_scores[idx].cpu().numpy().astype(np.float32),
                              phrases=[str(phrases[int(i)]) for i in best[idx].tolist()])
