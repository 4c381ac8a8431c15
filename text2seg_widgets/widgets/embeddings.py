"""The Annotator's image embeddings: the current image's held by the segmenter, the next one's
prefetched in the background, both read from (and written to) the persistent embedding cache.

Only the segmenter's public embedding API is used (``identity``, ``encode``, ``use_embedding``,
``is_set``, ``clone_for_prefetch``; see :mod:`text2seg_widgets.models.embedding`).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from text2seg_widgets.core.workers import Worker
from text2seg_widgets.models.embedding_source import EmbeddingSource

if TYPE_CHECKING:
    from text2seg_widgets.models.protocols import PromptableSegmenter
    from text2seg_widgets.models.embedding import Embedding
    from text2seg_widgets.models.embedding_cache import EmbeddingCache

__all__ = ["EmbeddingKeeper", "READY"]

#: prefetched embeddings kept in memory (an image, or the windows around a scene's view)
READY = 8

log = logging.getLogger(__name__)


class EmbeddingKeeper:
    """The segmenter's image embedding: set once per image, prefetched for the next image.

    ``ensure(key, rgb)`` makes the segmenter hold image ``key``: a no-op when it already holds
    these pixels; else the prefetched embedding, else the cache's, else a fresh encode (written to
    the cache). ``prefetch(key, loader)`` loads or encodes the next image on a :class:`Worker`,
    on a segmenter clone sharing the weights (``segmenter.clone_for_prefetch()``), so the annotator
    keeps clicking on the current image meanwhile. ``close()`` stops and joins that worker.

    Args:
        segmenter: a promptable segmenter (SAM, LiteMedSAM).
        cache: an :class:`EmbeddingCache`, None (no persistent cache), or ``"default"`` (the cache
            configured by the environment, see :meth:`EmbeddingCache.from_env`; None when disabled).
    """

    def __init__(self, segmenter: "PromptableSegmenter", cache: "EmbeddingCache | str | None" = "default") -> None:
        if isinstance(cache, str):
            if cache != "default":
                raise ValueError(f"cache must be an EmbeddingCache, None or 'default', got {cache!r}")
            self.source = EmbeddingSource.from_env(segmenter)
        else:
            self.source = EmbeddingSource(segmenter, cache)
        self.segmenter = segmenter
        self.cache: EmbeddingCache | None = self.source.cache
        self.lock = threading.RLock()
        self.current: Any = None
        self._worker: Worker | None = None
        self._ready: dict[Any, Embedding] = {}
        self._shadow: Any = None
        self.prefetch_encodes = 0
        self.cache_hits = 0

    # -- current image -------------------------------------------------------------------------
    def ensure(self, key: Any, rgb: np.ndarray) -> None:
        """Make the segmenter hold image ``key`` whose pixels are ``rgb``."""
        seg = self.segmenter
        with self.lock:
            ready = self._ready.pop(key, None)
            if ready is not None:  # kept (most recent last): going back to a window is instant
                self._ready[key] = ready
            if seg.is_set(rgb):
                pass  # the segmenter (maybe shared with a pipeline run) still holds these pixels
            elif ready is not None and ready.matches(rgb):
                seg.use_embedding(ready)
                log.debug("image %s: using the prefetched embedding", key)
            else:
                hits = self.source.hits
                seg.use_embedding(self.source.embed(rgb))
                if self.source.hits != hits:
                    self.cache_hits += 1
                    log.debug("image %s: embedding read from the cache", key)
            self.current = key

    # -- next image ----------------------------------------------------------------------------
    def _shadow_segmenter(self) -> Any | None:
        if self._shadow is None:
            self._shadow = self.segmenter.clone_for_prefetch()
        return self._shadow

    @property
    def busy(self) -> bool:
        return self._worker is not None and self._worker.is_alive()

    def prefetch(self, key: Any, rgb_loader: Callable[[], np.ndarray]) -> Worker | None:
        """Load (cache) or encode ``rgb_loader()`` in the background for image ``key``; returns
        the worker, or None when there is nothing to do (already current, ready or running)."""
        return self.prefetch_many([(key, rgb_loader)])

    def prefetch_many(self, items: Sequence[tuple[Any, Callable[[], np.ndarray]]], *,
                      delay: float = 0.0) -> Worker | None:
        """:meth:`prefetch` for several keys (the windows around a scene's view), in order, on one
        worker that starts after ``delay`` seconds and stops between items when stopped; the last
        :data:`READY` stay in memory, and every encode is written to the cache. A running prefetch
        is told to stop (a new view makes it stale) and None is returned, as when there is nothing
        to do."""
        todo = [(k, f) for k, f in items if k != self.current and k not in self._ready]
        if self.busy:
            self.stop_prefetch()
            return None
        if not todo:
            return None
        shadow = self._shadow_segmenter()
        if shadow is None:
            return None

        def work(stop: threading.Event) -> None:
            if delay and stop.wait(delay):
                return  # a prompt or a new view came first: nothing encoded behind its back
            source = EmbeddingSource(shadow, self.cache)
            for key, loader in todo:
                if stop.is_set():
                    return
                try:
                    rgb = loader()
                    if stop.is_set():
                        return
                    encoded = source.encoded
                    embedding = source.embed(rgb)
                except Exception:  # noqa: BLE001 - a failed prefetch only costs the encode later
                    log.warning("background embedding of %s failed", key, exc_info=True)
                    continue
                with self.lock:
                    self._ready[key] = embedding
                    while len(self._ready) > READY:
                        self._ready.pop(next(iter(self._ready)))
                    if source.encoded > encoded:
                        self.prefetch_encodes += 1
                    else:
                        self.cache_hits += 1

        self._worker = Worker(work, name=f"t2s-prefetch-{todo[0][0]}").start()
        return self._worker

    def stop_prefetch(self) -> None:
        """Ask a running prefetch to stop before its next encode (it is not waited for): a prompt
        needs the CPU now."""
        if self._worker is not None:
            self._worker.stop()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a running prefetch; True when none is running any more."""
        return self._worker.join(timeout) if self._worker is not None else True

    def close(self, timeout: float | None = None) -> bool:
        """Stop and join the prefetch worker (an encode in progress finishes first)."""
        if self._worker is None:
            return True
        return self._worker.close(timeout)

    def __enter__(self) -> "EmbeddingKeeper":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
