"""COCO export: read back by pycocotools and torchvision; property tests; import; bad paths."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pycocotools.coco import COCO

from text2seg_widgets import Candidate, InputError
from text2seg_widgets.export import export_coco, import_coco, read_manifest
from text2seg_widgets.store import Project
from tests.store.helpers import rect, small_project, write_png


@pytest.fixture
def reviewed(tmp_path: Path):
    """building/road project on a 64 x 80 image: two accepted, one manual mask with a hole."""
    p, image_id, ids = small_project(tmp_path / "proj", write_png(tmp_path / "a.png"))
    p.accept(ids[0])
    p.accept(ids[1], class_name="building")
    holed = rect(64, 80, 40, 40, 60, 70)
    holed[45:50, 45:50] = False
    p.add_annotation(image_id, holed, "road")
    assert p.finish_image(image_id, rest="reject") == 1  # ids[2] rejected with the finish
    second = p.add_image(write_png(tmp_path / "b.png", height=30, width=50, seed=1))
    p.set_state(second.id, "done")  # reviewed, nothing in it: must still be exported
    yield p, image_id, ids
    p.close()


def _load(path: Path) -> COCO:
    return COCO(str(path))


def test_coco_ids_iscrowd_rle_and_masks(reviewed, tmp_path: Path) -> None:
    p, image_id, ids = reviewed
    manifest = export_coco(p, tmp_path / "coco")
    raw = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    assert [i["id"] for i in raw["images"]] == [1, 2]
    assert [(i["width"], i["height"]) for i in raw["images"]] == [(80, 64), (50, 30)]
    assert [a["id"] for a in raw["annotations"]] == [1, 2, 3]
    assert [(c["id"], c["name"]) for c in raw["categories"]] == [(1, "building"), (2, "road")]
    assert [a["category_id"] for a in raw["annotations"]] == [1, 1, 2]
    assert all(a["iscrowd"] == 0 for a in raw["annotations"])
    assert all(isinstance(a["segmentation"]["counts"], str) for a in raw["annotations"])
    coco = _load(tmp_path / "coco" / "annotations.json")
    for a in coco.loadAnns(coco.getAnnIds()):
        stored = p.annotation(a["text2seg_annotation_id"])
        assert np.array_equal(coco.annToMask(a).astype(bool), stored.mask())
        assert a["area"] == stored.mask().sum() and a["bbox"] == stored.bbox
    assert raw["annotations"][2]["area"] == 575.0  # 20 x 30 minus the 5 x 5 hole
    assert manifest["counts"]["annotations"] == 3 and manifest["counts"]["images"] == 2
    assert manifest["tool"] == "text2seg-widgets" and manifest["created_at"]
    assert [m["checksum"] for m in manifest["images"]] == [r.checksum for r in p.images()]
    assert read_manifest(tmp_path / "coco") == manifest


def test_moved_export_reads_back_in_pycocotools_and_torchvision(reviewed, tmp_path: Path) -> None:
    """The default export (images copied, relative file names) works from another folder."""
    import shutil

    from PIL import Image
    from torchvision.datasets import CocoDetection, wrap_dataset_for_transforms_v2

    p, image_id, ids = reviewed
    export_coco(p, tmp_path / "coco")
    moved = tmp_path / "elsewhere" / "dataset"
    moved.parent.mkdir()
    shutil.move(tmp_path / "coco", moved)
    (tmp_path / "a.png").rename(tmp_path / "a_gone.png")  # the export needs no original
    raw = json.loads((moved / "annotations.json").read_text())
    assert [i["file_name"] for i in raw["images"]] == ["images/000001_a.png", "images/000002_b.png"]
    coco = _load(moved / "annotations.json")
    for a in coco.loadAnns(coco.getAnnIds()):
        assert np.array_equal(coco.annToMask(a).astype(bool),
                              p.annotation(a["text2seg_annotation_id"]).mask())
    for entry in coco.loadImgs(coco.getImgIds()):
        with Image.open(moved / entry["file_name"]) as im:
            assert im.size == (entry["width"], entry["height"])
    ds = wrap_dataset_for_transforms_v2(
        CocoDetection(str(moved), str(moved / "annotations.json")),
        target_keys=("image_id", "masks", "labels", "boxes"))
    assert len(ds) == 2  # the image without annotations is not dropped
    image, target = ds[0]
    assert image.size == (80, 64)
    assert np.array_equal(np.asarray(image), np.asarray(Image.open(tmp_path / "a_gone.png")))
    anns = p.annotations(image_id)
    assert target["masks"].shape == (3, 64, 80)  # nothing dropped
    for mask, ann in zip(target["masks"].numpy().astype(bool), anns):
        assert np.array_equal(mask, ann.mask())
    assert target["labels"].tolist() == [1, 1, 2]
    x, y, w, h = anns[0].bbox
    assert target["boxes"][0].tolist() == [x, y, x + w, y + h]
    _, empty = ds[1]
    assert "masks" not in empty and empty["image_id"] == 2


def test_polygons_on_request_with_rle_for_holes(reviewed, tmp_path: Path) -> None:
    p, image_id, ids = reviewed
    manifest = export_coco(p, tmp_path / "coco", polygons=True)
    assert manifest["counts"]["polygons"] == 2 and manifest["counts"]["rle_fallback_holes"] == 1
    coco = _load(tmp_path / "coco" / "annotations.json")
    kinds = []
    for a in coco.loadAnns(coco.getAnnIds()):
        kinds.append(type(a["segmentation"]).__name__)
        assert np.array_equal(coco.annToMask(a).astype(bool),
                              p.annotation(a["text2seg_annotation_id"]).mask())
    assert kinds == ["list", "list", "dict"]


def test_unreviewed_candidates_go_to_a_separate_file(reviewed, tmp_path: Path) -> None:
    p, image_id, ids = reviewed
    assert [str(p.undo()), str(p.undo())] == ["mark image 2 done",
                                              "mark image 1 done, rejecting the rest"]
    assert p.image(image_id).state == "in progress"  # ids[2] is proposed again
    manifest = export_coco(p, tmp_path / "coco", include_candidates=True,
                           states=["in progress", "done"])
    assert manifest["files"] == {"annotations": "annotations.json",
                                 "candidates": "candidates.json"}
    cands = json.loads((tmp_path / "coco" / "candidates.json").read_text())
    assert [(a["text2seg_candidate_id"], a["branch"], a["score"]) for a in cands["annotations"]] \
        == [(ids[2], "filter", 0.3)]
    assert cands["images"] == json.loads((tmp_path / "coco" / "annotations.json").read_text())[
        "images"]


def test_default_exports_done_images_and_lists_the_rest(reviewed, tmp_path: Path) -> None:
    p, image_id, ids = reviewed
    third, fourth, fifth = (p.add_image(write_png(tmp_path / f"{n}.png", seed=i))
                            for i, n in enumerate("cde", start=2))
    new = p.add_candidates(third.id, [Candidate.from_mask(rect(64, 80, i, 0, i + 4, 9),
                                                          class_name="road", score=0.5,
                                                          branch="detector")
                                   for i in (0, 9, 19)])
    p.accept(new[0])
    p.skip_image(fourth.id, reason="cloudy")
    m = export_coco(p, tmp_path / "default", images="none", image_root=tmp_path)
    raw = json.loads((tmp_path / "default" / "annotations.json").read_text())
    assert [i["file_name"] for i in raw["images"]] == ["a.png", "b.png"]
    assert [i["review_state"] for i in raw["images"]] == ["done", "done"]
    assert m["options"]["states"] == ["done"]
    assert [(e["text2seg_image_id"], e["state"], e["reason"]) for e in m["left_out"]] == [
        (third.id, "in progress", "in progress: 2 candidates unreviewed"),
        (fourth.id, "skipped", "skipped: cloudy"),
        (fifth.id, "unreviewed", "unreviewed")]
    m = export_coco(p, tmp_path / "progress", states=["in progress"], images="none",
                    image_root=tmp_path)
    raw = json.loads((tmp_path / "progress" / "annotations.json").read_text())
    assert [i["file_name"] for i in raw["images"]] == ["c.png"] and len(raw["annotations"]) == 1
    assert [e["reason"] for e in m["left_out"]] == [
        "done: not in the requested states", "done: not in the requested states",
        "skipped: cloudy", "unreviewed"]
    with pytest.raises(InputError, match="unknown image state"):
        export_coco(p, tmp_path / "x", states=["finished"])


def test_export_path_rules(reviewed, tmp_path: Path) -> None:
    p, image_id, ids = reviewed
    export_coco(p, tmp_path / "coco")
    with pytest.raises(InputError, match="already exists; pass overwrite=True"):
        export_coco(p, tmp_path / "coco")
    p.delete_annotation(p.annotations()[0].id)
    export_coco(p, tmp_path / "coco", overwrite=True)
    assert read_manifest(tmp_path / "coco")["counts"]["annotations"] == 2
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(InputError, match="not a text2seg-widgets export"):
        export_coco(p, tmp_path / "mine", overwrite=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="is an existing file"):
        export_coco(p, tmp_path / "file", overwrite=True)
    with pytest.raises(InputError, match="cannot write the export"):
        export_coco(p, tmp_path / "file" / "coco")
    with pytest.raises(InputError, match="cannot write the export"):
        export_coco(p, Path("/proc/text2seg-no-such-dir/coco"))
    assert sorted(x.name for x in tmp_path.iterdir() if x.name.startswith(".")) == []


def test_image_modes_and_a_moved_source_image(reviewed, tmp_path: Path) -> None:
    p, image_id, ids = reviewed
    m = export_coco(p, tmp_path / "none", images="none")
    raw = json.loads((tmp_path / "none" / "annotations.json").read_text())
    assert [i["file_name"] for i in raw["images"]] == ["../a.png", "../b.png"]  # relative to out
    assert m["options"]["images"] == "none" and not (tmp_path / "none" / "images").exists()
    export_coco(p, tmp_path / "link", images="link")
    linked = tmp_path / "link" / "images" / "000001_a.png"
    assert linked.is_symlink() and linked.resolve() == (tmp_path / "a.png").resolve()
    export_coco(p, tmp_path / "old", copy_images=True)  # the older switch still works
    copied = tmp_path / "old" / "images" / "000001_a.png"
    assert not copied.is_symlink() and copied.read_bytes() == (tmp_path / "a.png").read_bytes()
    with pytest.raises(InputError, match="images must be one of copy, link, none"):
        export_coco(p, tmp_path / "bad", images="move")
    (tmp_path / "a.png").rename(tmp_path / "moved.png")
    with pytest.raises(InputError, match=r"relink\(1"):
        export_coco(p, tmp_path / "coco2")
    assert not (tmp_path / "coco2").exists()
    p.relink(image_id, tmp_path / "moved.png")
    export_coco(p, tmp_path / "coco2")


def test_scene_windows_become_georeferenced_image_files(tmp_path: Path) -> None:
    import rasterio

    from tests.store.helpers import write_geotiff

    scene = write_geotiff(tmp_path / "scene.tif", 100, 120)
    p = Project.create(tmp_path / "p", classes=["lake"])
    win = p.add_image(scene, window=(64, 32, 56, 68))
    whole = p.add_image(scene)
    for rec in (win, whole):
        p.add_annotation(rec.id, rect(rec.height, rec.width, 1, 1, 9, 9), "lake")
        p.finish_image(rec.id)
    export_coco(p, tmp_path / "coco")
    raw = json.loads((tmp_path / "coco" / "annotations.json").read_text())
    assert [i["file_name"] for i in raw["images"]] == ["images/000001_scene_c64_r32.tif",
                                                       "images/000002_scene.tif"]
    with rasterio.open(scene) as src:
        want = src.read(window=rasterio.windows.Window(64, 32, 56, 68))
        want_transform = src.window_transform(rasterio.windows.Window(64, 32, 56, 68))
        crs = src.crs
    with rasterio.open(tmp_path / "coco" / "images" / "000001_scene_c64_r32.tif") as out:
        assert (out.width, out.height, out.crs) == (56, 68, crs)
        assert out.transform.almost_equals(want_transform)
        assert np.array_equal(out.read(), want)
    assert (tmp_path / "coco" / "images" / "000002_scene.tif").read_bytes() == scene.read_bytes()
    p.close()


def test_odd_class_names_survive(tmp_path: Path) -> None:
    name = 'roof/"flat" \'n\' \\ ü'
    p = Project.create(tmp_path / "p", classes=[name])
    rec = p.add_image(write_png(tmp_path / "a.png"))
    p.add_annotation(rec.id, rect(64, 80, 1, 1, 5, 5), name)
    p.finish_image(rec.id)
    export_coco(p, tmp_path / "coco")
    coco = _load(tmp_path / "coco" / "annotations.json")
    assert coco.loadCats([1])[0]["name"] == name
    q = Project.create(tmp_path / "q", classes=[name])
    assert import_coco(q, tmp_path / "coco" / "annotations.json")["imported"] == 1
    assert q.annotations()[0].class_name == name
    p.close()
    q.close()


def test_import_round_trip_as_annotations_and_candidates(reviewed, tmp_path: Path) -> None:
    p, image_id, ids = reviewed
    export_coco(p, tmp_path / "coco", polygons=True)
    q = Project.create(tmp_path / "q", classes=["building"])
    with pytest.raises(InputError, match=r"\['road'\] are not project classes"):
        import_coco(q, tmp_path / "coco" / "annotations.json")
    counts = import_coco(q, tmp_path / "coco" / "annotations.json", add_classes=True)
    assert counts == {"images": 2, "imported": 3, "skipped_no_mask": 0}
    assert [(a.class_name, a.source) for a in q.annotations()] == [
        ("building", "import"), ("building", "import"), ("road", "import")]
    for mine, theirs in zip(p.annotations(), q.annotations()):
        assert np.array_equal(mine.mask(), theirs.mask())
    assert str(q.undo()) == "import 3 annotations from annotations.json"
    assert q.annotations() == []
    import_coco(q, tmp_path / "coco" / "annotations.json", as_="candidates")
    cands = q.candidates()
    assert [(c.class_name, c.candidate.branch, c.status) for c in cands] == [
        ("building", "import", "proposed"), ("building", "import", "proposed"),
        ("road", "import", "proposed")]
    q.close()


def test_import_foreign_coco_with_polygons_and_uncompressed_rle(tmp_path: Path) -> None:
    write_png(tmp_path / "img.png", height=20, width=30)
    foreign = {
        "images": [{"id": 7, "file_name": "img.png", "width": 30, "height": 20}],
        "categories": [{"id": 3, "name": "tree"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 3, "iscrowd": 0,
             "segmentation": [[2, 2, 10, 2, 10, 6, 2, 6]]},
            {"id": 2, "image_id": 7, "category_id": 3, "iscrowd": 1,
             "segmentation": {"size": [20, 30], "counts": [45, 3, 17, 3, 532]}},
            {"id": 3, "image_id": 7, "category_id": 3, "bbox": [0, 0, 3, 3]}]}
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    p = Project.create(tmp_path / "p", classes=["tree"])
    counts = import_coco(p, tmp_path / "foreign.json")
    assert counts == {"images": 1, "imported": 2, "skipped_no_mask": 1}
    poly, rle = p.annotations()
    assert np.array_equal(poly.mask(), rect(20, 30, 2, 2, 6, 10))
    expected = np.zeros((20, 30), bool)
    expected[5:8, 2] = True  # column-major: pixels 45..47 are rows 5-7 of column 2
    expected[5:8, 3] = True
    assert np.array_equal(rle.mask(), expected)
    bad = dict(foreign, images=[{"id": 7, "file_name": "img.png", "width": 31, "height": 20}])
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="COCO says img.png is 31 x 20"):
        import_coco(Project.create(tmp_path / "q", classes=["tree"]), tmp_path / "bad.json")
    (tmp_path / "notcoco.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="not a COCO instances file"):
        import_coco(p, tmp_path / "notcoco.json")
    p.close()
