"""Folders with a few bad files: the good ones are added and each bad one is reported with its
reason; strict mode is all or nothing (store and `project add-images`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from text2seg_widgets.cli import main
from text2seg_widgets.errors import InputError
from text2seg_widgets.store import Project
from text2seg_widgets.store.imagemeta import read_image_meta
from tests.store.helpers import write_geotiff, write_png


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    write_png(d / "a_good.png", 200, 300)
    write_geotiff(d / "b_good.tif", 100, 120)
    (d / "c_empty.png").write_bytes(b"")
    png = (d / "a_good.png").read_bytes()
    (d / "d_truncated.png").write_bytes(png[: len(png) // 2])
    Image.fromarray(np.full((60, 60, 3), 90, np.uint8)).save(d / "e.jpg")
    jpg = (d / "e.jpg").read_bytes()
    (d / "e.jpg").unlink()
    (d / "e_truncated.jpg").write_bytes(jpg[: len(jpg) // 2])
    tif = (d / "b_good.tif").read_bytes()
    (d / "f_truncated.tif").write_bytes(tif[: len(tif) // 2])
    (d / "g_text.png").write_text("not an image at all")
    return d


REASONS = [("c_empty.png", "is an empty file (0 bytes)"),
           ("d_truncated.png", "is truncated or corrupt"),
           ("e_truncated.jpg", "cannot read"),
           ("f_truncated.tif", "is truncated or corrupt"),
           ("g_text.png", "cannot read")]


def test_good_files_added_bad_ones_reported(folder: Path, tmp_path: Path, project_at) -> None:
    p = Project.create(project_at, classes=["a"])
    batch = p.add_images_checked(sorted(folder.iterdir()))
    assert [Path(r.path).name for r in batch.added] == ["a_good.png", "b_good.tif"]
    assert [(Path(b.path).name, reason in b.reason) for b, (_, reason) in
            zip(batch.failed, REASONS)] == [(name, True) for name, _ in REASONS]
    assert len(p.images()) == 2
    with pytest.raises(InputError, match="5 file\\(s\\) cannot be added, so nothing was added"):
        p.add_images_checked([folder / "a_good.png", *(folder / n for n, _ in REASONS)],
                             strict=True)
    assert len(p.images()) == 2
    tiles = p.add_images_checked([folder / "b_good.tif"], tile=64)
    assert [r.window for r in tiles.added] == [(0, 0, 64, 64), (64, 0, 56, 64), (0, 64, 64, 36),
                                               (64, 64, 56, 36)]
    assert tiles.added[1].transform == p.add_image(folder / "b_good.tif",
                                                   window=(64, 0, 56, 64)).transform
    with pytest.raises(InputError, match="is truncated or corrupt"):
        p.add_images([folder / "d_truncated.png"])  # the old method raises as before
    p.close()


def test_cli_add_images_reports_each_bad_file_and_strict_adds_none(folder: Path,
                                                                   tmp_path: Path) -> None:
    runner = CliRunner()
    assert runner.invoke(main, ["project", "create", str(tmp_path / "s"), "--classes",
                                "a"]).exit_code == 0
    result = runner.invoke(main, ["project", "add-images", str(tmp_path / "s"), str(folder),
                                  "--strict"])
    assert result.exit_code == 1 and "nothing was added" in result.output
    with Project.open(tmp_path / "s") as p:
        assert p.images() == []
    result = runner.invoke(main, ["project", "add-images", str(tmp_path / "s"), str(folder)])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.output.splitlines() if ln.startswith("not added: ")]
    assert [(Path(ln.split(": ")[1]).name, reason in ln) for ln, (_, reason) in
            zip(lines, REASONS)] == [(name, True) for name, _ in REASONS]
    assert "2 image record(s)" in result.output and "5 file(s) not added" in result.output


def _forged_jpeg(path: Path, claimed: int = 60000) -> Path:
    """A real 1024 x 1024 JPEG whose frame header claims ``claimed`` x ``claimed`` pixels."""
    import io

    from PIL import Image

    rng = np.random.default_rng(0)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (1024, 1024, 3), dtype=np.uint8)).save(buf, "JPEG", quality=80)
    data = bytearray(buf.getvalue())
    sof = data.index(b"\xff\xc0")
    data[sof + 5:sof + 9] = claimed.to_bytes(2, "big") * 2
    path.write_bytes(bytes(data))
    return path


def test_a_jpeg_whose_header_claims_60000_pixels_is_refused(tmp_path: Path, project_at) -> None:
    bomb = _forged_jpeg(tmp_path / "bomb.jpg")
    with Project.create(project_at, classes=["building"]) as p:
        batch = p.add_images_checked([bomb, write_png(tmp_path / "ok.png")])
        assert [Path(r.path).name for r in batch.added] == ["ok.png"]
        (bad,) = batch.failed
        assert "claims more pixels than its" in bad.reason and "damaged or forged" in bad.reason
        with pytest.raises(InputError, match="damaged or forged"):
            p.add_image(bomb)
    honest = _forged_jpeg(tmp_path / "honest.jpg", claimed=1024)  # the same file, true header
    assert read_image_meta(honest).width == 1024


def test_a_copy_of_a_project_image_is_skipped_with_a_warning(tmp_path: Path, project_at, caplog) -> None:
    a = write_png(tmp_path / "a.png")
    copy = tmp_path / "elsewhere" / "a-copy.png"
    copy.parent.mkdir()
    copy.write_bytes(a.read_bytes())
    with Project.create(project_at, classes=["building"]) as p:
        first = p.add_image(a)
        batch = p.add_images_checked([copy, write_png(tmp_path / "b.png", seed=3)])
        assert [Path(r.path).name for r in batch.added] == ["b.png"]
        assert [(Path(d.path).name, d.image_id) for d in batch.duplicates] == [("a-copy.png", first.id)]
        with caplog.at_level("WARNING"):
            assert p.add_image(copy).id == first.id
        assert "same content as image" in caplog.text and len(p.images()) == 2
        assert p.add_images_checked([copy], allow_duplicates=True).added[0].id not in (first.id,)
        assert len(p.images()) == 3
    result = CliRunner().invoke(main, ["project", "add-images", str(project_at), str(a.parent)])
    assert result.exit_code == 0 and "skipped duplicate" not in result.output  # a.png, b.png: in
    second = tmp_path / "q"
    with Project.create(second, classes=["building"]) as q:
        q.add_image(a)
    result = CliRunner().invoke(main, ["project", "add-images", str(second), str(copy.parent)])
    assert result.exit_code == 0 and "skipped duplicate: " in result.output
    assert "--allow-duplicates" in result.output
