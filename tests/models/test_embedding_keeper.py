"""The Annotator's EmbeddingKeeper: current and prefetched image through the public embedding API,
read from and written to the persistent cache, prefetch on an owned Worker that close() joins."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

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


def test_a_prompt_abandons_a_background_encode_but_waits_for_the_one_of_its_own_window(cache):
    seg = tiny_sam_segmenter(seed=1)
    images = {k: synthetic_rgb(64, 64, seed=10 + k) for k in range(4)}
    entered: list[str] = []
    started = threading.Event()

    def slow_stage(module, args):  # each encoder stage of a background encode takes 0.3 s
        name = threading.current_thread().name
        entered.append(name)
        if name.startswith("t2s-prefetch"):
            started.set()
            time.sleep(0.3)

    enc = seg.model.image_encoder
    hooks = [m.register_forward_pre_hook(slow_stage) for m in (enc.patch_embed, *enc.blocks, enc.neck)]
    keeper = EmbeddingKeeper(seg, cache=cache)
    try:
        # a new view or a box on another window: the encode in progress stops inside its first stage
        keeper.prefetch_many([(k, lambda k=k: images[k]) for k in (1, 2)])
        assert started.wait(60)
        keeper.stop_prefetch()
        assert keeper.join(timeout=60)
        assert keeper.prefetch_encodes == 0 and cache.writes == 0
        assert sum(n.startswith("t2s-prefetch") for n in entered) == 1
        keeper.ensure(1, images[1])  # the shared network is intact: same embedding as a fresh model
        assert seg.encoder_calls == 1
        fresh = tiny_sam_segmenter(seed=1).encode(images[1]).features
        assert torch.allclose(seg.embedding.features, fresh, atol=1e-6)

        # a box on the window being encoded now: that encode is waited for, the next one not begun
        started.clear()
        entered.clear()
        keeper.prefetch_many([(k, lambda k=k: images[k]) for k in (2, 3)])
        assert started.wait(60)
        keeper.stop_prefetch(keep=2, timeout=60)
        assert not keeper.busy and keeper.prefetch_encodes == 1
        assert sum(n.startswith("t2s-prefetch") for n in entered) == 2 + len(enc.blocks)  # one whole encode
        keeper.ensure(2, images[2])
        assert seg.encoder_calls == 1 and seg.is_set(images[2])  # nothing encoded again
    finally:
        for h in hooks:
            h.remove()
        assert keeper.close(timeout=60)


def test_the_same_view_told_twice_keeps_the_running_prefetch(cache):
    seg = tiny_sam_segmenter(seed=1)
    images = {k: synthetic_rgb(64, 64, seed=20 + k) for k in range(3)}
    with EmbeddingKeeper(seg, cache=cache) as keeper:
        items = [(k, lambda k=k: images[k]) for k in images]
        first = keeper.prefetch_many(items, delay=30.0)
        assert first is not None and keeper.prefetch_many(items[1:], delay=30.0) is None
        assert keeper.busy  # still the first one, waiting for the view to rest
        second = keeper.prefetch_many(items[:1] + [(9, lambda: images[0])], delay=0.0)  # another view
        assert second is not None and second is not first and not first.is_alive()
        assert keeper.join(timeout=120) and keeper.prefetch_encodes == 1 and keeper.cache_hits == 1
