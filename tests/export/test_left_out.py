"""Every exporter defaults to done images and lists each image it left out, and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from text2seg_widgets import Candidate
from text2seg_widgets.export import (export_chips, export_coco, export_semantic,
                                     export_vectors)
from text2seg_widgets.store import Project
from tests.store.helpers import rect, write_geotiff


@pytest.mark.parametrize("exporter, kwargs", [
    (export_coco, {}), (export_semantic, {}), (export_chips, {"size": 32}),
    (export_vectors, {})])
def test_each_exporter_lists_left_out_images(exporter, kwargs, tmp_path: Path) -> None:
    p = Project.create(tmp_path / "p", classes=["water"])
    done, busy, skipped, fresh = (
        p.add_image(write_geotiff(tmp_path / f"{n}.tif", 64, 80, seed=i)).id
        for i, n in enumerate(["done", "busy", "skipped", "fresh"]))
    p.add_annotation(done, rect(64, 80, 0, 0, 20, 20), "water")
    p.finish_image(done)
    p.add_candidates(busy, [Candidate.from_mask(rect(64, 80, 0, 0, 9, 9), class_name="water",
                                                score=0.4, branch="detector")] * 3)
    p.add_annotation(busy, rect(64, 80, 30, 30, 40, 40), "water")
    p.skip_image(skipped, reason="no data")
    manifest = exporter(p, tmp_path / "out", **kwargs)
    assert manifest["counts"]["images"] == 1
    assert [(e["text2seg_image_id"], e["reason"]) for e in manifest["left_out"]] == [
        (busy, "in progress: 3 candidates unreviewed"), (skipped, "skipped: no data"),
        (fresh, "unreviewed")]
    p.close()
