"""Store test fixtures: a future schema step, written as a real Alembic revision."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from text2seg_widgets.store import schema


class FutureStep:
    """Adds schema step ``latest + 1`` (the same statements on both databases unless
    ``postgresql`` statements are given) with its own revision file in a copy of the
    migrations folder; :meth:`undo` takes it away again."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
        self.monkeypatch, self.folder = monkeypatch, folder
        self.version = schema.latest_version() + 1

    def __call__(self, *sqlite: str, postgresql: tuple[str, ...] | None = None) -> int:
        copy = self.folder / "migrations"
        shutil.copytree(schema.MIGRATIONS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
        rev, prev = f"{self.version:04d}", f"{self.version - 1:04d}"
        (copy / "versions" / f"{rev}_future.py").write_text(
            "from alembic import op\n\nfrom text2seg_widgets.store.schema import run_step\n\n"
            f"revision = {rev!r}\ndown_revision = {prev!r}\n"
            "branch_labels = None\ndepends_on = None\n\n\n"
            f"def upgrade() -> None:\n    run_step(op.get_bind(), {self.version})\n")
        self.monkeypatch.setattr(schema, "MIGRATIONS_DIR", copy)
        self.monkeypatch.setitem(schema.SQLITE_STEPS, self.version, list(sqlite))
        self.monkeypatch.setitem(schema.POSTGRESQL_STEPS, self.version,
                                 list(postgresql if postgresql is not None else sqlite))
        return self.version

    def undo(self) -> None:
        self.monkeypatch.undo()


@pytest.fixture
def future_step(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> FutureStep:
    return FutureStep(monkeypatch, tmp_path)
