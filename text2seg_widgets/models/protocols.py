"""The small interfaces the pipeline depends on, one per model role.

Images crossing these interfaces are ``numpy.ndarray`` of shape ``(H, W, 3)``, dtype ``uint8``,
RGB (the imagery layer does band choice and stretch before this point). Coordinates are pixels of
that image: points ``(x, y)``, boxes ``(x0, y0, x1, y1)``. Masks are boolean ``(H, W)`` arrays at
the image's full size.

Every adapter counts how often it ran its expensive image encoder in ``encoder_calls`` so that
callers (and tests) can check that an image is encoded once, however many prompts follow.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, Sequence, runtime_checkable

import numpy as np
import torch

if TYPE_CHECKING:
    from text2seg_widgets.models.embedding import Embedding, ModelIdentity

__all__ = [
    "MaskPrediction",
    "Detections",
    "AutoMask",
    "ConceptResult",
    "PromptableSegmenter",
    "MaskGenerator",
    "TextBoxDetector",
    "ClipScorer",
    "ConceptSegmenter",
]


@dataclass
class MaskPrediction:
    """Masks for one prompt (or one per box): ``masks`` (K, H, W) bool, ``scores`` (K,)."""

    masks: np.ndarray
    scores: np.ndarray
    low_res_logits: np.ndarray | None = None


@dataclass
class Detections:
    """Boxes (N, 4) xyxy in pixels, scores (N,), and the phrase each box was matched to."""

    boxes: np.ndarray
    scores: np.ndarray
    phrases: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.boxes.shape[0])


@dataclass
class AutoMask:
    """One mask from automatic mask generation."""

    mask: np.ndarray
    score: float
    bbox_xywh: tuple[float, float, float, float]


@dataclass
class ConceptResult:
    """All instances of one phrase: masks (N, H, W) bool, scores (N,), boxes (N, 4) xyxy."""

    phrase: str
    masks: np.ndarray
    scores: np.ndarray
    boxes: np.ndarray


@runtime_checkable
class PromptableSegmenter(Protocol):
    """SAM-like: encode an image once, then decode many prompts against the cached embedding.

    Embeddings are values (:class:`~text2seg_widgets.models.embedding.Embedding`): ``encode``
    returns one and changes nothing; ``use_embedding`` makes ``predict*`` decode against one (and
    refuses an embedding of another :class:`ModelIdentity`); ``set_image`` is encode + use, a no-op
    for the pixels already held. Code outside ``models/`` moves embeddings only through these."""

    name: str
    encoder_calls: int
    supports_points: bool  # False for box-only models (LiteMedSAM)
    device: torch.device

    @property
    def input_size(self) -> int:
        """The side of the square image the encoder sees (SAM 1024, LiteMedSAM 256)."""

    @property
    def identity(self) -> "ModelIdentity":
        """Weights sha256 + preprocessing: what an embedding must match to be decoded here."""

    @property
    def embedding(self) -> "Embedding | None":
        """The embedding ``predict*`` decode against now (None before any image)."""

    def encode_batch(self, images: Sequence[np.ndarray]) -> "list[Embedding]":
        """One embedding per image, the encoder run once over the batch."""

    def clone_for_prefetch(self) -> "PromptableSegmenter":
        """A segmenter sharing these weights (no copy) with its own held image, for a thread that
        encodes ahead while this one decodes."""

    def reset_image(self) -> None:
        """Forget the held image."""

    def encode(self, image: np.ndarray) -> "Embedding":
        """The embedding of ``image`` (counts one encoder call; changes nothing the segmenter holds)."""

    def use_embedding(self, embedding: "Embedding") -> None:
        """Decode later prompts against ``embedding`` (no encoder call)."""

    def set_image(self, image: np.ndarray) -> None:
        """Encode ``image``; a second call with an equal image reuses the cached embedding."""

    def is_set(self, image: np.ndarray) -> bool:
        """Whether the embedding held now is that of these pixels."""

    def predict(self, *, points: np.ndarray | None = None, point_labels: np.ndarray | None = None,
                box: np.ndarray | None = None, mask_input: np.ndarray | None = None,
                multimask: bool = False) -> MaskPrediction:
        """One prompt (points with labels 1/0, a box, and/or a previous low-res mask)."""

    def predict_boxes(self, boxes: np.ndarray) -> MaskPrediction:
        """One best mask per box for an (N, 4) array of boxes, batched."""


@runtime_checkable
class MaskGenerator(Protocol):
    """Automatic mask generation over a whole image (SAM's point grid)."""

    name: str

    def generate(self, image: np.ndarray) -> list[AutoMask]:
        ...


@runtime_checkable
class TextBoxDetector(Protocol):
    """Open-vocabulary detector: phrases in, boxes out (Grounding DINO, OWLv2)."""

    name: str
    encoder_calls: int

    def detect(self, image: np.ndarray, phrases: Sequence[str], *, box_threshold: float | None = None,
               text_threshold: float | None = None) -> Detections:
        """One forward pass for all phrases; each box carries the phrase it matched."""


@runtime_checkable
class ClipScorer(Protocol):
    """CLIP: text embeddings, crop scoring, and the dense CLIP Surgery similarity map."""

    name: str
    encoder_calls: int

    def encode_text(self, prompts: Sequence[str]) -> np.ndarray:
        """(N, D) L2-normalised text features."""

    def encode_crops(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """(N, D) L2-normalised image features of (h, w, 3) uint8 crops, batched."""

    def similarity_map(self, image: np.ndarray, text_features: np.ndarray) -> np.ndarray:
        """(C, gh, gw) CLIP Surgery similarity of every patch to each of the C text features."""


@runtime_checkable
class ConceptSegmenter(Protocol):
    """SAM 3: a text phrase in, every instance mask out; the image encoded once for all phrases."""

    name: str
    encoder_calls: int

    def segment(self, image: np.ndarray, phrases: Sequence[str], *,
                threshold: float = 0.5) -> list[ConceptResult]:
        ...
