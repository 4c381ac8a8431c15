"""Results never depend on the embedding cache: a cold cache, a warm one and none give the same
candidates, bit for bit (the cache stores float32; with float16 19 of 43 candidates differed)."""

from __future__ import annotations

from pathlib import Path

from tests.engines.helpers import candidates_by_path, make_settings, new_project
from text2seg_widgets.engines import LocalEngine
from text2seg_widgets.models.embedding_cache import EmbeddingCache
from text2seg_widgets.store import Project


def _run(folder: Path, images: list[Path], models) -> dict[str, list[tuple]]:
    new_project(folder, images)
    with Project.open(folder) as project:
        LocalEngine(make_settings(), models=models, progress=False).run(project)
    return candidates_by_path(folder)


def test_cold_warm_and_no_cache_give_identical_candidates(tmp_path, monkeypatch, reference,
                                                          engine_models):
    off = candidates_by_path(reference.folder, reference.report.run_id)
    assert sum(len(v) for v in off.values()) >= 8  # 9 with the tiny models
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("TEXT2SEG_EMBED_CACHE_GB", "1")
    cold = _run(tmp_path / "cold", reference.images, engine_models)
    files = len(EmbeddingCache(tmp_path / "cache", max_gb=1))
    assert files >= len(reference.images)
    warm = _run(tmp_path / "warm", reference.images, engine_models)
    assert len(EmbeddingCache(tmp_path / "cache", max_gb=1)) == files  # every tile was a hit
    assert cold == off
    assert warm == off
