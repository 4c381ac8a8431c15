"""notebooks/review_insights.ipynb runs headless (nbclient) on the shared tiles with LiteMedSAM
stand-in candidates, writes its four charts (the last: agreement between two annotators on
consensus images of a team project) as real PNG files, prints the calibrated preview,
the flagged known-bad prompt and the queue; a second run reopens the project and adds nothing."""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from PIL import Image

from text2seg_widgets.store import Project

pytestmark = pytest.mark.slow

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "review_insights.ipynb"
FIGURES = ("acceptance_vs_score.png", "iou_and_confusion.png", "corrections_per_class.png",
           "agreement.png")


def run(workdir: Path, env: dict[str, str]) -> str:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}).execute()
    finally:
        for k, v in old.items():
            os.environ.pop(k, None) if v is None else os.environ.__setitem__(k, v)
    images = sum(1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    assert images == 4, f"expected 4 inline charts, got {images}"
    return "\n".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))


def test_review_insights_notebook(tmp_path, rs_samples):
    project = tmp_path / "project"
    env = {"TEXT2SEG_PROJECT": str(project), "TEXT2SEG_FIGURES": str(tmp_path / "figures"),
           "TEXT2SEG_SHARED_DATA": str(rs_samples.parent), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    text = run(tmp_path, env)
    for name in FIGURES:
        with Image.open(tmp_path / "figures" / name) as im:
            assert im.format == "PNG" and im.width > 200 and im.height > 200
    assert "3 images" in text and "decisions" in text
    assert "building / solar farm" in text and "<- only rejections" in text
    assert "candidate " in text and "priority" in text
    assert "agreement  building: F1 " in text  # the team demo's per-class agreement
    with Project.open(project) as p:
        before = (len(p.candidates()), len(p.annotations()), len(p.candidates(status="proposed")))
        assert before[2] > 0 and before[1] > 0
        assert (project / "calibration.json").is_file()
    run(tmp_path, env)
    with Project.open(project) as p:
        assert (len(p.candidates()), len(p.annotations()), len(p.candidates(status="proposed"))) == before
