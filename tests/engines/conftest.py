"""Fixtures of the batch-engine tests: real sample tiles, tiny models, one reference run.

The reference run (local engine, tiny models, detector + heatmap branches, 640 px tiles with
64 px overlap) covers four real tiles: two EPFL road tiles (400 px, one tile each), the Potsdam
tile (512 px, one tile) and LoveDA ``0.png`` (1024 px: four tiles, so candidates are merged
across seams). Other tests compare their candidates with it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.engines.helpers import candidates_by_path, make_settings, new_project
from text2seg_widgets.engines import LocalEngine, RunReport
from text2seg_widgets.models.modelset import ModelSet
from text2seg_widgets.models.tiny import tiny_model_set
from text2seg_widgets.store import Project


@pytest.fixture(scope="session")
def sample_images(rs_samples: Path) -> list[Path]:
    """Small images first, the four-tile LoveDA image last."""
    paths = [rs_samples / "epfl_roads" / "images" / "satImage_001.png",
             rs_samples / "epfl_roads" / "images" / "satImage_002.png",
             *sorted((rs_samples / "potsdam" / "images").glob("*.png"))[:1],
             rs_samples / "loveda" / "images" / "0.png"]
    for p in paths:
        assert p.is_file(), f"sample image {p} is missing from the shared data"
    return paths


@pytest.fixture(scope="session")
def engine_models() -> ModelSet:
    """The ``tiny`` preset, built once (the same models `--models tiny` builds in a subprocess)."""
    return tiny_model_set(device="cpu")


@dataclass
class Reference:
    folder: Path
    report: RunReport
    engine: LocalEngine
    images: list[Path]

    def candidates_by_path(self) -> dict[str, list[tuple]]:
        return candidates_by_path(self.folder, self.report.run_id)


@pytest.fixture(scope="session")
def reference(tmp_path_factory: pytest.TempPathFactory, sample_images: list[Path],
              engine_models: ModelSet) -> Reference:
    folder = new_project(tmp_path_factory.mktemp("reference") / "project", sample_images)
    engine = LocalEngine(make_settings(), models=engine_models, progress=False)
    with Project.open(folder) as project:
        report = engine.run(project)
    return Reference(folder, report, engine, sample_images)
