"""Shared test configuration: where the real data lives, and offline guards."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("TEXT2SEG_SHARED_DATA", ROOT.parent / "shared" / "data"))

# Tests never reach a hub: make any accidental from_pretrained(hub id) fail fast.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The persistent embedding cache is off unless a test gives one (tests/models/test_embedding_cache.py):
# a user's cache must neither change encoder counts in tests nor receive test embeddings.
os.environ.setdefault("TEXT2SEG_EMBED_CACHE_GB", "0")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` beside the checkout; a clear failure (not a skip) when it is missing."""
    if not (SHARED_DATA / "rs-samples").is_dir():
        pytest.fail(f"real sample data not found at {SHARED_DATA}; place ../shared/data beside the "
                    "checkout or set TEXT2SEG_SHARED_DATA")
    return SHARED_DATA


@pytest.fixture(scope="session")
def rs_samples(shared_data: Path) -> Path:
    return shared_data / "rs-samples"


@pytest.fixture(autouse=True)
def _no_worker_outlives_its_test():
    """Background workers are owned: whatever a test left running is stopped and joined here, so
    no thread is inside model code when the interpreter exits (see core/workers.py)."""
    yield
    from text2seg_widgets.core.workers import live_workers

    stuck = [w.name for w in live_workers() if not w.close(timeout=120)]
    if stuck:
        pytest.fail(f"background workers did not stop within 120 s: {', '.join(stuck)}")


def pytest_sessionfinish(session, exitstatus):
    from text2seg_widgets.core.workers import stop_all

    stop_all(timeout=300)


@pytest.fixture(scope="session")
def pg_cluster():
    """A real PostgreSQL 15 server, started for this test run and stopped after it (tests/pg.py)."""
    from tests.pg import start_cluster

    cluster = start_cluster()
    yield cluster
    cluster.remove()


@pytest.fixture(params=["sqlite", "postgresql"])
def project_at(request, tmp_path: Path) -> str | Path:
    """Where a new project goes, once per database: a folder (SQLite) and a URL of a database
    that does not exist yet on the test cluster (PostgreSQL; Project.create makes it)."""
    if request.param == "sqlite":
        return tmp_path / "proj"
    return request.getfixturevalue("pg_cluster").new_url()
