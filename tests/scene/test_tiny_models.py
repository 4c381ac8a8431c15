"""segment_scene with the real pipeline and tiny random models: the contract between the two."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio

from tests.imagery.rasters import write_raster
from text2seg_widgets.models.tiny import tiny_model_set
from text2seg_widgets.pipeline import ClassSet, PipelineConfig, Text2SegPipeline
from text2seg_widgets.core import Candidate
from text2seg_widgets.engines.scene import segment_scene


@pytest.mark.slow
def test_tiny_pipeline_over_a_two_tile_scene(tmp_path):
    path = write_raster(tmp_path / "s.tif", 300, 180, count=4, dtype="uint16", nodata=0, border=4,
                        rects=[(40, 40, 60, 50), (150, 60, 100, 30)], fg=3000, bg=900)
    pipe = Text2SegPipeline(tiny_model_set(), ClassSet.from_names(["building", "road"]), PipelineConfig(branches=("detector", "heatmap", "concept")))
    out = segment_scene(path, pipe, tmp_path / "out", tile_size=192, overlap=32, vectors="gpkg", progress=False)
    assert out.n_tiles == 2
    with rasterio.open(out.labels_tif) as ds:
        labels = ds.read(1)
        assert ds.crs.to_epsg() == 32633 and ds.colormap(1)[1][:3] == tuple(pipe.classes.colors[0])
    assert set(np.unique(labels)) <= {0, 1, 2, 255}
    assert (labels[:4] == 255).all() and (labels[4:-4, 4:-4] != 255).all()
    doc = json.loads(out.candidates_json.read_text())
    assert doc["classes"] == ["building", "road"]
    for raw in doc["candidates"]:
        cand = Candidate.from_dict(raw)
        assert cand.rle["size"] == [180, 300] and cand.class_name in ("building", "road")
        assert cand.area == int(cand.mask().sum()) > 0
        assert cand.branch in ("detector", "heatmap", "filter", "concept")
