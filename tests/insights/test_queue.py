"""The review queue: order and reasons on a hand-made disagreement case, live calibration, and
the `review queue` command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from text2seg_widgets.cli import main
from text2seg_widgets.errors import InputError
from text2seg_widgets.insights import Threshold, review_queue
from tests.insights.helpers import build_project

P = "proposed"
IMAGE1 = [
    ("building", "detector", "building", 0.9, P, (0, 0, 20, 20)),    # A: same pixels as B
    ("road", "heatmap", "road", 0.6, P, (0, 0, 20, 20)),             # B: class conflict, road never decided
    ("building", "detector", "building", 0.8, P, (30, 30, 50, 50)),  # C: outline IoU 1/3 with D, at threshold
    ("building", "heatmap", "building", 0.7, P, (30, 40, 50, 60)),   # D
    ("building", "detector", "building", 0.85, P, (0, 60, 20, 80)),  # E: confirmed by F (IoU .9)
    ("building", "heatmap", "building", 0.75, P, (0, 60, 20, 78)),   # F
    ("building", "detector", "building", 0.79, P, (50, 0, 60, 10)),  # G: alone, just below the threshold
]
IMAGE2 = [("building", "detector", "building", 0.9, "accepted")] * 4 + \
         [("building", "heatmap", "building", 0.9, "accepted")] * 2


def threshold(t):
    return Threshold("building", "detector", t, 1.0, 0.5, 1.0, 4, 4, 0.95, 4, "ok")


@pytest.fixture
def project(tmp_path):
    proj, ids = build_project(tmp_path, [IMAGE1, IMAGE2])
    yield proj, ids[0]
    proj.close()


def test_queue_order_and_priorities(project):
    proj, (a, b, c, d, e, f, g) = project
    items = review_queue(proj, thresholds={("building", "detector"): threshold(0.8)}, min_decisions=4)
    # "change": without decisions in a score tenth a look changes the outcome with chance .5; building /
    # detector at .9-1.0 was accepted 4 of 4 times, so A (auto-accepted above .8) changes with 1 - 5/6
    assert [(q.candidate_id, q.priority) for q in items] == [
        (b, 2.1),        # conflict 1.0 + few decisions (0 of 4) .6 + change .5
        (c, 1.833333),   # outline (1 - 1/3) * .8 + at the threshold .8 + change .5
        (d, 1.333333),   # outline .533333 + few (2 of 4) .3 + change .5
        (g, 1.22),       # near the threshold: (1 - .01/.1) * .8 + change .5
        (a, 1.166667),   # conflict 1.0, well above the threshold, change 1/6
        (e, 0.65),       # halfway to the edge of 'near' .4 + change .5, minus agreement .25
        (f, 0.55),       # few .3 + change .5 minus agreement .25
    ]
    assert all(q.image_id == 1 for q in items)
    reasons = {q.candidate_id: q.reasons for q in items}
    assert reasons[b] == (f"overlaps a 'building' candidate #{a} from detector (100% of the smaller mask): "
                          "classes disagree", "few decisions for road / heatmap so far (0 of 4)")
    assert reasons[c] == ("detector and heatmap disagree on its outline (IoU 0.33)",
                          "score 0.80 is near the calibrated threshold 0.80 for building / detector")
    assert reasons[a][1:] == ("score 0.90 well above the calibrated threshold 0.80",
                              "4 of 4 building / detector candidates scoring 0.9-1.0 were accepted")
    assert reasons[e] == ("score 0.85 is near the calibrated threshold 0.80 for building / detector",
                          "confirmed by heatmap (IoU 0.90)")
    assert [q.candidate_id for q in review_queue(proj, limit=2, thresholds={}, min_decisions=4)] == [b, a]


def test_decided_candidates_leave_the_queue_and_accepted_ones_still_conflict(project):
    proj, (a, b, c, d, e, f, g) = project
    proj.accept(a)
    items = {q.candidate_id: q for q in review_queue(proj, thresholds={}, min_decisions=4)}
    assert a not in items and len(items) == 6
    assert items[b].reasons[0].startswith(f"overlaps an accepted 'building' candidate #{a}")
    proj.reject(b)
    assert b not in {q.candidate_id for q in review_queue(proj, thresholds={}, min_decisions=4)}


def test_live_calibration(tmp_path):
    # 28 building/detector decisions, accepted at .6 and above (16), rejected below: with at least 10
    # decisions behind a cut the threshold is .6 at precision 1 (with 20 it would be unreachable)
    decided = [("building", "detector", "building", round(0.3 + 0.05 * i, 2), "accepted" if i >= 6 else "rejected")
               for i in range(14)] * 2
    proj, ids = build_project(tmp_path, [decided, [("building", "detector", "building", s, P) for s in (0.9, 0.62, 0.4)]])
    with proj:
        items = review_queue(proj, min_decisions=10)
        # near .64 + change 1/6 (auto-accepted, 4 of 4 accepted at .6-.7); .9 and .4: change 1/6 only
        assert [(q.candidate_id, q.priority) for q in items] == [(ids[1][1], 0.806667), (ids[1][0], 0.166667),
                                                                 (ids[1][2], 0.166667)]
        assert items[0].reasons == ("score 0.62 is near the calibrated threshold 0.60 for building / detector",
                                    "4 of 4 building / detector candidates scoring 0.6-0.7 were accepted")
        strict = review_queue(proj, min_decisions=20)  # unreachable: nothing is auto-accepted, change = p
        assert [(q.candidate_id, q.priority) for q in strict] == [(ids[1][0], 1.233333), (ids[1][1], 1.233333),
                                                                  (ids[1][2], 0.566667)]
        assert strict[0].reasons[0] == "no score reaches precision 0.95 for building / detector yet"
        doubt_only = review_queue(proj, min_decisions=20, weights={"change": 0.0})
        assert [q.priority for q in doubt_only] == [0.4, 0.4, 0.4]
        assert doubt_only[0].reasons == ("no score reaches precision 0.95 for building / detector yet",)


def test_bad_arguments(project):
    proj, _ = project
    with pytest.raises(InputError):
        review_queue(proj, limit=-1)
    with pytest.raises(InputError):
        review_queue(proj, near=0)
    with pytest.raises(InputError, match="unknown queue weight"):
        review_queue(proj, weights={"luck": 1.0})


def test_cli_queue(project):
    proj, (a, b, *_rest) = project
    folder = str(proj.folder)
    proj.close()
    out = CliRunner().invoke(main, ["review", "queue", folder, "--top", "2", "--min-decisions", "4", "--json"])
    assert out.exit_code == 0, out.output
    # live calibration: the 4 building/detector decisions (all accepted at .9) put its threshold at .9,
    # so A (.9, conflict) sits at the threshold: 1.0 + .8 + change 1/6, still below B's 2.1
    assert [(q["candidate_id"], q["priority"]) for q in json.loads(out.output)] == [(b, 2.1), (a, 1.966667)]
    out = CliRunner().invoke(main, ["review", "queue", folder, "--top", "1", "--min-decisions", "4"])
    assert out.output.splitlines()[:2] == [
        f"  1. candidate {b} on image 1  priority 2.10",
        f"       - overlaps a 'building' candidate #{a} from detector (100% of the smaller mask): classes disagree"]
