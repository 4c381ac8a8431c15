"""Bad input: not a project, corrupted database, newer/older schema, moved images."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from text2seg_widgets import InputError
from text2seg_widgets.store import DB_NAME, Project
from text2seg_widgets.store import schema
from text2seg_widgets.store.db import Database
from tests.store.helpers import small_project, write_png


def test_open_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not a text2seg project .*Project.create"):
        Project.open(tmp_path)
    with pytest.raises(InputError, match="not a text2seg project"):
        Project.open(tmp_path / "missing")


def test_create_refuses_an_existing_project_and_a_file(tmp_path: Path, project_at) -> None:
    Project.create(project_at, classes=["a"]).close()
    with pytest.raises(InputError, match="already holds a project"):
        Project.create(project_at)
    (tmp_path / "f").write_text("x")
    with pytest.raises(InputError, match="is a file"):
        Project.create(tmp_path / "f")


def test_corrupted_database_file(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    (folder / DB_NAME).write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(InputError, match="corrupted or not a database"):
        Project.open(folder)


def test_truncated_database_file(tmp_path: Path) -> None:
    p, _, _ = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    p.close()
    db = tmp_path / "p" / DB_NAME
    data = db.read_bytes()
    db.write_bytes(data[:100] + b"\x00" * 50 + data[150:1000])
    with pytest.raises(InputError, match="corrupted"):
        Project.open(tmp_path / "p")


def test_foreign_sqlite_file(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    folder.mkdir()
    conn = sqlite3.connect(folder / DB_NAME)
    conn.execute("CREATE TABLE t (x)")
    conn.commit()
    conn.close()
    with pytest.raises(InputError):
        Project.open(folder)


def test_newer_schema_is_refused_untouched(tmp_path: Path) -> None:
    Project.create(tmp_path / "p", classes=["a"]).close()
    conn = sqlite3.connect(tmp_path / "p" / DB_NAME)
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(InputError, match="newer text2seg-widgets"):
        Project.open(tmp_path / "p")
    conn = sqlite3.connect(tmp_path / "p" / DB_NAME)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 99
    conn.close()


def test_older_schema_is_migrated_on_open(tmp_path: Path, project_at, future_step) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    ann = p.accept(ids[0])
    p.close()
    # a next version adds a column (an Alembic revision of its own); opening must run that step
    nxt = future_step("ALTER TABLE annotations ADD COLUMN note TEXT NOT NULL DEFAULT ''")
    p = Project.open(project_at)
    assert p.schema_version == nxt
    assert p.database.query("SELECT note FROM annotations WHERE id = ?", (ann,))[0]["note"] == ""
    assert p.annotation(ann).area == 170 and str(p.undo()) == f"accept candidate {ids[0]}"
    assert p.database.query("SELECT version_num FROM alembic_version")[0][0] == f"{nxt:04d}"
    p.close()


def test_failed_migration_leaves_the_old_version(tmp_path: Path, project_at, future_step) -> None:
    Project.create(project_at, classes=["a"]).close()
    # the step's first statement works, its second fails: the first must be rolled back too
    future_step("ALTER TABLE annotations ADD COLUMN y TEXT", "ALTER TABLE nope ADD COLUMN x TEXT")
    with pytest.raises(InputError, match="left unchanged"):
        Project.open(project_at)
    future_step.undo()
    p = Project.open(project_at)
    assert p.schema_version == schema.SCHEMA_VERSION and [c.name for c in p.classes] == ["a"]
    assert "y" not in _columns(p, "annotations")
    p.close()


def _columns(p: Project, table: str) -> set[str]:
    import sqlalchemy as sa

    return {c["name"] for c in sa.inspect(p.database.conn.sa).get_columns(table)}


def test_newer_schema_on_postgresql_is_refused_untouched(pg_cluster) -> None:
    url = pg_cluster.new_url()
    Project.create(url, classes=["a"]).close()
    with Project.open(url) as p:
        with p.database.raw() as tx:
            tx.conn.execute("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(InputError, match="newer text2seg-widgets"):
        Project.open(url)
    db = Database.postgresql(url)
    assert db.query("SELECT version_num FROM alembic_version")[0][0] == "0099"
    db.close()


def test_moved_image_clear_message_and_relink(tmp_path: Path, project_at) -> None:
    src = write_png(tmp_path / "a.png")
    p, image_id, ids = small_project(project_at, src)
    ann = p.accept(ids[0])
    moved = tmp_path / "elsewhere" / "a.png"
    moved.parent.mkdir()
    shutil.move(src, moved)
    assert [r.id for r in p.missing_images()] == [image_id]
    with pytest.raises(InputError, match=r"is missing.*project.relink\(1, new_path\)"):
        p.image_path(image_id)
    other = write_png(tmp_path / "other.png", seed=5)
    with pytest.raises(InputError, match="different content"):
        p.relink(image_id, other)
    with pytest.raises(InputError, match="not the same image"):
        p.relink(image_id, write_png(tmp_path / "small.png", height=10, width=10))
    rec = p.relink(image_id, moved)
    assert rec.path == str(moved.resolve()) and p.image_path(image_id) == moved.resolve()
    assert p.annotation(ann).area == 170  # the work stays attached
    assert p.missing_images() == []
    p.close()


def test_images_inside_the_project_folder_are_stored_relative(tmp_path: Path) -> None:
    folder = tmp_path / "p"
    p = Project.create(folder, classes=["a"])
    (folder / "imgs").mkdir()
    rec = p.add_image(write_png(folder / "imgs" / "x.png"))
    p.close()
    shutil.move(folder, tmp_path / "q")  # the whole project moves with its images
    p = Project.open(tmp_path / "q")
    assert Path(p.image(rec.id).path) == tmp_path / "q" / "imgs" / "x.png"
    assert p.missing_images() == []
    p.close()


def test_unreadable_image_and_missing_file(tmp_path: Path, project_at) -> None:
    p = Project.create(project_at, classes=["a"])
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read"):
        p.add_image(tmp_path / "bad.png")
    with pytest.raises(InputError, match="image not found"):
        p.add_image(tmp_path / "nope.png")
    p.close()
