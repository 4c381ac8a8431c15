"""Readers and writers of the embedding cache: the `embed` command (local and Ray, resumable),
the Annotator's keeper reading what `embed` wrote, and pseudo-label writing it for free."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from text2seg_widgets.cli import main
from text2seg_widgets.engines import LocalEngine
from text2seg_widgets.models.embedding_cache import EmbeddingCache
from text2seg_widgets.models.tiny import tiny_sam_segmenter
from text2seg_widgets.store import Project
from text2seg_widgets.widgets.embeddings import EmbeddingKeeper
from text2seg_widgets.widgets.overlay import load_image


@pytest.fixture(scope="module")
def images(rs_samples: Path) -> list[Path]:
    paths = [rs_samples / "epfl_roads" / "images" / "satImage_001.png",
             rs_samples / "epfl_roads" / "images" / "satImage_002.png",
             sorted((rs_samples / "potsdam" / "images").glob("*.png"))[0]]
    assert all(p.is_file() for p in paths), "shared sample tiles are missing"
    return paths


@pytest.fixture()
def project(tmp_path, images) -> Path:
    folder = tmp_path / "project"
    with Project.create(folder) as proj:
        for path in images:
            proj.add_image(path)
    return folder


def _embed(project: Path, cache_dir: Path, *extra: str) -> dict:
    result = CliRunner().invoke(main, ["embed", str(project), "--models", "tiny", "--device", "cpu",
                                       "--cache-dir", str(cache_dir), "--cache-gb", "1", "--no-progress", *extra])
    assert result.exit_code == 0, result.output + repr(result.exception)
    return json.loads(result.output[result.output.index("{"):])


def _annotator_pixels(project: Path) -> dict[int, np.ndarray]:
    with Project.open(project) as proj:
        return {rec.id: load_image(rec.path, rec.window).rgb for rec in proj.images()}


def test_embed_fills_the_cache_resumably_and_the_annotator_reads_it(project, tmp_path):
    cache_dir = tmp_path / "cache"
    first = _embed(project, cache_dir)
    assert (first["images"], first["encoded"], first["cached"], first["failed"]) == (3, 3, 0, {})
    assert first["cache_files"] == 3 and first["segmenter"] == "tiny" and first["tiles_per_s"] > 0
    seg = tiny_sam_segmenter(device="cpu")  # the `tiny` preset's segmenter: same weights, same identity
    cache = EmbeddingCache(cache_dir, max_gb=1)
    pixels = _annotator_pixels(project)
    for image_id, rgb in pixels.items():
        got = cache.get(seg.identity, rgb)
        assert got is not None and got.input_hw == rgb.shape[:2]
        torch.testing.assert_close(got.features, seg.encode(rgb).features, atol=5e-3, rtol=5e-3)
    again = _embed(project, cache_dir)
    assert (again["encoded"], again["cached"]) == (0, 3)  # resumable: nothing encoded twice
    next(cache_dir.rglob("*.safetensors")).unlink()
    third = _embed(project, cache_dir, "--images", "1", "--images", "2", "--images", "3")
    assert (third["encoded"], third["cached"]) == (1, 2)
    fresh = tiny_sam_segmenter(device="cpu")
    with EmbeddingKeeper(fresh, cache=EmbeddingCache(cache_dir, max_gb=1)) as keeper:
        for image_id, rgb in pixels.items():
            keeper.ensure(image_id, rgb)
        keeper.prefetch("again", lambda: pixels[1])
        keeper.join(timeout=60)
    assert fresh.encoder_calls == 0 and keeper.cache_hits == 4 and keeper.prefetch_encodes == 0


def test_embed_refuses_a_turned_off_cache_and_bad_options(project, monkeypatch):
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE_GB", "0")
    result = CliRunner().invoke(main, ["embed", str(project), "--models", "tiny", "--no-progress"])
    assert result.exit_code != 0 and "TEXT2SEG_EMBED_CACHE_GB=0" in result.output
    result = CliRunner().invoke(main, ["embed", str(project), "--models", "tiny", "--workers", "2",
                                       "--cache-gb", "1"])
    assert result.exit_code != 0 and "--engine ray" in result.output


@pytest.mark.ray
def test_embed_on_ray_writes_the_same_embeddings(project, tmp_path):
    from text2seg_widgets.engines.ray_engine import init_local
    from text2seg_widgets.errors import require

    ray = require("ray", "ray")
    if not ray.is_initialized():
        init_local(ray, attempts=3, num_cpus=2)
    try:
        summary = _embed(project, tmp_path / "ray-cache", "--engine", "ray", "--workers", "2")
        assert (summary["encoded"], summary["cached"], summary["engine"]) == (3, 0, "ray")
        again = _embed(project, tmp_path / "ray-cache", "--engine", "ray", "--workers", "1")
        assert (again["encoded"], again["cached"]) == (0, 3)
    finally:
        ray.shutdown()
    seg = tiny_sam_segmenter(device="cpu")
    cache = EmbeddingCache(tmp_path / "ray-cache", max_gb=1)
    for rgb in _annotator_pixels(project).values():
        got = cache.get(seg.identity, rgb)
        assert got is not None
        torch.testing.assert_close(got.features, seg.encode(rgb).features, atol=5e-3, rtol=5e-3)


def test_pseudo_label_writes_the_cache_for_free(project, tmp_path, monkeypatch, images):
    from tests.engines.helpers import make_settings
    from text2seg_widgets.models.tiny import tiny_model_set

    cache_dir = tmp_path / "pl-cache"
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE", str(cache_dir))
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE_GB", "1")
    models = tiny_model_set(device="cpu")
    engine = LocalEngine(make_settings(), models=models, progress=False)
    with Project.open(project) as proj:
        engine.run(proj)
    assert models.segmenter.encoder_calls == 3  # one tile per image (all are under 640 px)
    cache = EmbeddingCache(cache_dir, max_gb=1)
    assert len(cache) == 3
    # the Annotator finds those embeddings: the tile loop saw the same pixels as the widget
    fresh = tiny_sam_segmenter(device="cpu")
    with EmbeddingKeeper(fresh, cache=cache) as keeper:
        for image_id, rgb in _annotator_pixels(project).items():
            keeper.ensure(image_id, rgb)
    assert fresh.encoder_calls == 0 and keeper.cache_hits == 3
    # a second run reads them back instead of encoding
    models.segmenter.encoder_calls = 0
    engine2 = LocalEngine(make_settings(), models=models, progress=False)
    with Project.open(project) as proj:
        engine2.run(proj, fresh=True)
    assert models.segmenter.encoder_calls == 0


def test_embed_checks_entries_and_verify_rereads_them(project, tmp_path):
    cache_dir = tmp_path / "cache"
    assert _embed(project, cache_dir)["encoded"] == 3
    files = sorted(cache_dir.rglob("*.safetensors"))
    header_damaged, data_damaged = files[0], files[1]
    raw = header_damaged.read_bytes()
    n = int.from_bytes(raw[:8], "little")
    header = raw[8:8 + n].replace(b'"dtype":"F32"', b'"dtype":"I32"', 1)
    header_damaged.write_bytes(raw[:8] + header + raw[8 + n:])  # same size: an existing file
    data = bytearray(data_damaged.read_bytes())
    data[-5] ^= 0xFF
    data_damaged.write_bytes(bytes(data))
    again = _embed(project, cache_dir)  # the header check drops the first, not the second
    assert (again["encoded"], again["cached"]) == (1, 2)
    verified = _embed(project, cache_dir, "--verify")  # a full read finds the flipped tensor byte
    assert (verified["encoded"], verified["cached"]) == (1, 2)
    assert _embed(project, cache_dir, "--verify")["encoded"] == 0
