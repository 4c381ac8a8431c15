"""The ``project`` command group, driven through click's test runner."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from click.testing import CliRunner

from text2seg_widgets.cli import main
from text2seg_widgets.store import Project
from tests.store.helpers import rect, write_geotiff, write_png


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_create_add_stats_export_import_relink(tmp_path: Path) -> None:
    proj = tmp_path / "proj"
    code, out = _run("project", "create", str(proj), "--classes", "building, road")
    assert code == 0 and "classes: building (building); road (road)" in out
    imgs = tmp_path / "imgs"
    imgs.mkdir()
    write_png(imgs / "a.png")
    write_png(imgs / "b.png", seed=1)
    (imgs / "notes.txt").write_text("skip me")
    code, out = _run("project", "add-images", str(proj), str(imgs))
    assert code == 0 and "total 2" in out, out
    code, out = _run("project", "add-images", str(proj), str(write_geotiff(tmp_path / "g.tif",
                                                                           100, 120)),
                     "--tile", "64")
    assert code == 0 and "4 image record(s)" in out
    with Project.open(proj) as p:
        p.add_annotation(1, rect(64, 80, 0, 0, 10, 10), "road")
    code, out = _run("project", "stats", str(proj), "--json")
    assert code == 0 and json.loads(out)["annotations"]["by_class"] == {"building": 0, "road": 1}
    code, out = _run("project", "stats", str(proj))
    assert "in progress 1" in out and "unreviewed 5" in out
    for fmt in ("coco", "semantic", "chips", "vectors", "stats"):
        code, out = _run("project", "export", str(proj), str(tmp_path / fmt), "--format", fmt,
                         "--size", "32")
        assert code == 0, out
        assert (tmp_path / fmt / "manifest.json").is_file()
    code, out = _run("project", "export", str(proj), str(tmp_path / "coco"))
    assert code == 1 and "--overwrite" in out and "Traceback" not in out
    assert json.loads((tmp_path / "coco" / "manifest.json").read_text())["counts"]["images"] == 0
    code, out = _run("project", "export", str(proj), str(tmp_path / "prog"),
                     "--states", "done,in progress")
    assert code == 0 and '"images": 1' in out, out
    names = [i["file_name"] for i in json.loads((tmp_path / "prog" / "annotations.json")
                                                .read_text())["images"]]
    assert names == ["images/000001_a.png"] and (tmp_path / "prog" / names[0]).is_file()
    code, out = _run("project", "export", str(proj), str(tmp_path / "none"), "--states",
                     "in progress", "--images", "none")
    assert code == 0 and json.loads((tmp_path / "none" / "annotations.json").read_text())[
        "images"][0]["file_name"] == "../imgs/a.png"
    code, out = _run("project", "export", str(proj), str(tmp_path / "coco"), "--overwrite",
                     "--state", "all", "--polygons")
    assert code == 0 and '"images": 6' in out
    other = tmp_path / "other"
    _run("project", "create", str(other), "--classes", "road")
    code, out = _run("project", "import-coco", str(other),
                     str(tmp_path / "coco" / "annotations.json"), "--as", "candidates",
                     "--add-classes")
    assert code == 0 and "imported 1 candidates on 6 image(s)" in out
    moved = tmp_path / "moved"
    shutil.move(imgs, moved)
    code, out = _run("project", "relink", str(proj))
    assert "2 missing image(s)" in out
    code, out = _run("project", "relink", str(proj), "--search", str(moved))
    assert code == 0 and "0 image(s) still missing" in out
    code, out = _run("project", "stats", str(tmp_path / "nope"))
    assert code == 1 and "not a text2seg project" in out


def test_create_reads_class_files_and_inline_synonyms(tmp_path: Path) -> None:
    """One parser for create, segment and pseudo-label: a file, inline synonyms, clear errors."""
    (tmp_path / "classes.txt").write_text("building: building, roof, house\nwater: lake, river\n"
                                          "background: ground\n")
    cases = [(str(tmp_path / "classes.txt"), [("building", ("building", "roof", "house")),
                                              ("water", ("lake", "river"))]),
             ("urban: building, houses; water: lake", [("urban", ("building", "houses")),
                                                        ("water", ("lake",))]),
             ("building,road", [("building", ("building",)), ("road", ("road",))])]
    for i, (arg, want) in enumerate(cases):
        code, out = _run("project", "create", str(tmp_path / f"p{i}"), "--classes", arg)
        assert code == 0, out
        with Project.open(tmp_path / f"p{i}") as p:
            assert [(c.name, c.prompts) for c in p.classes] == want
    assert "'background' entry is not a project class" in _run(
        "project", "create", str(tmp_path / "p9"), "--classes", str(tmp_path / "classes.txt"))[1]
    bad = [("classes.txt", "class file 'classes.txt' does not exist"),
           ("a: b: c", "more than one ':'"),
           ("urban: building; water, lake", "several names without a ':'"),
           ("urban: x; : lake", "a class name is empty in entry ': lake'"),
           ("a: x; A: y", "duplicate class name 'A'")]
    for i, (arg, message) in enumerate(bad):
        code, out = _run("project", "create", str(tmp_path / f"bad{i}"), "--classes", arg)
        assert code == 1 and message in out and "Traceback" not in out, out
        assert not (tmp_path / f"bad{i}" / "project.sqlite").exists()


def test_classes_rename_and_remove_from_the_cli(tmp_path):
    import sqlite3

    from tests.store.helpers import small_project

    p, image_id, ids = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    p.accept(ids[1])
    p.close()
    conn = sqlite3.connect(tmp_path / "p" / "project.sqlite")  # a name no import accepts today
    conn.execute("UPDATE classes SET name = 'bad;name#1' WHERE name = 'road'")
    conn.commit()
    conn.close()
    runner = CliRunner()
    listed = runner.invoke(main, ["project", "classes", "list", str(tmp_path / "p")])
    assert listed.exit_code == 0 and "'bad;name#1'" in listed.output
    done = runner.invoke(main, ["project", "classes", "rename", str(tmp_path / "p"), "bad;name#1", "road"])
    assert done.exit_code == 0 and "is now 'road'" in done.output, done.output
    refused = runner.invoke(main, ["project", "classes", "remove", str(tmp_path / "p"), "road"])
    assert refused.exit_code == 1 and "--cascade" in refused.output and "cascade=True" not in refused.output
    gone = runner.invoke(main, ["project", "classes", "remove", str(tmp_path / "p"), "road", "--cascade"])
    assert gone.exit_code == 0, gone.output
    with Project.open(tmp_path / "p") as q:
        assert [c.name for c in q.classes] == ["building"] and q.annotations() == []
        assert q.backups()  # removal took an automatic backup


def test_relink_refusal_names_the_cli_flag(tmp_path):
    from tests.store.helpers import small_project

    p, image_id, _ = small_project(tmp_path / "p", write_png(tmp_path / "a.png"))
    p.close()
    other = write_png(tmp_path / "other.png", seed=9)
    result = CliRunner().invoke(main, ["project", "relink", str(tmp_path / "p"), str(image_id), str(other)])
    assert result.exit_code == 1 and "--no-check" in result.output, result.output
    result = CliRunner().invoke(main, ["project", "relink", str(tmp_path / "p"), str(image_id), str(other),
                                       "--no-check"])
    assert result.exit_code == 0
