"""The one cache-through path for image embeddings: a segmenter plus an optional disk cache.

:class:`EmbeddingSource` is what the batch engines (``encode_tiles``), ``embed`` and the
Annotator (``EmbeddingKeeper``) ask for embeddings; nothing else reads the cache and falls back to
the encoder. Invariants:

* a hit is loaded from the cache; misses are encoded together in ONE encoder pass and written;
* the result never depends on the cache (entries are float32; see :mod:`.embedding_cache`);
* a cache that cannot be read or written (a full disk, a removed folder) costs an encode and a
  logged warning, never a failed run;
* the segmenter's held image is not changed (``use_embedding`` is the caller's choice).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from text2seg_widgets.models.embedding import Embedding
    from text2seg_widgets.models.embedding_cache import EmbeddingCache
    from text2seg_widgets.models.protocols import PromptableSegmenter

__all__ = ["EmbeddingSource"]

log = logging.getLogger(__name__)


class EmbeddingSource:
    """Embeddings of ``segmenter``, read through ``cache`` when there is one.

    Counters: ``hits`` (read from the cache), ``encoded`` (images run through the encoder)."""

    def __init__(self, segmenter: "PromptableSegmenter", cache: "EmbeddingCache | None" = None) -> None:
        self.segmenter = segmenter
        self.cache = cache
        self.hits = 0
        self.encoded = 0

    @classmethod
    def from_env(cls, segmenter: "PromptableSegmenter") -> "EmbeddingSource":
        """With the cache the environment configures (``TEXT2SEG_EMBED_CACHE*``; none when 0 GB)."""
        from text2seg_widgets.models.embedding_cache import EmbeddingCache

        return cls(segmenter, EmbeddingCache.from_env())

    def cached(self, image: np.ndarray) -> "Embedding | None":
        """The cache's embedding of ``image`` for this segmenter, or None (no cache, a miss, or a
        cache that cannot be read)."""
        if self.cache is None:
            return None
        try:
            found = self.cache.get(self.segmenter.identity, image)
        except OSError:
            log.warning("embedding cache read failed; encoding instead", exc_info=True)
            return None
        if found is not None:
            self.hits += 1
        return found

    def _store(self, embedding: "Embedding", source: str | None, window: object) -> None:
        if self.cache is None:
            return
        try:
            self.cache.put(embedding, source=source, window=window)
        except OSError:
            log.warning("could not write the embedding cache", exc_info=True)

    def embed_many(self, images: Sequence[np.ndarray], *, sources: Sequence[str | None] | None = None,
                   windows: Sequence[object] | None = None) -> "list[Embedding]":
        """One embedding per image, in order: hits loaded, misses encoded in one pass and written
        (with ``sources``/``windows`` recorded in the cache entries)."""
        out: list[Embedding | None] = [self.cached(img) for img in images]
        todo = [k for k, emb in enumerate(out) if emb is None]
        if todo:
            fresh = self.segmenter.encode_batch([images[k] for k in todo])
            self.encoded += len(todo)
            for k, emb in zip(todo, fresh):
                out[k] = emb
                self._store(emb, sources[k] if sources else None, windows[k] if windows else None)
        log.debug("embeddings: %d image(s), %d from the cache", len(images), len(images) - len(todo))
        return [emb for emb in out if emb is not None]

    def embed(self, image: np.ndarray, *, source: str | None = None, window: object = None) -> "Embedding":
        """The embedding of one image (a hit, else one encoder call, written to the cache)."""
        found = self.cached(image)
        if found is not None:
            return found
        embedding = self.segmenter.encode(image)
        self.encoded += 1
        self._store(embedding, source, window)
        return embedding
