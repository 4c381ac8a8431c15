"""Restore and backup under misuse: an open session, kill -9 mid-restore, empty files, another
project's backup, a backup that loses work, `--dest` over foreign files, leftovers of killed
backups. Each of these lost or silently changed data before the restore became an atomic swap."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from text2seg_widgets.cli import main
from text2seg_widgets.errors import InputError
from text2seg_widgets.store import DB_NAME, Project, restore_backup
from text2seg_widgets.store.backup import clean_partials
from tests.store.helpers import rect, small_project, write_png

ROOT = Path(__file__).resolve().parents[2]


def _project_with_backup(tmp_path: Path) -> tuple[Path, Path, int]:
    p, image_id, ids = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    p.accept(ids[0])
    saved = p.backup()
    p.accept(ids[1])  # after the backup: restoring it loses this annotation
    p.close()
    return tmp_path / "p", saved, image_id


def test_restore_is_refused_while_a_session_has_the_project_open(tmp_path: Path) -> None:
    folder, saved, image_id = _project_with_backup(tmp_path)
    session = Project.open(folder)
    with pytest.raises(InputError, match="open in another session"):
        restore_backup(folder, saved, yes=True)
    session.add_annotation(image_id, rect(64, 80, 0, 0, 4, 4), "road")  # still the live file
    session.close()
    with Project.open(folder) as p:
        assert len(p.annotations()) == 3
    assert not list(folder.glob(f"{DB_NAME}.before-restore-*"))  # nothing was swapped


def test_restore_refuses_empty_foreign_and_work_losing_backups(tmp_path: Path) -> None:
    folder, saved, _ = _project_with_backup(tmp_path)
    empty = tmp_path / "empty.sqlite"
    empty.touch()
    with pytest.raises(InputError, match="empty"):
        restore_backup(folder, empty)
    other = Project.create(tmp_path / "other", classes=["building"])
    foreign = other.backup()
    other.close()
    with pytest.raises(InputError, match="another project.*--force"):
        restore_backup(folder, foreign)
    with pytest.raises(InputError, match=r"less work.*annotations 2 -> 1.*--yes"):
        restore_backup(folder, saved)
    with Project.open(folder) as p:  # every refusal changed nothing
        assert len(p.annotations()) == 2
    result = restore_backup(folder, saved, yes=True)
    assert result.before["annotations"] == 2 and result.after["annotations"] == 1
    assert result.set_aside is not None and result.set_aside.is_file()
    with Project.open(folder) as p:
        assert len(p.annotations()) == 1
        kept_id = p.project_id
    # the set-aside database is whole: restoring it brings the lost annotation back
    restore_backup(folder, result.set_aside)
    with Project.open(folder) as p:
        assert len(p.annotations()) == 2 and p.project_id == kept_id
    restore_backup(folder, foreign, force=True, yes=True)
    with Project.open(folder) as p:
        assert p.images() == [] and [c.name for c in p.classes] == ["building"]


def test_cli_restore_list_force_yes(tmp_path: Path) -> None:
    folder, saved, _ = _project_with_backup(tmp_path)
    runner = CliRunner()
    result = runner.invoke(main, ["project", "restore", str(folder), str(saved)])
    assert result.exit_code == 1 and "annotations 2 -> 1" in result.output
    assert "--yes" in result.output
    result = runner.invoke(main, ["project", "restore", str(folder), "--yes"])  # newest backup
    assert result.exit_code == 0, result.output
    assert "annotations 2 -> 1" in result.output and "before-restore-" in result.output
    listed = runner.invoke(main, ["project", "restore", str(folder), "--list"])
    assert listed.exit_code == 0
    assert f"backup: {saved}" in listed.output and "set aside by a restore:" in listed.output


_RESTORE_CHILD = """
import sys
from text2seg_widgets.store import restore_backup
while True:
    restore_backup(sys.argv[1], sys.argv[2], yes=True)
"""


def test_kill_during_restore_always_leaves_a_whole_project(tmp_path: Path) -> None:
    p, image_id, ids = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    p.add_annotations([{"image_id": image_id, "mask": rect(64, 80, 0, 0, k + 1, 5),
                        "class_name": "road"} for k in range(200)])
    saved = p.backup()
    p.close()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for delay in (0.4, 0.7, 1.0, 1.3):
        child = subprocess.Popen([sys.executable, "-c", _RESTORE_CHILD, str(tmp_path / "p"),
                                  str(saved)], env=env, cwd=ROOT)
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert (tmp_path / "p" / DB_NAME).is_file()
        with Project.open(tmp_path / "p") as q:
            assert q.integrity_check() == "ok" and len(q.annotations()) == 200
    restore_backup(tmp_path / "p", saved)  # the leftovers of the killed restores are cleaned up
    assert not list((tmp_path / "p").glob("*.restoring-*"))
    assert not list((tmp_path / "p").glob("*.partial*"))


def test_backup_dest_never_overwrites_what_is_not_this_projects_backup(tmp_path: Path) -> None:
    p, _, ids = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    notes = tmp_path / "notes.txt"
    notes.write_text("my notes")
    with pytest.raises(InputError, match="not overwriting.*not a backup of this project"):
        p.backup(notes)
    assert notes.read_text() == "my notes"
    other = Project.create(tmp_path / "other", classes=["x"])
    theirs = other.backup(tmp_path / "theirs.sqlite")
    other.close()
    with pytest.raises(InputError, match="backup of another project"):
        p.backup(theirs)
    with pytest.raises(InputError, match="the project database itself"):
        p.backup(tmp_path / "p" / DB_NAME)
    mine = p.backup(tmp_path / "mine.sqlite")
    p.accept(ids[0])
    assert p.backup(mine) == mine  # an older backup of this project may be replaced
    conn = sqlite3.connect(mine)
    assert conn.execute("SELECT count(*) FROM annotations").fetchone()[0] == 1
    conn.close()
    p.close()


def test_leftovers_of_killed_backups_are_removed(tmp_path: Path) -> None:
    p, _, _ = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    folder = tmp_path / "p" / "backups"
    folder.mkdir()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    killed = folder / f"backup-1.sqlite.partial-{dead.pid}"
    killed.write_bytes(b"x" * 1000)
    old_style = folder / "backup-2.sqlite.partial"
    old_style.write_bytes(b"x" * 1000)
    os.utime(old_style, (time.time() - 3600, time.time() - 3600))
    running = folder / f"backup-3.sqlite.partial-{os.getpid()}"  # a live writer's file stays
    running.write_bytes(b"x")
    p.backup()
    assert not killed.exists() and not old_style.exists() and running.exists()
    assert clean_partials(folder) == []
    p.close()


def test_a_folder_whose_database_went_missing_names_the_way_back(tmp_path: Path) -> None:
    """What an interrupted restore of the old code left: no project.sqlite, only the database set
    aside. Opening says how to put it back (not "create a project"), and that command works."""
    folder, saved, _ = _project_with_backup(tmp_path)
    aside = folder / f"{DB_NAME}.before-restore-20260101T000000000000Z"
    (folder / DB_NAME).rename(aside)
    with pytest.raises(InputError, match="project restore") as err:
        Project.open(folder)
    assert f"the newest {aside}" in str(err.value)  # the live state, newer than the backup
    assert "create" not in str(err.value)
    restore_backup(folder, aside)
    with Project.open(folder) as p:
        assert len(p.annotations()) == 2
