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
from text2seg_widgets.models.interrupt import Interrupted, interruptible

if TYPE_CHECKING:
    from text2seg_widgets.models.protocols import PromptableSegmenter
    from text2seg_widgets.models.embedding import Embedding
    from text2seg_widgets.models.embedding_cache import EmbeddingCache

__all__ = ["EmbeddingKeeper", "READY"]

#: prefetched embeddings kept in memory (an image, or the windows around a scene's view)
READY = 8
#: seconds a new view waits for an abandoned prefetch to end before starting its own
_ABANDON_WAIT = 0.5

log = logging.getLogger(__name__)


class EmbeddingKeeper:
    """The segmenter's image embedding: set once per image, prefetched for the next image.

    ``ensure(key, rgb)`` makes the segmenter hold image ``key``: a no-op when it already holds
    these pixels; else the prefetched embedding, else the cache's, else a fresh encode (written to
    the cache). ``prefetch(key, loader)`` loads or encodes the next image on a :class:`Worker`,
    on a segmenter clone sharing the weights (``segmenter.clone_for_prefetch()``), so the annotator
    keeps clicking on the current image meanwhile. ``close()`` stops and joins that worker.

    A prompt or a new view has the CPU first: :meth:`stop_prefetch` abandons a background encode
    between two layers of the network (:mod:`text2seg_widgets.models.interrupt`), except the
    encode of the very window the prompt needs, which it waits for instead.

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
        self._interrupt = threading.Event()  # set: the running prefetch abandons its encode
        self._encoding: Any = None  # the key the prefetch is encoding now
        self._planned: list[Any] = []  # the keys the running prefetch was given
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
        worker that starts after ``delay`` seconds; the last :data:`READY` stay in memory, and
        every encode is written to the cache. A running prefetch given other keys is abandoned (a
        new view makes it stale; it ends within a layer of its network) and this one takes its
        place; one given these keys already goes on (None is returned, as when there is nothing to do)."""
        todo = [(k, f) for k, f in items if k != self.current and k not in self._ready]
        if self.busy:
            if all(k in self._planned for k, _ in todo):
                return None  # the same windows (the same view told twice): already on their way
            self.stop_prefetch()
            if not self.join(_ABANDON_WAIT):
                return None  # still finishing a step that cannot be stopped: the next view tries again
        if not todo:
            return None
        shadow = self._shadow_segmenter()
        if shadow is None:
            return None
        interrupt = self._interrupt = threading.Event()
        self._planned = [k for k, _ in todo]

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
                    self._encoding = key
                    with interruptible(interrupt):
                        embedding = source.embed(rgb)
                except Interrupted:
                    log.debug("background embedding of %s abandoned: a prompt or a new view came", key)
                    return
                except Exception:  # noqa: BLE001 - a failed prefetch only costs the encode later
                    log.warning("background embedding of %s failed", key, exc_info=True)
                    continue
                finally:
                    self._encoding = None
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

    def stop_prefetch(self, keep: Any = None, timeout: float | None = None) -> None:
        """Stop a running prefetch: a prompt or a new view needs the CPU now. It starts no further
        encode and abandons the one in progress, unless that one is for ``keep`` (the window a
        prompt needs): then it is waited for (up to ``timeout`` seconds), being further along than
        a new encode of the same pixels would be, and lands in the ready embeddings."""
        worker = self._worker
        if worker is None or not worker.is_alive():
            return
        worker.stop()
        if keep is not None and self._encoding == keep:
            log.debug("waiting for the background embedding of %s, which a prompt needs", keep)
            worker.join(timeout)
        else:
            self._interrupt.set()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for a running prefetch; True when none is running any more."""
        return self._worker.join(timeout) if self._worker is not None else True

    def close(self, timeout: float | None = None) -> bool:
        """Stop and join the prefetch worker (an encode in progress is abandoned)."""
        if self._worker is None:
            return True
        self._interrupt.set()
        return self._worker.close(timeout)

    def __enter__(self) -> "EmbeddingKeeper":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
