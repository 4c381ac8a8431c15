"""The notebooks run top to bottom headless (nbclient), offline, on the real shared data; each runs
twice in the same project folder and the second run changes nothing in the database; the exports
are read back by the libraries that consume them (pycocotools, rasterio)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pytest
from nbclient import NotebookClient

from text2seg_widgets.store import Project

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "notebooks"


def run_notebook(name: str, workdir: Path, env: dict[str, str], timeout: int = 600) -> nbformat.NotebookNode:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # the kernel inherits the environment of this process
    try:
        NotebookClient(nb, timeout=timeout, kernel_name="python3",
                       resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return nb


def outputs_text(nb: nbformat.NotebookNode) -> str:
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            parts.append(out.get("text", "") or json.dumps(out.get("data", {}).get("text/plain", "")))
    return "\n".join(parts)


def stderr_text(nb: nbformat.NotebookNode) -> str:
    return "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
                     if o.get("name") == "stderr")


def snapshot(folder: Path) -> dict[str, Any]:
    """Everything a re-run could duplicate: images with states, candidates with statuses, annotations
    with class, source and area."""
    with Project.open(folder) as p:
        return {
            "images": [(r.id, Path(r.path).name, r.state) for r in p.images()],
            "candidates": sorted((c.id, c.image_id, c.status) for c in p.candidates()),
            "annotations": sorted((a.id, a.image_id, a.class_name, a.source, a.area) for a in p.annotations()),
        }


def run_twice(name: str, tmp_path: Path, env: dict[str, str]) -> tuple[nbformat.NotebookNode, dict[str, Any]]:
    """Run the notebook, snapshot the project, run it again in the same folder: nothing may change."""
    proj = Path(env["TEXT2SEG_PROJECT"])
    first = run_notebook(name, tmp_path, env)
    before = snapshot(proj)
    second = run_notebook(name, tmp_path, env)
    after = snapshot(proj)
    assert after == before, f"re-running {name} changed the project"
    assert "Warning" not in stderr_text(first), stderr_text(first)  # no library warning spam
    return second, after


def read_coco(folder: Path) -> Any:
    from pycocotools.coco import COCO

    return COCO(str(folder / "annotations.json"))


def test_quickstart_offline_is_honest_and_safe_to_rerun(tmp_path: Path, shared_data: Path) -> None:
    """The offline first run (LiteMedSAM only): says what works and lists every missing weight with
    its fetch command; nothing is proposed; a re-run adds nothing."""
    proj = tmp_path / "qs"
    env = {"TEXT2SEG_PROJECT": str(proj), "TEXT2SEG_MODELS": "offline", "TEXT2SEG_SHARED_DATA": str(shared_data),
           "TEXT2SEG_CACHE": str(tmp_path / "empty-weight-cache")}
    nb, snap = run_twice("quickstart.ipynb", tmp_path, env)
    text = outputs_text(nb)
    assert "real sample tiles" in text
    assert "box prompts -> masks with litemedsam" in text and "polygons drawn by hand" in text
    assert "load_models('default'), needs 4 more weight(s):" in text
    for name in ("sam-vit-b", "grounding-dino-tiny", "clip-vit-b-16", "sam3"):
        assert f"  text2seg-widgets weights fetch {name}\n" in text
    assert "No text-prompt model is loaded" in text
    assert "0 annotation(s)" in text
    assert len(snap["images"]) == 3 and snap["candidates"] == [] and snap["annotations"] == []


def test_quickstart_tiny_proposes_counts_drawn_and_exports(tmp_path: Path, shared_data: Path) -> None:
    """With the tiny models the prompt cell proposes candidates once; a polygon drawn by hand between
    the runs is counted by the stats cell and exported."""
    proj = tmp_path / "qs"
    env = {"TEXT2SEG_PROJECT": str(proj), "TEXT2SEG_MODELS": "tiny", "TEXT2SEG_SHARED_DATA": str(shared_data)}
    nb, snap = run_twice("quickstart.ipynb", tmp_path, env)
    views = [o for c in nb.cells for o in c.get("outputs", [])
             if "application/vnd.jupyter.widget-view+json" in o.get("data", {})]
    assert views, "the annotator widget was not displayed"
    first_image = snap["images"][0][0]
    assert any(c[1] == first_image for c in snap["candidates"]), "the prompt cell stored no candidates"
    with Project.open(proj) as p:  # an annotator draws one polygon by hand and finishes the image
        rec = p.image(first_image)
        mask = np.zeros((rec.height, rec.width), dtype=bool)
        mask[10:60, 20:90] = True
        p.add_annotation(rec.id, mask, "tree", source="manual")
        p.finish_image(rec.id, rest="reject")
    nb = run_notebook("quickstart.ipynb", tmp_path, env)
    text = outputs_text(nb)
    assert "1 annotation(s); by class {'building': 0, 'road': 0, 'tree': 1}" in text
    assert "'manual': 1" in text
    coco = read_coco(proj.parent / f"{proj.name}-export" / "coco")
    assert [coco.imgs[i]["height"] for i in coco.getImgIds()] == [rec.height]
    (ann,) = coco.anns.values()
    assert coco.cats[ann["category_id"]]["name"] == "tree"
    assert np.array_equal(coco.annToMask(ann).astype(bool), mask)


def test_geotiff_walkthrough_is_safe_to_rerun(tmp_path: Path, shared_data: Path) -> None:
    import rasterio

    proj = tmp_path / "geo"
    env = {"TEXT2SEG_PROJECT": str(proj), "TEXT2SEG_MODELS": "offline", "TEXT2SEG_SHARED_DATA": str(shared_data)}
    nb, snap = run_twice("geotiff_walkthrough.ipynb", tmp_path, env)
    text = outputs_text(nb)
    assert "georeferenced: True" in text and "EPSG:26914" in text
    assert "lake annotation (from an earlier run)" in text
    ((image_id, name, state),) = snap["images"]
    assert state == "done"
    ((ann_id, _, class_name, source, area),) = snap["annotations"]  # one lake, not one per run
    assert class_name == "water" and source == "sam:litemedsam" and area > 0
    with Project.open(proj) as p:
        x0, y0, w, h = p.annotation(ann_id).bbox
        mask = p.annotation(ann_id).mask()
        rec = p.image(image_id)
    assert x0 >= 60 - 1 and y0 >= 60 - 1 and x0 + w <= 260 + 1 and y0 + h <= 220 + 1
    labels = sorted((proj.parent / f"{proj.name}-export" / "semantic" / "labels").glob("*.tif"))
    assert len(labels) == 1, labels
    with rasterio.open(labels[0]) as src:
        assert src.crs.to_string() == "EPSG:26914" and src.transform[:6] == tuple(rec.transform[:6])
        data = src.read(1)
    assert data.shape == mask.shape and int((data == data[mask][0]).sum()) == int(mask.sum())


def test_batch_export_is_safe_to_rerun(tmp_path: Path, shared_data: Path) -> None:
    proj = tmp_path / "batch"
    env = {"TEXT2SEG_PROJECT": str(proj), "TEXT2SEG_MODELS": "tiny", "TEXT2SEG_SHARED_DATA": str(shared_data)}
    _nb, snap = run_twice("batch_export.ipynb", tmp_path, env)
    with Project.open(proj) as p:
        assert all(p.candidates(r.id) for r in p.images())
        assert {r.state for r in p.images()} == {"done"}
        expected = sum(1 for c in p.candidates() if c.candidate.score >= 0.5)
        assert len(p.annotations()) == expected == len(snap["annotations"])
        assert not any(c.status == "proposed" for c in p.candidates())
        stored = sorted(a.area for a in p.annotations())
    coco = read_coco(proj.parent / f"{proj.name}-export" / "coco")
    assert len(coco.getImgIds()) == 3
    assert sorted(int(coco.annToMask(a).sum()) for a in coco.anns.values()) == stored
