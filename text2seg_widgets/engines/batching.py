"""Batched image embeddings: the segmenter's encoder run once for a batch of tiles.

The SAM image encoder is by far the most expensive step of the pipeline (a ViT-B at 1024 px), and
on a GPU a batch of tiles through it costs little more than one. Everything here goes through the
segmenter's public embedding API (``encode_batch`` / ``use_embedding``, see
:mod:`text2seg_widgets.models.embedding`); nothing touches an adapter's insides.

* :class:`EmbeddingBatcher` returns one :class:`Embedding` per tile through the one cache-through
  path (:class:`~text2seg_widgets.models.embedding_source.EmbeddingSource`): read from the
  persistent cache when it holds the tile, the rest encoded in ONE forward pass and written to the
  cache (so a pseudo-label run fills the cache for the Annotator at no extra cost). It is the tile
  loop's handle on that: ``encode(images)`` then, tile by
  tile, ``install(image, embedding)`` just before the pipeline runs on it; the pipeline's own
  ``set_image`` then finds the embedding held and encodes nothing.

* :func:`embed_items` / :class:`RayEmbedder` embed whole projects into the cache (the ``embed``
  command): resumable (what the cache holds is skipped), locally or on a Ray actor pool whose
  actors return float32 features to the driver, the single writer of the cache.

What batches: SAM v1 and LiteMedSAM (any segmenter with ``encode_batch`` and ``use_embedding``).
What does not (one forward pass per tile, batched *within* the tile by the adapters): Grounding
DINO, CLIP Surgery, CLIP crop scoring, SAM box decoding, SAM 3.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch

from text2seg_widgets.models.embedding import Embedding, image_digest
from text2seg_widgets.models.embedding_source import EmbeddingSource
from text2seg_widgets.models.protocols import PromptableSegmenter

if TYPE_CHECKING:
    from text2seg_widgets.models.embedding_cache import EmbeddingCache

__all__ = ["EmbeddingBatcher", "EmbedItem", "EmbedReport", "embed_items",
           "RayEmbedder"]

log = logging.getLogger(__name__)


class EmbeddingBatcher:
    """Encode tiles together (:meth:`encode`), then :meth:`install` one embedding at a time.
    ``batches`` counts encoder passes that ran; ``cache`` (optional) is read and written through
    the one cache-through path, :class:`~text2seg_widgets.models.embedding_source.EmbeddingSource`."""

    def __init__(self, segmenter: "PromptableSegmenter", cache: "EmbeddingCache | None" = None) -> None:
        self.segmenter = segmenter
        self.cache = cache
        self.source = EmbeddingSource(segmenter, cache)
        self.batches = 0

    @staticmethod
    def for_segmenter(segmenter: "PromptableSegmenter | None",
                      cache: "EmbeddingCache | None" = None) -> "EmbeddingBatcher | None":
        """The batcher for this segmenter, or None without a segmenter (then tiles are encoded
        one by one by the pipeline)."""
        return None if segmenter is None else EmbeddingBatcher(segmenter, cache)

    @staticmethod
    def from_env(segmenter: "PromptableSegmenter | None", *, batched: bool = False) -> "EmbeddingBatcher | None":
        """The tile loop's embedding hook as the environment configures it (the one place that
        reads ``TEXT2SEG_EMBED_CACHE*`` for the engines): a batcher through the persistent cache
        when it is on, or without one when ``batched`` (several tiles per encoder pass); None
        otherwise (the pipeline encodes each tile itself)."""
        from text2seg_widgets.models.embedding_cache import EmbeddingCache

        cache = EmbeddingCache.from_env()
        if cache is None and not batched:
            return None
        return EmbeddingBatcher.for_segmenter(segmenter, cache)

    def encode(self, images: Sequence[np.ndarray], *, sources: Sequence[str | None] | None = None,
               windows: Sequence[Any] | None = None) -> list[Embedding]:
        """One embedding per image: hits from the cache, the rest in ONE encoder pass."""
        before = self.source.encoded
        out = self.source.embed_many(images, sources=sources, windows=windows)
        if self.source.encoded != before:
            self.batches += 1
        return out

    def install(self, image: np.ndarray, embedding: Embedding) -> None:
        """Make the segmenter decode against ``embedding`` (the embedding of ``image``)."""
        if not embedding.matches(image):
            raise ValueError("install: this embedding was computed for other pixels than this tile")
        self.segmenter.use_embedding(embedding)


# -- embedding whole projects (the `embed` command) ---------------------------------------------------
@dataclass
class EmbedItem:
    """One image to embed: ``key`` (e.g. the project image id), its RGB pixels exactly as the
    Annotator will show them, and where they came from (recorded in the cache metadata)."""

    key: Any
    rgb: np.ndarray
    source: str | None = None
    window: tuple[int, int, int, int] | None = None


@dataclass
class EmbedReport:
    """What an embed run did: images seen, already cached (skipped), encoded, failed (key -> error)."""

    images: int = 0
    cached: int = 0
    encoded: int = 0
    failed: dict[Any, str] = field(default_factory=dict)
    seconds: float = 0.0
    encode_seconds: float = 0.0
    startup_seconds: float = 0.0

    @property
    def tiles_per_s(self) -> float:
        """Encoded images per second of wall time (``seconds``: model loading and Ray start-up,
        ``startup_seconds``, are not in it)."""
        return self.encoded / self.seconds if self.seconds > 0 else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "cached": self.cached, "encoded": self.encoded,
                "failed": {str(k): v for k, v in self.failed.items()}, "seconds": round(self.seconds, 3),
                "encode_seconds": round(self.encode_seconds, 3), "startup_seconds": round(self.startup_seconds, 3),
                "tiles_per_s": round(self.tiles_per_s, 4)}


def _batches_to_encode(items: Iterable[EmbedItem], identity: Any, cache: "EmbeddingCache", batch: int,
                       report: EmbedReport, progress: Callable[[int], None] | None,
                       verify: bool = False) -> Iterator[list[EmbedItem]]:
    """The items the cache does not hold (or holds damaged), in batches of ``batch``; good cached
    ones are counted and skipped."""
    pending: list[EmbedItem] = []
    for item in items:
        report.images += 1
        if cache.check(identity, image_digest(item.rgb), full=verify):
            report.cached += 1
            if progress:
                progress(1)
            continue
        pending.append(item)
        if len(pending) >= batch:
            yield pending
            pending = []
    if pending:
        yield pending


def embed_items(segmenter: "PromptableSegmenter", items: Iterable[EmbedItem], cache: "EmbeddingCache", *, batch: int = 1,
                progress: Callable[[int], None] | None = None, verify: bool = False) -> EmbedReport:
    """Encode every item the cache does not hold yet (``batch`` images per encoder pass) and write
    it to ``cache``. Resumable: run it again and it skips what is there: an entry is skipped only
    when its header checks out (``verify``: its whole tensor too); a damaged one is re-encoded. A
    batch whose encoding raises is recorded in ``failed`` and the run goes on."""
    if batch < 1:
        raise ValueError(f"batch must be at least 1, got {batch}")
    report, start = EmbedReport(), time.perf_counter()
    source = EmbeddingSource(segmenter, cache)
    for chunk in _batches_to_encode(items, segmenter.identity, cache, batch, report, progress, verify):
        t0 = time.perf_counter()
        try:
            source.embed_many([i.rgb for i in chunk], sources=[i.source for i in chunk],
                              windows=[i.window for i in chunk])
            report.encoded += len(chunk)
        except Exception as exc:  # noqa: BLE001 - one bad batch must not end an overnight run
            log.warning("embedding %s failed: %s", [i.key for i in chunk], exc)
            report.failed.update({i.key: str(exc) for i in chunk})
        report.encode_seconds += time.perf_counter() - t0
        if progress:
            progress(len(chunk))
    report.seconds = time.perf_counter() - start
    return report


class _EmbedActor:
    """A Ray actor: the segmenter loaded once; encodes batches and returns float32 features + facts."""

    def __init__(self, models: Any, device: str, dtype: str, threads: int | None) -> None:
        from text2seg_widgets.models.factory import load_models

        if threads:
            torch.set_num_threads(int(threads))
        segmenter = load_models(models, device=device, dtype=dtype).segmenter
        if segmenter is None:
            raise ValueError(f"the models {models!r} have no segmenter to embed with")
        self.segmenter: PromptableSegmenter = segmenter

    def identity(self) -> Any:
        return self.segmenter.identity

    def encode_tagged(self, tag: int, rgbs: list[np.ndarray]) -> tuple[int, list[dict[str, Any]]]:
        """``(tag, one dict per image)``: float32 features and the embedding's facts, or ``{"error": ...}``."""
        try:
            embeddings = self.segmenter.encode_batch(rgbs)
        except Exception as exc:  # noqa: BLE001 - reported per image to the driver
            return tag, [{"error": f"{type(exc).__name__}: {exc}"} for _ in rgbs]
        return tag, [{"features": emb.features.to("cpu", torch.float32).numpy(), "model": emb.model,
                      "weights_sha256": emb.weights_sha256, "preprocessing": emb.preprocessing,
                      "input_hw": emb.input_hw, "resized_hw": emb.resized_hw, "image_digest": emb.image_digest}
                     for emb in embeddings]


class RayEmbedder:
    """``embed`` on Ray: an actor pool of segmenters (one per GPU, else CPU shares as the Ray
    engine does); the driver reads the images, skips what the cache holds, sends the rest in
    batches and writes the returned fp16 embeddings (the only writer of the cache)."""

    def __init__(self, models: Any, *, device: str = "auto", dtype: str = "auto", workers: int | None = None,
                 address: str | None = None) -> None:
        self.models, self.device, self.dtype = models, device, dtype
        self.workers, self.address = workers, address

    def _connect(self) -> Any:
        from text2seg_widgets.engines.ray_cluster import check_address, init_local
        from text2seg_widgets.errors import require

        ray = require("ray", "ray")
        if self.address:
            check_address(self.address)
        if not ray.is_initialized():
            if self.address:
                ray.init(address=self.address, logging_level=logging.WARNING)
            else:
                init_local(ray)
        return ray

    def _actors(self, ray: Any) -> list[Any]:
        from text2seg_widgets.engines.ray_cluster import worker_resources

        cluster = ray.cluster_resources()
        n, cpus, gpus = worker_resources(float(cluster.get("CPU", 1)), float(cluster.get("GPU", 0)),
                                         self.device, self.workers)
        threads = max(1, int(round(cpus))) if gpus == 0 else None
        remote = ray.remote(_EmbedActor)
        return [remote.options(num_cpus=cpus, num_gpus=gpus or None).remote(self.models, self.device, self.dtype,
                                                                            threads) for _ in range(n)]

    def run(self, items: Iterable[EmbedItem], cache: "EmbeddingCache", *, batch: int = 1,
            progress: Callable[[int], None] | None = None, verify: bool = False) -> EmbedReport:
        """Like :func:`embed_items`, with the encoding spread over the actor pool."""
        from ray.util.actor_pool import ActorPool

        t0 = time.perf_counter()
        ray = self._connect()
        report = EmbedReport()
        actors = self._actors(ray)
        try:
            identity = ray.get([a.identity.remote() for a in actors])[0]  # every replica loaded
            start = time.perf_counter()
            report.startup_seconds = start - t0
            pool = ActorPool(actors)
            chunks: dict[int, list[EmbedItem]] = {}

            def collect() -> None:
                tag, results = pool.get_next_unordered()
                chunk = chunks.pop(tag)
                self._store(chunk, results, cache, report)
                if progress:
                    progress(len(chunk))

            for tag, chunk in enumerate(_batches_to_encode(items, identity, cache, batch, report, progress,
                                                             verify)):
                while not pool.has_free():
                    collect()
                chunks[tag] = chunk
                pool.submit(lambda actor, value: actor.encode_tagged.remote(*value), (tag, [i.rgb for i in chunk]))
            while pool.has_next():
                collect()
        finally:
            for actor in actors:
                ray.kill(actor)
        report.seconds = time.perf_counter() - start
        report.encode_seconds = report.seconds
        return report

    @staticmethod
    def _store(chunk: list[EmbedItem], results: list[dict[str, Any]], cache: "EmbeddingCache",
               report: EmbedReport) -> None:
        for item, data in zip(chunk, results):
            if "error" in data:
                report.failed[item.key] = data["error"]
                continue
            features = torch.from_numpy(np.array(data["features"])).float()  # copy: Ray's arrays are read-only
            emb = Embedding(features, data["model"], data["weights_sha256"], data["preprocessing"],
                            data["input_hw"], data["resized_hw"], data["image_digest"])
            cache.put(emb, source=item.source, window=item.window)
            report.encoded += 1
