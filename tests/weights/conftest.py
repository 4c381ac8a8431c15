"""Fixtures for the weight registry tests: an isolated cache and registry, a local HTTP server,
and a generated payload with its sha256."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from tests.weights.fake_server import FakeServer
from text2seg_widgets.models import weights


@pytest.fixture(autouse=True)
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own cache root, a copy of the registry and no offline/hub settings."""
    cache = tmp_path / "cache"
    monkeypatch.setenv(weights.CACHE_ENV, str(cache))
    for var in (weights.OFFLINE_ENV, "HF_HUB_OFFLINE", weights.WEIGHTS_FILE_ENV, "HF_ENDPOINT"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(weights, "_REGISTRY", dict(weights._REGISTRY))
    monkeypatch.setattr(weights, "_LOADED_FILES", set())
    return cache


@pytest.fixture
def payload() -> bytes:
    """2.5 MiB of seeded random bytes: several download chunks, not a multiple of the chunk size."""
    return np.random.default_rng(7).integers(0, 256, size=5 * 512 * 1024 + 123, dtype=np.uint8).tobytes()


@pytest.fixture
def payload_sha(payload: bytes) -> str:
    return hashlib.sha256(payload).hexdigest()


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer() as srv:
        yield srv


def url_spec(name: str, url: str, sha256: str | None, size: int | None) -> weights.WeightSpec:
    """A SAM-family file spec downloading ``url``, registered for the test."""
    spec = weights.WeightSpec(name, "sam", "vit_b", "file", weights.UrlSource(url, sha256, size),
                              description="test weights")
    return weights.register(spec)
