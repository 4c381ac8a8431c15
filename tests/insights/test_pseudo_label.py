"""The next `pseudo-label` run learns from the reviewer: --prune-prompts drops prompts that only
produced rejections and --auto-accept-calibrated accepts above the saved thresholds; both are
recorded in the run manifest (tiny random models, one real EPFL tile)."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from text2seg_widgets.cli import main
from text2seg_widgets.insights import Threshold, save_calibration
from text2seg_widgets.store import Project
from tests.insights.helpers import build_project

CLASSES = [{"name": "building", "prompts": ["building", "parking lot"]}, {"name": "road", "prompts": ["road"]}]
OPTIONS = ["--models", "tiny", "--branches", "detector,heatmap", "--device", "cpu", "--tile-size", "512",
           "--overlap", "64", "--no-progress", "--no-background"]


def test_pruned_prompts_and_calibrated_auto_accept(tmp_path, rs_samples):
    decided = [("building", "detector", "parking lot", 0.5, "rejected")] * 5 + \
              [("building", "detector", "building", 0.5, "accepted")] * 5
    proj, _ = build_project(tmp_path, [decided], classes=CLASSES)
    tile = rs_samples / "epfl_roads" / "images" / "satImage_001.png"
    with proj:
        proj.add_image(tile)
        before = {c.id for c in proj.candidates()}
        thresholds = {(cls, branch): Threshold(cls, branch, 0.0, 0.97, 0.9, 1.0, 30, 30, 0.95, 20, "ok")
                      for cls in ("building", "road") for branch in ("detector", "heatmap")}
        save_calibration(proj, thresholds)
    folder = str(tmp_path / "proj")
    result = CliRunner().invoke(main, ["pseudo-label", folder, *OPTIONS, "--prune-prompts",
                                       "--auto-accept-calibrated"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    with Project.open(folder) as proj:
        run = proj.runs()[-1]
        manifest = run["manifest"]
        assert manifest["settings"]["classes"] == {"building": ["building"], "road": ["road"]}
        assert manifest["runtime"]["review"]["pruned_prompts"] == {"dropped": {"building": ["parking lot"]},
                                                                   "notes": []}
        assert len(manifest["runtime"]["review"]["calibration"]) == 4
        on_disk = json.loads((Path(folder) / "runs" / f"run-{run['id']}" / "manifest.json").read_text())
        assert on_disk["runtime"]["review"] == manifest["runtime"]["review"]
        new = [c for c in proj.candidates() if c.id not in before]
        assert new, "the tiny models proposed nothing on the tile"
        assert {c.candidate.prompt for c in new} <= {"building", "road"}
        # threshold 0.0: every new candidate of the run was accepted, as reported
        assert {c.status for c in new} == {"accepted"}
        assert summary["auto_accepted"] == {"accepted": len(new), "images": 2, "estimated_precision": 0.97}


def test_auto_accept_without_calibration_is_refused(tmp_path):
    proj, _ = build_project(tmp_path, [[("building", "detector", "building", 0.5, "accepted")]])
    proj.close()
    result = CliRunner().invoke(main, ["pseudo-label", str(tmp_path / "proj"), *OPTIONS, "--auto-accept-calibrated"])
    assert result.exit_code != 0 and "review calibrate" in result.output
