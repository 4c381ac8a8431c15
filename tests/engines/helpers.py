"""Settings and helpers shared by the engine tests (the fixtures are in ``conftest.py``)."""

from __future__ import annotations

from pathlib import Path

from text2seg_widgets.engines import BatchSettings
from text2seg_widgets.pipeline.classes import ClassSet
from text2seg_widgets.pipeline.config import PipelineConfig
from text2seg_widgets.store import Project

CLASSES = "building,road"
BRANCHES = ("detector", "heatmap")
TILE, OVERLAP = 640, 64
#: the same settings as command-line options (the subprocess tests)
CLI_OPTIONS = ["--classes", CLASSES, "--models", "tiny", "--branches", ",".join(BRANCHES),
               "--tile-size", str(TILE), "--overlap", str(OVERLAP), "--device", "cpu"]


def make_settings(**changes: object) -> BatchSettings:
    config = PipelineConfig(**{"branches": BRANCHES, **changes.pop("config", {})})  # type: ignore[dict-item]
    options = dict(classes=ClassSet.parse(CLASSES, background=True), models="tiny", config=config,
                   device="cpu", tile_size=TILE, overlap=OVERLAP)
    options.update(changes)
    return BatchSettings(**options)  # type: ignore[arg-type]


def candidates_by_path(folder: Path, run_id: int | None = None) -> dict[str, list[tuple]]:
    """Per image file name: the sorted (class, RLE counts, score) of its candidates (of one run)."""
    out: dict[str, list[tuple]] = {}
    with Project.open(folder) as project:
        for image in project.images():
            rows = [c for c in project.candidates(image.id) if run_id is None or c.run_id == run_id]
            out[Path(image.path).name] = sorted(
                (c.class_name, c.candidate.rle["counts"], round(c.candidate.score, 6)) for c in rows)
    return out


def new_project(folder: Path, images: list[Path]) -> Path:
    with Project.create(folder) as project:
        for path in images:
            project.add_image(path)
    return folder


