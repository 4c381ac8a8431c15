"""Decision analytics: Wilson intervals against known values, decisions derived from the store,
acceptance tables with exact counts, and the `review stats` command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from text2seg_widgets.cli import main
from text2seg_widgets.errors import InputError
from text2seg_widgets.insights import acceptance_table, decisions, score_bin, wilson_interval
from tests.insights.helpers import build_project


@pytest.mark.parametrize("k, n, conf, low, high", [
    (8, 10, 0.95, 0.4902, 0.9433),     # textbook example
    (0, 10, 0.95, 0.0, 0.2775),
    (10, 10, 0.95, 0.7225, 1.0),
    (50, 100, 0.95, 0.4038, 0.5962),
    (1, 2, 0.95, 0.0945, 0.9055),
    (8, 10, 0.90, 0.5408, 0.9314),     # z = 1.6449, checked by hand
    (0, 0, 0.95, 0.0, 1.0),
])
def test_wilson_known_values(k, n, conf, low, high):
    lo, hi = wilson_interval(k, n, conf)
    assert (round(lo, 4), round(hi, 4)) == (low, high)


@pytest.mark.parametrize("k, n, conf", [(3, 2, 0.95), (-1, 2, 0.95), (1, 2, 1.0), (1, 2, 0.0)])
def test_wilson_bad_input(k, n, conf):
    with pytest.raises(InputError):
        wilson_interval(k, n, conf)


@pytest.mark.parametrize("score, bins, expected", [
    (0.0, 10, (0.0, 0.1)), (0.05, 10, (0.0, 0.1)), (0.1, 10, (0.1, 0.2)), (0.99, 10, (0.9, 1.0)),
    (1.0, 10, (0.9, 1.0)), (1.7, 4, (0.75, 1.0)), (-0.2, 4, (0.0, 0.25)),
])
def test_score_bins(score, bins, expected):
    assert score_bin(score, bins) == expected


ROWS = [
    [("building", "detector", "building", 0.91, "accepted"),
     ("building", "detector", "roof", 0.85, "rejected"),
     ("building", "heatmap", "building", 0.42, "corrected"),
     ("road", "detector", "road", 0.77, "relabel:building"),
     ("road", "heatmap", "street", 0.55, "proposed")],
    [("building", "detector", "building", 0.95, "accepted"),
     ("building", "detector", "roof", 0.82, "rejected"),
     ("road", "heatmap", "street", 0.61, "accepted")],
]


@pytest.fixture
def project(tmp_path):
    proj, ids = build_project(tmp_path, ROWS)
    yield proj
    proj.close()


def test_decisions_from_the_store(project):
    got = [(d.image_id, d.class_name, d.branch, d.prompt, d.score, d.outcome, d.final_class, d.accepted)
           for d in decisions(project)]
    assert got == [
        (1, "building", "detector", "building", 0.91, "accepted", "building", True),
        (1, "building", "detector", "roof", 0.85, "rejected", None, False),
        (1, "building", "heatmap", "building", 0.42, "corrected", "building", True),
        (1, "road", "detector", "road", 0.77, "relabelled", "building", False),
        (2, "building", "detector", "building", 0.95, "accepted", "building", True),
        (2, "building", "detector", "roof", 0.82, "rejected", None, False),
        (2, "road", "heatmap", "street", 0.61, "accepted", "road", True),
    ]
    assert [d.candidate_id for d in decisions(project, image_ids=[2])] == [6, 7, 8]


def test_deleted_annotation_counts_as_rejected(project):
    ann = next(a for a in project.annotations() if a.candidate_id == 1)
    project.delete_annotation(ann.id)
    first = decisions(project)[0]
    assert (first.candidate_id, first.outcome) == (1, "rejected")


def test_acceptance_table_by_class_and_branch(project):
    rows = acceptance_table(decisions(project), by=("class", "branch"))
    got = [(r.class_name, r.branch, r.prompt, r.score_bin, r.decisions, r.accepted, r.corrected,
            r.relabelled, r.rejected, round(r.rate, 4), round(r.low, 4), round(r.high, 4)) for r in rows]
    assert got == [
        ("building", "detector", None, None, 4, 2, 0, 0, 2, 0.5, 0.1500, 0.8500),
        ("building", "heatmap", None, None, 1, 0, 1, 0, 0, 1.0, 0.2065, 1.0),
        ("road", "detector", None, None, 1, 0, 0, 1, 0, 0.0, 0.0, 0.7935),
        ("road", "heatmap", None, None, 1, 1, 0, 0, 0, 1.0, 0.2065, 1.0),
    ]


def test_acceptance_table_full_grouping(project):
    rows = acceptance_table(decisions(project), bins=10)
    got = [(r.class_name, r.branch, r.prompt, r.score_bin, r.decisions, r.rate) for r in rows]
    assert got == [
        ("building", "detector", "building", (0.9, 1.0), 2, 1.0),
        ("building", "detector", "roof", (0.8, 0.9), 2, 0.0),
        ("building", "heatmap", "building", (0.4, 0.5), 1, 1.0),
        ("road", "detector", "road", (0.7, 0.8), 1, 0.0),
        ("road", "heatmap", "street", (0.6, 0.7), 1, 1.0),
    ]


def test_acceptance_table_bad_key(project):
    with pytest.raises(InputError, match="cannot group by"):
        acceptance_table(decisions(project), by=("colour",))


def test_cli_stats(project):
    folder = str(project.folder)
    project.close()
    runner = CliRunner()
    result = runner.invoke(main, ["review", "stats", folder, "--by", "class,prompt", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [(r["class_name"], r["prompt"], r["decisions"], r["accepted"] + r["corrected"]) for r in data] == [
        ("building", "building", 3, 3), ("building", "roof", 2, 0), ("road", "road", 1, 0),
        ("road", "street", 1, 1)]
    table = runner.invoke(main, ["review", "stats", folder, "--by", "class"])
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split() == ["class", "branch", "prompt", "score", "n", "acc", "corr", "relab", "rej",
                                "rate", "95%", "CI"]
    assert lines[1].split() == ["building", "*", "*", "all", "5", "2", "1", "0", "2", "0.60", "[0.23,", "0.88]"]


def test_cli_stats_missing_project(tmp_path):
    result = CliRunner().invoke(main, ["review", "stats", str(tmp_path / "nope")])
    assert result.exit_code == 1 and "not a text2seg project" in result.output
