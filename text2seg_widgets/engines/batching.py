"""Batched image embeddings: the segmenter's encoder run once for a batch of tiles.

The SAM image encoder is by far the most expensive step of the pipeline (a ViT-B at 1024 px), and
on a GPU a batch of tiles through it costs little more than one. Everything here goes through the
segmenter's public embedding API (``encode_batch`` / ``use_embedding``, see
:mod:`text2seg_widgets.models.embedding`); nothing touches an adapter's insides.

* :func:`encode_tiles` returns one :class:`Embedding` per tile: read from the persistent
  :class:`~text2seg_widgets.models.embedding_cache.EmbeddingCache` when it holds the tile, the rest
  encoded in ONE forward pass and written to the cache (so a pseudo-label run fills the cache for
  the Annotator at no extra cost).
* :class:`EmbeddingBatcher` is the tile loop's handle on that: ``encode(images)`` then, tile by
  tile, ``install(image, embedding)`` just before the pipeline runs on it; the pipeline's own
  ``set_image`` then finds the embedding held and encodes nothing.

What batches: SAM v1 and LiteMedSAM (any segmenter with ``encode_batch`` and ``use_embedding``).
What does not (one forward pass per tile, batched *within* the tile by the adapters): Grounding
DINO, CLIP Surgery, CLIP crop scoring, SAM box decoding, SAM 3.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from text2seg_widgets.models.embedding import Embedding, image_digest

if TYPE_CHECKING:
    from text2seg_widgets.models.embedding_cache import EmbeddingCache

__all__ = ["EmbeddingBatcher", "encode_tiles", "supports_embeddings"]

log = logging.getLogger(__name__)


def supports_embeddings(segmenter: Any) -> bool:
    """Whether ``segmenter`` speaks the embedding-value API (``encode_batch``, ``use_embedding``)."""
    return all(callable(getattr(segmenter, name, None)) for name in ("encode_batch", "use_embedding"))


def encode_tiles(segmenter: Any, images: Sequence[np.ndarray], *, cache: "EmbeddingCache | None" = None,
                 sources: Sequence[str | None] | None = None,
                 windows: Sequence[Any] | None = None) -> list[Embedding]:
    """One embedding per image, in order: cache hits are loaded, the misses are encoded together in
    one encoder pass and written to ``cache`` (with ``sources``/``windows`` recorded as metadata).
    Without a cache every image is encoded. The segmenter's held image is not changed."""
    if not images:
        return []
    out: list[Embedding | None] = [None] * len(images)
    digests = [image_digest(img) for img in images]
    if cache is not None:
        identity = segmenter.identity
        for k, digest in enumerate(digests):
            out[k] = cache.get(identity, digest)
    todo = [k for k, emb in enumerate(out) if emb is None]
    if todo:
        fresh = segmenter.encode_batch([images[k] for k in todo])
        for k, emb in zip(todo, fresh):
            out[k] = emb
            if cache is not None:
                cache.put(emb, source=sources[k] if sources else None, window=windows[k] if windows else None)
    log.debug("encode_tiles: %d tile(s), %d from the cache", len(images), len(images) - len(todo))
    return [emb for emb in out if emb is not None]


class EmbeddingBatcher:
    """Encode tiles together (:meth:`encode`), then :meth:`install` one embedding at a time.
    ``batches`` counts encoder passes that ran; ``cache`` (optional) is read and written."""

    def __init__(self, segmenter: Any, cache: "EmbeddingCache | None" = None) -> None:
        self.segmenter = segmenter
        self.cache = cache
        self.batches = 0

    @staticmethod
    def for_segmenter(segmenter: Any, cache: "EmbeddingCache | None" = None) -> "EmbeddingBatcher | None":
        """The batcher for this segmenter, or None when it cannot encode batches (then tiles are
        encoded one by one by the pipeline)."""
        if supports_embeddings(segmenter):
            return EmbeddingBatcher(segmenter, cache)
        if segmenter is not None:
            log.info("no batched encoder for %s; tiles are encoded one at a time", type(segmenter).__name__)
        return None

    def encode(self, images: Sequence[np.ndarray], *, sources: Sequence[str | None] | None = None,
               windows: Sequence[Any] | None = None) -> list[Embedding]:
        """One embedding per image (see :func:`encode_tiles`)."""
        before = self.segmenter.encoder_calls
        out = encode_tiles(self.segmenter, images, cache=self.cache, sources=sources, windows=windows)
        if self.segmenter.encoder_calls != before:
            self.batches += 1
        return out

    def install(self, image: np.ndarray, embedding: Embedding) -> None:
        """Make the segmenter decode against ``embedding`` (the embedding of ``image``)."""
        if not embedding.matches(image):
            raise ValueError("install: this embedding was computed for other pixels than this tile")
        self.segmenter.use_embedding(embedding)
