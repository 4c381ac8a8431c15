"""`project export --overwrite` replaces only an earlier export: never the project (or a copy of
one), never a folder holding the project's source images, never a run log; OUT may be a symlink;
the export folder gets the usual permissions. Each case deleted data before the export marker."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from click.testing import CliRunner

from text2seg_widgets.cli import main
from text2seg_widgets.export.atomic import EXPORT_MARKER
from text2seg_widgets.store import DB_NAME, Project
from tests.store.helpers import small_project, write_png


def _done_project(folder: Path, image: Path) -> Path:
    p, image_id, _ = small_project(folder, image)
    p.finish_image(image_id, rest="reject")
    p.close()
    return folder


def _export(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["project", "export", *args])
    return result.exit_code, result.output


def test_export_over_a_folder_holding_the_project_is_refused(tmp_path: Path) -> None:
    pe = _done_project(tmp_path / "pe", write_png(tmp_path / "a.png"))
    code, out = _export(str(pe), str(tmp_path / "out"))
    assert code == 0, out
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    with Project.open(pe) as p:
        assert manifest[EXPORT_MARKER] == {"format": "coco", "project_id": p.project_id}
    shutil.copytree(pe, tmp_path / "out" / "proj_inside")
    code, out = _export(str(tmp_path / "out" / "proj_inside"), str(tmp_path / "out"),
                        "--overwrite")
    assert code == 1 and "project folder" in out, out
    assert (tmp_path / "out" / "proj_inside" / DB_NAME).is_file()
    # a project copied into someone else's export is protected too
    code, out = _export(str(pe), str(tmp_path / "out"), "--overwrite")
    assert code == 1 and "holds a project database" in out, out
    assert (tmp_path / "out" / "proj_inside" / DB_NAME).is_file()
    code, out = _export(str(pe), str(pe), "--overwrite")
    assert code == 1 and "project folder" in out
    assert (pe / DB_NAME).is_file()


def test_export_over_the_folder_of_the_projects_images_is_refused(tmp_path: Path) -> None:
    pa = _done_project(tmp_path / "pa", write_png(tmp_path / "a.png"))
    assert _export(str(pa), str(tmp_path / "exA"))[0] == 0
    pb = tmp_path / "pb"
    with Project.create(pb, classes=["building"]) as p:  # images live in exA/images
        p.add_images_checked([next((tmp_path / "exA" / "images").iterdir())])
    for mode in ("copy", "link"):
        code, out = _export(str(pb), str(tmp_path / "exA"), "--overwrite", "--states", "all",
                            "--images", mode)
        assert code == 1 and "source image" in out, out
    with Project.open(pb) as p:
        assert p.missing_images() == []


def test_a_run_log_is_not_an_export(tmp_path: Path) -> None:
    pe = _done_project(tmp_path / "pe", write_png(tmp_path / "a.png"))
    run = tmp_path / "elsewhere" / "run-1"
    run.mkdir(parents=True)
    (run / "manifest.json").write_text(json.dumps({"settings": {}, "fingerprint": "x"}))
    (run / "images.jsonl").write_text("{}\n")
    code, out = _export(str(pe), str(run), "--overwrite")
    assert code == 1 and "not a text2seg-widgets export" in out
    assert (run / "images.jsonl").is_file()
    code, out = _export(str(pe), str(pe / "runs" / "run-1"), "--overwrite")
    assert code == 1 and "project folder" in out


def test_out_as_a_symlink_is_followed_and_permissions_are_normal(tmp_path: Path) -> None:
    pe = _done_project(tmp_path / "pe", write_png(tmp_path / "a.png"))
    real = tmp_path / "real"
    assert _export(str(pe), str(real))[0] == 0
    link = tmp_path / "link"
    link.symlink_to(real)
    old = os.umask(0o022)
    try:
        code, out = _export(str(pe), str(link), "--overwrite")
    finally:
        os.umask(old)
    assert code == 0, out
    assert link.is_symlink() and (link / "annotations.json").is_file()
    assert oct(real.stat().st_mode & 0o777) == oct(0o755)
    assert not [p for p in tmp_path.iterdir() if ".partial-" in p.name]
