"""Backups: the online backup API while the project is open, rolling automatic backups before
bulk or destructive actions, the corrupt-database message, and restoring (store and CLI)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from text2seg_widgets.cli import main
from text2seg_widgets.errors import InputError
from text2seg_widgets.export import export_coco, import_coco
from text2seg_widgets.store import DB_NAME, Project, restore_backup
from tests.store.helpers import rect, small_project, write_png


def _state(p: Project) -> tuple:
    return ([(c.name, c.color) for c in p.classes], [(a.id, a.rle["counts"]) for a in
                                                      p.annotations()],
            [(c.id, c.status) for c in p.candidates()])


def _corrupt(path: Path) -> None:
    with open(path, "r+b") as fh:
        fh.write(b"this is not sqlite" * 8)


def test_backup_while_open_then_restore_a_corrupt_project(tmp_path: Path) -> None:
    p, image_id, ids = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    p.accept(ids[0])
    other = Project.open(tmp_path / "p")  # another session keeps the project open
    saved = p.backup()
    assert saved.parent == tmp_path / "p" / "backups" and saved.name.startswith("backup-")
    expected = _state(p)
    other.reject(ids[1])  # a later change is not in the backup
    other.close()
    p.close()
    _corrupt(tmp_path / "p" / DB_NAME)
    with pytest.raises(InputError) as err:
        Project.open(tmp_path / "p")
    message = str(err.value)
    assert f"backups are kept in {tmp_path / 'p' / 'backups'}" in message
    assert f"the newest backup is {saved}" in message and "project restore" in message
    aside = restore_backup(tmp_path / "p").set_aside
    assert aside is not None and aside.name.startswith(f"{DB_NAME}.before-restore-") and aside.is_file()
    with Project.open(tmp_path / "p") as q:
        assert _state(q) == expected and q.integrity_check() == "ok"
        assert q.candidate(ids[1]).status == "proposed"
        assert str(q.undo()) == f"accept candidate {ids[0]}"  # the history came back too


def test_rolling_automatic_backups_before_bulk_and_destructive_actions(tmp_path: Path) -> None:
    p, first, ids = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    second = p.add_image(write_png(tmp_path / "b.png", seed=1)).id
    more = p.add_candidates(second, [p.candidate(ids[0]).candidate])
    assert p.keep_backups == 5
    p.accept_many([ids[0]])  # one image: no backup
    assert p.backups() == []
    p.accept_many([ids[1], more[0]])  # across images: accept-all on the project
    autos = [b.name for b in p.backups()]
    assert len(autos) == 1 and autos[0].endswith("-accept-2-candidates-on-2-images.sqlite")
    p.keep_backups = 2
    manual = p.backup()
    for name in ("x", "y", "z"):
        p.add_class(name)
        p.remove_class(name)
    names = [b.name for b in p.backups()]
    assert names[0] == manual.name and len(names) == 3  # the manual one is never pruned
    assert [n.split("-", 2)[2] for n in names[1:]] == ["remove-class-y.sqlite",
                                                      "remove-class-z.sqlite"]
    with Project.open(tmp_path / "p") as again:
        assert again.keep_backups == 2  # a project setting, kept in the database
    with pytest.raises(InputError, match="whole number >= 0"):
        p.keep_backups = -1
    p.finish_image(first, rest="reject")
    p.finish_image(second, rest="reject")
    export_coco(p, tmp_path / "coco")
    q = Project.create(tmp_path / "q", classes=["building", "road"])
    import_coco(q, tmp_path / "coco" / "annotations.json")
    [auto] = q.backups()
    assert auto.name.endswith("-import-coco-annotations-json.sqlite")
    q.close()
    restore_backup(tmp_path / "q", auto, yes=True)  # the import is undone: work is lost
    with Project.open(tmp_path / "q") as r:
        assert r.annotations() == [] and r.images() == []  # the state before the import
        r.keep_backups = 0
        r.remove_class("road")
        assert [b.name for b in r.backups()] == [auto.name]
    p.close()


def test_cli_backup_and_restore(tmp_path: Path) -> None:
    p, image_id, ids = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    p.close()
    runner = CliRunner()
    result = runner.invoke(main, ["project", "backup", str(tmp_path / "p"), "--dest",
                                  str(tmp_path / "safe.sqlite"), "--keep-auto", "3"])
    assert result.exit_code == 0 and "automatic ones kept: 3" in result.output, result.output
    with Project.open(tmp_path / "p") as q:
        q.add_annotation(image_id, rect(64, 80, 0, 0, 5, 5), "road")
    result = runner.invoke(main, ["project", "restore", str(tmp_path / "p"),
                                  str(tmp_path / "safe.sqlite")])
    assert result.exit_code == 1 and "annotations 1 -> 0" in result.output, result.output
    result = runner.invoke(main, ["project", "restore", str(tmp_path / "p"),
                                  str(tmp_path / "safe.sqlite"), "--yes"])
    assert result.exit_code == 0 and "previous database was kept" in result.output
    with Project.open(tmp_path / "p") as q:
        assert q.annotations() == [] and q.keep_backups == 3
    result = runner.invoke(main, ["project", "restore", str(tmp_path / "p"),
                                  str(tmp_path / "nope.sqlite")])
    assert result.exit_code == 1 and "no backup file at" in result.output
