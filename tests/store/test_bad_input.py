"""Bad input: not a project, corrupted database, newer/older schema, moved images."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from text2seg_widgets import InputError
from text2seg_widgets.store import DB_NAME, Project
from text2seg_widgets.store import schema
from tests.store.helpers import small_project, write_png


def test_open_a_folder_that_is_not_a_project(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"not a text2seg project .*Project.create"):
        Project.open(tmp_path)
    with pytest.raises(InputError, match="not a text2seg project"):
        Project.open(tmp_path / "missing")


def test_create_refuses_an_existing_project_and_a_file(tmp_path: Path) -> None:
    Project.create(tmp_path / "p", classes=["a"]).close()
    with pytest.raises(InputError, match="already holds a project"):
        Project.create(tmp_path / "p")
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


def test_older_schema_is_migrated_on_open(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p, image_id, ids = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    ann = p.accept(ids[0])
    p.close()
    # a hypothetical next version adds a column; opening the project must run that step
    nxt = schema.SCHEMA_VERSION + 1
    monkeypatch.setitem(schema.MIGRATIONS, nxt,
                        "ALTER TABLE annotations ADD COLUMN note TEXT NOT NULL DEFAULT ''")
    p = Project.open(tmp_path / "p")
    assert p.schema_version == nxt
    row = p._db.query("SELECT note FROM annotations WHERE id = ?", (ann,))[0]
    assert row["note"] == ""
    assert p.annotation(ann).area == 170 and str(p.undo()) == f"accept candidate {ids[0]}"
    p.close()


def test_failed_migration_leaves_the_old_version(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    Project.create(tmp_path / "p", classes=["a"]).close()
    nxt = schema.SCHEMA_VERSION + 1
    monkeypatch.setitem(schema.MIGRATIONS, nxt, "ALTER TABLE nope ADD COLUMN x TEXT")
    with pytest.raises(InputError, match="left unchanged"):
        Project.open(tmp_path / "p")
    monkeypatch.delitem(schema.MIGRATIONS, nxt)
    p = Project.open(tmp_path / "p")
    assert p.schema_version == schema.SCHEMA_VERSION and [c.name for c in p.classes] == ["a"]
    p.close()


def test_moved_image_clear_message_and_relink(tmp_path: Path) -> None:
    src = write_png(tmp_path / "a.png")
    p, image_id, ids = small_project(tmp_path / "p", src)
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


def test_unreadable_image_and_missing_file(tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p", classes=["a"])
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(InputError, match="cannot read"):
        p.add_image(tmp_path / "bad.png")
    with pytest.raises(InputError, match="image not found"):
        p.add_image(tmp_path / "nope.png")
    p.close()
