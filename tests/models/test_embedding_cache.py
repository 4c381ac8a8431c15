"""The persistent embedding cache: keyed by pixels + model identity, float32 safetensors files that
decode bit-identical masks (results never depend on the cache), LRU eviction under a size limit, atomic writes that two
processes can race on, and corrupt or truncated files detected and recomputed."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from tests.tiny_models import synthetic_rgb
from text2seg_widgets.errors import InputError
from text2seg_widgets.models.embedding import Embedding, ModelIdentity, image_digest
from text2seg_widgets.models.embedding_cache import EmbeddingCache
from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
from text2seg_widgets.models.tiny import tiny_sam_segmenter

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def cache(tmp_path) -> EmbeddingCache:
    return EmbeddingCache(tmp_path / "cache", max_gb=1)


@pytest.fixture(scope="module")
def lite() -> LiteMedSamSegmenter:
    return LiteMedSamSegmenter.from_checkpoint(device="cpu")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def test_round_trip_is_float32_safetensors_with_metadata(cache):
    seg = tiny_sam_segmenter(seed=1)
    image = synthetic_rgb(60, 90, seed=1)
    emb = seg.encode(image)
    path = cache.put(emb, source="a.tif", window=(0, 0, 90, 60))
    assert path == cache.path_for(seg.identity, image) and path.parent.parent == cache.root
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left
    with safe_open(str(path), framework="pt") as fh:
        meta = fh.metadata()
        stored = fh.get_tensor("features")
    assert stored.dtype == torch.float32 and tuple(stored.shape) == (1, 32, 16, 16)
    assert meta["weights_sha256"] == seg.identity.weights_sha256 and meta["model"] == "tiny-sam"
    assert meta["image_digest"] == image_digest(image) and json.loads(meta["input_hw"]) == [60, 90]
    assert json.loads(meta["window"]) == [0, 0, 90, 60] and meta["source"] == "a.tif"
    assert emb.nbytes < path.stat().st_size < emb.nbytes + 4096  # the tensor plus a header
    got = cache.get(seg.identity, image)
    assert isinstance(got, Embedding) and got.features.dtype == torch.float32
    assert (got.input_hw, got.resized_hw, got.image_digest) == (emb.input_hw, emb.resized_hw, emb.image_digest)
    assert torch.equal(got.features, emb.features)  # bit-identical
    assert cache.get(seg.identity, image_digest(image)) is not None  # by digest too
    assert (cache.hits, cache.misses, cache.writes) == (2, 0, 1)


def test_other_weights_or_pixels_never_reuse_an_embedding(cache):
    seg = tiny_sam_segmenter(seed=1)
    image = synthetic_rgb(60, 90, seed=1)
    cache.put(seg.encode(image))
    assert cache.get(tiny_sam_segmenter(seed=2).identity, image) is None  # other sha256
    assert cache.get(seg.identity, synthetic_rgb(60, 90, seed=2)) is None  # other pixels
    other_prep = ModelIdentity("tiny-sam", seg.identity.weights_sha256, "another resize")
    assert cache.get(other_prep, image) is None
    assert cache.misses == 3 and len(cache) == 1


def test_round_trip_decodes_identical_masks_tiny_sam(cache):
    seg = tiny_sam_segmenter(seed=1)
    image = synthetic_rgb(120, 200, seed=3)
    emb = seg.encode(image)
    cache.put(emb)
    loaded = cache.get(seg.identity, image)
    prompts = [dict(box=np.array([10, 10, 120, 100])), dict(box=np.array([100, 20, 190, 110])),
               dict(points=np.array([[50.0, 60.0]]), point_labels=np.array([1])),
               dict(points=np.array([[150.0, 30.0], [20.0, 20.0]]), point_labels=np.array([1, 0]))]
    ious = []
    for prompt in prompts:
        seg.use_embedding(emb)
        ref = seg.predict(**prompt).masks[0]
        seg.use_embedding(loaded)
        got = seg.predict(**prompt).masks[0]
        assert ref.any()
        ious.append(_iou(ref, got))
    assert ious == [1.0] * len(prompts)


def test_round_trip_decodes_identical_masks_litemedsam(cache, lite, rs_samples):
    image = np.asarray(Image.open(rs_samples / "loveda" / "images" / "0.png").convert("RGB"))
    emb = lite.encode(image)
    cache.put(emb)
    loaded = cache.get(lite.identity, image)
    boxes = np.array([[100, 100, 300, 260], [500, 400, 700, 650], [20, 700, 400, 1000]], dtype=float)
    lite.use_embedding(emb)
    ref = lite.predict_boxes(boxes).masks
    lite.use_embedding(loaded)
    got = lite.predict_boxes(boxes).masks
    assert all(m.any() for m in ref)
    assert all(np.array_equal(a, b) for a, b in zip(ref, got))  # not a pixel moves


def _fake(k: int, shape=(1, 8, 16, 16)) -> Embedding:
    gen = torch.Generator().manual_seed(k)
    return Embedding(torch.randn(*shape, generator=gen), "fake", "e" * 64, "prep", (32, 32), (32, 32), f"{k:032x}")


IDENT = ModelIdentity("fake", "e" * 64, "prep")


def test_lru_eviction_keeps_the_limit_and_the_recently_used(tmp_path):
    probe = EmbeddingCache(tmp_path / "probe", max_gb=1)
    size = probe.put(_fake(0)).stat().st_size
    cache = EmbeddingCache(tmp_path / "lru", max_gb=3.5 * size / 1e9)  # room for three files
    paths = [cache.put(_fake(k)) for k in range(3)]
    for k, path in enumerate(paths):
        os.utime(path, (1000.0 + k, 1000.0 + k))  # written in order 0, 1, 2
    assert cache.get(IDENT, _fake(0).image_digest) is not None  # a hit makes 0 the most recent
    cache.put(_fake(3))
    assert cache.evicted == 1 and len(cache) == 3 and cache.size_bytes() <= cache.max_bytes
    present = [cache.get(IDENT, _fake(k).image_digest) is not None for k in range(4)]
    assert present == [True, False, True, True]  # 1 was the least recently used


def _corrupt_truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _corrupt_flip_tensor_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-10] ^= 0xFF
    path.write_bytes(bytes(data))


def _corrupt_garbage(path: Path) -> None:
    path.write_bytes(b"not a safetensors file at all")


def _corrupt_empty(path: Path) -> None:
    path.write_bytes(b"")


def _corrupt_header_length(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[:8] = (10 ** 9).to_bytes(8, "little")
    path.write_bytes(bytes(data))


def _corrupt_other_identity(path: Path) -> None:
    from safetensors.torch import load, save

    data = path.read_bytes()
    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata())
    meta["weights_sha256"] = "0" * 64
    path.write_bytes(save(load(data), metadata=meta))


def _edit_header(path: Path, old: bytes, new: bytes) -> None:
    """Change header text in place (same length), as a disk error or a careless edit would."""
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    header = data[8:8 + n]
    assert old in header and len(old) == len(new)
    path.write_bytes(data[:8] + header.replace(old, new, 1) + data[8 + n:])


def _corrupt_dtype(path: Path) -> None:
    _edit_header(path, b'"dtype":"F32"', b'"dtype":"I32"')  # same size: the bytes still fit


def _corrupt_input_hw(path: Path) -> None:
    _edit_header(path, b'"input_hw":"[40, 40]"', b'"input_hw":"[40, 41]"')


def _corrupt_resized_hw(path: Path) -> None:
    data = path.read_bytes()
    n = int.from_bytes(data[:8], "little")
    value = json.loads(data[8:8 + n])["__metadata__"]["resized_hw"]  # e.g. "[64, 64]"
    digit = value[1]
    changed = value[0] + str((int(digit) + 1) % 10) + value[2:]
    _edit_header(path, f'"resized_hw":"{value}"'.encode(), f'"resized_hw":"{changed}"'.encode())


@pytest.mark.parametrize("damage", [_corrupt_truncate, _corrupt_flip_tensor_byte, _corrupt_garbage, _corrupt_empty,
                                    _corrupt_header_length, _corrupt_other_identity, _corrupt_dtype,
                                    _corrupt_input_hw, _corrupt_resized_hw])
def test_a_damaged_file_is_detected_dropped_and_recomputed(cache, damage):
    seg = tiny_sam_segmenter(seed=1)
    image = synthetic_rgb(40, 40, seed=4)
    path = cache.put(seg.encode(image))
    damage(path)
    assert cache.get(seg.identity, image) is None
    assert cache.corrupt == 1 and not path.exists()
    calls = seg.encoder_calls
    from text2seg_widgets.models.embedding_source import EmbeddingSource

    again = EmbeddingSource(seg, cache).embed(image)
    assert seg.encoder_calls == calls + 1 and path.is_file()
    assert torch.equal(cache.get(seg.identity, image).features, again.features)


@pytest.mark.parametrize("damage", [_corrupt_dtype, _corrupt_input_hw, _corrupt_flip_tensor_byte,
                                    _corrupt_truncate])
def test_check_finds_damage_from_the_header_or_in_full(cache, damage):
    seg = tiny_sam_segmenter(seed=1)
    image = synthetic_rgb(40, 40, seed=4)
    path = cache.put(seg.encode(image))
    assert cache.check(seg.identity, image) and cache.check(seg.identity, image, full=True)
    damage(path)
    header_only = damage is not _corrupt_flip_tensor_byte  # a flipped tensor byte needs a full read
    assert cache.check(seg.identity, image) is not header_only
    assert not cache.check(seg.identity, image, full=True) and not path.exists()


_WRITER = textwrap.dedent("""
    import sys, torch
    from text2seg_widgets.models.embedding import Embedding
    from text2seg_widgets.models.embedding_cache import EmbeddingCache
    root, tag, rounds = sys.argv[1], sys.argv[2], int(sys.argv[3])
    cache = EmbeddingCache(root, max_gb=1)
    for r in range(rounds):
        for k in range(4):
            gen = torch.Generator().manual_seed(k)
            feats = torch.randn(1, 256, 64, 64, generator=gen)  # 4 MB: writes overlap
            emb = Embedding(feats, "fake", "e" * 64, "prep", (1024, 1024), (1024, 1024), f"{k:032x}")
            cache.put(emb, source=f"{tag}-{r}")
    print("ok", cache.writes)
""")


def test_two_processes_writing_the_same_keys_leave_valid_files(tmp_path):
    root = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    procs = [subprocess.Popen([sys.executable, "-c", _WRITER, str(root), tag, "6"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for tag in ("a", "b")]
    reader = EmbeddingCache(root, max_gb=1)
    reads = 0
    deadline = time.monotonic() + 600
    while any(p.poll() is None for p in procs) and time.monotonic() < deadline:
        for k in range(4):
            reads += reader.get(IDENT, f"{k:032x}") is not None
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-2000:] for _, err in outs]
    assert [out.split() for out, _ in outs] == [["ok", "24"], ["ok", "24"]]
    assert reader.corrupt == 0  # a reader never saw a half-written file
    files = sorted(p.name for p in root.rglob("*") if p.is_file())
    assert len(files) == 4 and not [f for f in files if f.startswith(".tmp-")]
    for k in range(4):
        got = reader.get(IDENT, f"{k:032x}")
        expected = torch.randn(1, 256, 64, 64, generator=torch.Generator().manual_seed(k))
        assert got is not None and torch.equal(got.features, expected)
    assert reader.corrupt == 0


def test_stale_temporary_files_are_swept(cache):
    path = cache.put(_fake(1))
    stale = path.parent / ".tmp-dead.safetensors"
    stale.write_bytes(b"half")
    os.utime(stale, (time.time() - 7200, time.time() - 7200))
    fresh = path.parent / ".tmp-live.safetensors"
    fresh.write_bytes(b"being written")
    assert len(cache) == 1
    assert not stale.exists() and fresh.exists()


def test_settings_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE_GB", "0")
    assert EmbeddingCache.from_env() is None
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE_GB", "2.5")
    monkeypatch.delenv("TEXT2SEG_EMBED_CACHE", raising=False)
    monkeypatch.setenv("TEXT2SEG_CACHE", str(tmp_path / "t2s"))
    cache = EmbeddingCache.from_env()
    assert cache.root == tmp_path / "t2s" / "embeddings" and cache.max_bytes == 2_500_000_000
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE", str(tmp_path / "elsewhere"))
    assert EmbeddingCache().root == tmp_path / "elsewhere"
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE_GB", "lots")
    with pytest.raises(InputError, match="not a number"):
        EmbeddingCache.from_env()
    with pytest.raises(InputError, match="> 0 GB"):
        EmbeddingCache(tmp_path, max_gb=0)
