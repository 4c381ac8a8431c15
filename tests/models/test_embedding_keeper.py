"""The Annotator's EmbeddingKeeper: current and prefetched image through the public embedding API,
read from and written to the persistent cache, prefetch on an owned Worker that close() joins."""

from __future__ import annotations

import numpy as np
import pytest

from tests.tiny_models import synthetic_rgb
from text2seg_widgets.core.workers import Worker
from text2seg_widgets.models.embedding_cache import EmbeddingCache
from text2seg_widgets.models.tiny import tiny_sam_segmenter
from text2seg_widgets.widgets.embeddings import EmbeddingKeeper

BOX = np.array([10, 10, 70, 50])


@pytest.fixture()
def cache(tmp_path) -> EmbeddingCache:
    return EmbeddingCache(tmp_path / "embeddings", max_gb=1)


def test_ensure_writes_the_cache_and_a_fresh_keeper_reads_it(cache):
    image = synthetic_rgb(80, 120, seed=1)
    seg = tiny_sam_segmenter(seed=1)
    with EmbeddingKeeper(seg, cache=cache) as keeper:
        keeper.ensure(1, image)
        keeper.ensure(1, image)
        expected = seg.predict(box=BOX).masks
    assert seg.encoder_calls == 1 and cache.writes == 1 and len(cache) == 1
    fresh = tiny_sam_segmenter(seed=1)  # e.g. a new kernel: same weights, nothing in memory
    with EmbeddingKeeper(fresh, cache=cache) as keeper:
        keeper.ensure(1, image)
        assert fresh.encoder_calls == 0 and keeper.cache_hits == 1
        got = fresh.predict(box=BOX).masks
    iou = (got & expected).sum() / max((got | expected).sum(), 1)
    assert iou >= 0.99
    other_weights = tiny_sam_segmenter(seed=2)
    with EmbeddingKeeper(other_weights, cache=cache) as keeper:
        keeper.ensure(1, image)
    assert other_weights.encoder_calls == 1 and len(cache) == 2  # another sha256 never reuses it


def test_prefetch_runs_on_a_worker_and_reads_the_cache(cache):
    first, second = synthetic_rgb(64, 64, seed=2), synthetic_rgb(64, 64, seed=3)
    cache.put(tiny_sam_segmenter(seed=1).encode(second))  # e.g. written by `embed` overnight
    seg = tiny_sam_segmenter(seed=1)
    keeper = EmbeddingKeeper(seg, cache=cache)
    try:
        keeper.ensure(1, first)
        worker = keeper.prefetch(2, lambda: second)
        assert isinstance(worker, Worker)
        assert keeper.prefetch(2, lambda: second) is None  # already running or ready
        assert keeper.join(timeout=60)
        assert keeper.prefetch_encodes == 0 and keeper.cache_hits == 1
        keeper.ensure(2, second)
        assert seg.encoder_calls == 1 and seg.is_set(second)
    finally:
        assert keeper.close(timeout=60)


def test_prefetch_encodes_on_a_clone_and_writes_the_cache(cache):
    first, second = synthetic_rgb(64, 64, seed=4), synthetic_rgb(64, 64, seed=5)
    seg = tiny_sam_segmenter(seed=1)
    with EmbeddingKeeper(seg, cache=cache) as keeper:
        keeper.ensure(1, first)
        keeper.prefetch(2, lambda: second)
        keeper.join(timeout=60)
        assert keeper.prefetch_encodes == 1 and seg.encoder_calls == 1  # the clone counted it
        assert (seg.identity, second) in cache
        keeper.ensure(2, second)
        assert seg.encoder_calls == 1 and keeper.current == 2


def test_keeper_without_cache_encodes_each_image_once():
    seg = tiny_sam_segmenter(seed=1)
    keeper = EmbeddingKeeper(seg, cache=None)
    keeper.ensure(1, synthetic_rgb(8, 8))
    keeper.ensure(1, synthetic_rgb(8, 8))
    assert seg.encoder_calls == 1 and keeper.current == 1 and keeper.cache_hits == 0
    worker = keeper.prefetch(2, lambda: synthetic_rgb(8, 8, seed=5))
    assert worker is not None and keeper.join(60)
    keeper.ensure(2, synthetic_rgb(8, 8, seed=5))  # the prefetched embedding: no encode here
    assert seg.encoder_calls == 1 and keeper.prefetch_encodes == 1
    assert keeper.close() is True


def test_default_cache_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE_GB", "0")
    assert EmbeddingKeeper(tiny_sam_segmenter(seed=1)).cache is None
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE_GB", "0.5")
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE", str(tmp_path / "c"))
    keeper = EmbeddingKeeper(tiny_sam_segmenter(seed=1))
    assert keeper.cache is not None and keeper.cache.root == tmp_path / "c"
    assert keeper.cache.max_bytes == 500_000_000
