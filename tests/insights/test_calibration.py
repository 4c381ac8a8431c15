"""Calibrated thresholds fitted from constructed score/decision tables, saved and read back, and
accept-above-calibrated (preview first, then one undoable action), API and CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from text2seg_widgets.cli import main
from text2seg_widgets.errors import InputError
from text2seg_widgets.insights import (CALIBRATION_FILE, Decision, accept_above_calibrated, calibrate,
                                       fit_thresholds, load_calibration, preview_accept_calibrated,
                                       save_calibration)
from tests.insights.helpers import build_project


def table(cls, branch, scores, accepted):
    return [Decision(candidate_id=i, image_id=1, class_name=cls, branch=branch, prompt=cls, score=s,
                     outcome="accepted" if a else "rejected") for i, (s, a) in enumerate(zip(scores, accepted))]


TABLE = (
    # precision above each cut (n >= 5): .75 -> 5/5, .70 -> 6/6, .65 -> 6/7, .60 -> 7/8: lowest >= .9 is .70
    table("building", "detector", [0.95, 0.9, 0.85, 0.8, 0.75, 0.7, 0.65, 0.6, 0.55, 0.5],
          [1, 1, 1, 1, 1, 1, 0, 1, 0, 0])
    # the top decision is a rejection: .5 -> 4/5 (short of .9), .4 -> 5/6 (short): unreachable, best 5/6
    + table("road", "heatmap", [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0, 1, 1, 1, 1, 1])
    + table("road", "detector", [0.9, 0.8, 0.7], [1, 1, 1])
    + table("building", "heatmap", [0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3], [1, 0, 1, 0, 1, 0, 1])
)


def test_fitted_thresholds_pinned():
    got = {k: (t.status, t.threshold, None if t.precision is None else round(t.precision, 4), t.above,
               t.decisions, t.message) for k, t in fit_thresholds(TABLE, target_precision=0.9, min_decisions=5).items()}
    assert got == {
        ("building", "detector"): ("ok", 0.7, 1.0, 6, 10, "score >= 0.700: precision 1.00 [0.61, 1.00] over 6 decisions"),
        ("building", "heatmap"): ("unreachable", None, 0.6, 5, 7,
                                  "no threshold reaches precision 0.90; best precision 0.60"),
        ("road", "detector"): ("too few", None, None, 0, 3, "too few decisions (3)"),
        ("road", "heatmap"): ("unreachable", None, 0.8333, 6, 6,
                              "no threshold reaches precision 0.90; best precision 0.83"),
    }
    low = fit_thresholds(TABLE, target_precision=0.9, min_decisions=5)[("building", "detector")].low
    assert round(low, 4) == 0.6097


@pytest.mark.parametrize("target, minimum, expected", [
    (0.8, 5, (0.4, 0.8333, 6)),      # .5 -> 4/5 = .8 reaches, .4 -> 5/6 too: the lowest wins
    (0.85, 5, (None, 0.8333, 6)),
    (0.8, 7, (None, None, 0)),       # 6 decisions < 7: too few
])
def test_road_heatmap_targets(target, minimum, expected):
    t = fit_thresholds(TABLE, target_precision=target, min_decisions=minimum)[("road", "heatmap")]
    assert (t.threshold, None if t.precision is None else round(t.precision, 4), t.above) == expected


def test_ties_are_cut_together():
    rows = table("car", "detector", [0.9, 0.9, 0.9, 0.9, 0.9, 0.8], [1, 1, 1, 1, 0, 1])
    t = fit_thresholds(rows, target_precision=0.85, min_decisions=5)[("car", "detector")]
    assert (t.status, round(t.precision, 4), t.above) == ("unreachable", 0.8333, 6)
    t = fit_thresholds(rows, target_precision=0.8, min_decisions=5)[("car", "detector")]
    assert (t.threshold, round(t.precision, 4), t.above) == (0.8, 0.8333, 6)


@pytest.mark.parametrize("kwargs", [{"target_precision": 0.0}, {"target_precision": 1.5}, {"min_decisions": 0}])
def test_bad_settings(kwargs):
    with pytest.raises(InputError):
        fit_thresholds(TABLE, **kwargs)


def test_save_and_load(tmp_path):
    fitted = fit_thresholds(TABLE, target_precision=0.9, min_decisions=5)
    path = save_calibration(tmp_path, fitted)
    assert path == tmp_path / CALIBRATION_FILE
    assert load_calibration(tmp_path) == fitted
    assert [p.name for p in tmp_path.iterdir()] == [CALIBRATION_FILE]  # no temporary file left
    assert load_calibration(tmp_path / "elsewhere") == {}
    path.write_text("{not json")
    with pytest.raises(InputError, match="delete it"):
        load_calibration(tmp_path)


# image 1: 6 reviewed building/detector (5 accepted above .7), proposed ones at .95, .72, .5 and a road one;
# image 2: proposed building/detector at .8 and .3
IMAGES = [
    [("building", "detector", "building", s, d) for s, d in
     [(0.9, "accepted"), (0.85, "accepted"), (0.8, "accepted"), (0.75, "accepted"), (0.7, "accepted"),
      (0.6, "rejected"), (0.95, "proposed"), (0.72, "proposed"), (0.5, "proposed")]]
    + [("road", "heatmap", "road", 0.99, "proposed")],
    [("building", "detector", "building", 0.8, "proposed"), ("building", "detector", "building", 0.3, "proposed")],
]


@pytest.fixture
def project(tmp_path):
    proj, ids = build_project(tmp_path, IMAGES)
    save_calibration(proj, calibrate(proj, target_precision=0.9, min_decisions=5))
    yield proj, ids
    proj.close()


def test_preview_then_accept_one_image(project):
    proj, ids = project
    plan = preview_accept_calibrated(proj, 1)
    assert (plan.count, plan.candidate_ids, plan.estimated_precision) == (2, (ids[0][6], ids[0][7]), 1.0)
    assert plan.not_calibrated == ("road / heatmap: 1 proposed, never calibrated",)
    assert proj.candidate(ids[0][6]).status == "proposed"  # a preview changes nothing
    done = accept_above_calibrated(proj, 1)
    assert done.done and len(done.annotation_ids) == 2
    assert [proj.candidate(c).status for c in ids[0][6:]] == ["accepted", "accepted", "proposed", "proposed"]
    proj.undo()  # one undoable action
    assert [proj.candidate(c).status for c in ids[0][6:8]] == ["proposed", "proposed"]


def test_whole_project_and_dry_run(project):
    proj, ids = project
    plan = accept_above_calibrated(proj, None, dry_run=True)
    assert (plan.done, plan.candidate_ids) == (False, (ids[0][6], ids[1][0], ids[0][7]))
    assert "would accept 3 candidate(s) on the whole project, estimated precision 1.000" in plan.summary()
    assert [c.id for c in proj.candidates(status="accepted")] == ids[0][:5]


def test_no_calibration_says_what_to_do(tmp_path):
    proj, _ = build_project(tmp_path, IMAGES)
    with proj, pytest.raises(InputError, match="review calibrate"):
        preview_accept_calibrated(proj)


def test_cli_calibrate_and_accept(project):
    proj, ids = project
    folder = str(proj.folder)
    proj.close()
    runner = CliRunner()
    out = runner.invoke(main, ["review", "calibrate", folder, "--target", "0.9", "--min-decisions", "5"])
    assert out.exit_code == 0, out.output
    assert out.output.splitlines()[0] == ("building / detector: score >= 0.700: precision 1.00 [0.57, 1.00] "
                                          "over 5 decisions")
    out = runner.invoke(main, ["review", "accept-calibrated", folder, "--image", "img0"], input="n\n")
    assert out.exit_code == 0, out.output
    assert "would accept 2 candidate(s) on image 1, estimated precision 1.000" in out.output
    assert "nothing accepted" in out.output
    out = runner.invoke(main, ["review", "accept-calibrated", folder, "--json", "--dry-run"])
    assert json.loads(out.output)["count"] == 3
    out = runner.invoke(main, ["review", "accept-calibrated", folder, "--yes"])
    assert out.exit_code == 0 and "accepted 3 candidate(s)" in out.output, out.output
