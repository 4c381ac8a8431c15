"""Prompts that work: per-synonym acceptance, flagged prompts, pruning rules and the class file
(read back with ClassSet, the pipeline's own parser)."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from text2seg_widgets.cli import main
from text2seg_widgets.errors import InputError
from text2seg_widgets.insights import (decisions, prompt_stats, prune_prompts)
from text2seg_widgets.pipeline.classes import ClassSet
from tests.insights.helpers import build_project

CLASSES = [{"name": "building", "prompts": ["building", "roof", "parking lot"]},
           {"name": "road", "prompts": ["road", "river"]}]


def rows(cls, prompt, outcomes):
    return [(cls, "detector", prompt, 0.5, o) for o in outcomes]


IMAGES = [
    rows("building", "building", ["accepted"] * 4 + ["rejected"] * 2)
    + rows("building", "roof", ["rejected"] * 4)                          # 4 < 5 decisions: not flagged yet
    + rows("building", "parking lot", ["rejected"] * 4 + ["relabel:road"]),  # 5, none accepted: flagged
    rows("road", "road", ["accepted", "corrected", "rejected"])
    + rows("road", "river", ["rejected"] * 6),
]


@pytest.fixture
def project(tmp_path):
    proj, _ = build_project(tmp_path, IMAGES, classes=CLASSES)
    yield proj
    proj.close()


def test_prompt_stats_pinned(project):
    got = [(s.class_name, s.prompt, s.decisions, s.accepted, s.relabelled, s.rejected, s.flagged)
           for s in prompt_stats(decisions(project), min_decisions=5)]
    assert got == [("building", "building", 6, 4, 0, 2, False),
                   ("building", "parking lot", 5, 0, 1, 4, True),
                   ("building", "roof", 4, 0, 0, 4, False),
                   ("road", "river", 6, 0, 0, 6, True),
                   ("road", "road", 3, 2, 0, 1, False)]
    assert [s.prompt for s in prompt_stats(decisions(project), min_decisions=4) if s.flagged] == [
        "parking lot", "roof", "river"]


def test_prune_keeps_order_and_unseen_prompts(project):
    project.update_class("road", prompts=["road", "river", "street"])  # 'street' never produced a candidate
    result = prune_prompts(project, min_decisions=5)
    assert result.survivors == {"building": ["building", "roof"], "road": ["road", "street"]}
    assert result.dropped == {"building": ["parking lot"], "road": ["river"]}
    assert result.notes == []


def test_class_never_left_without_a_prompt(project):
    result = prune_prompts(project, min_decisions=4, classes={"building": ["roof", "parking lot"]})
    # both flagged; roof (0 of 4, upper bound .49) beats parking lot (0 of 5, .43)
    assert result.survivors == {"building": ["roof"]}
    assert result.dropped == {"building": ["parking lot"]}
    assert "every prompt of 'building'" in result.notes[0]


def test_class_file_round_trip(tmp_path, project):
    out = tmp_path / "classes.txt"
    folder = str(project.folder)
    project.close()
    res = CliRunner().invoke(main, ["review", "prune", folder, "--write-classes", str(out)])
    assert res.exit_code == 0, res.output
    assert "building / 'parking lot': accepted 0 of 5 (95% CI 0.00-0.43)  <- only rejections" in res.output
    assert out.read_text() == "building: building, roof\nroad: road\n"
    assert ClassSet.from_file(out).to_dict() == {"building": ["building", "roof"], "road": ["road"]}


@pytest.mark.parametrize("prompts", [["x; y"], ["roof, flat", "a: b"], ['say "hi"', "back\\slash"],
                                     ["# not a comment", " padded "]])
def test_a_written_class_file_reads_back_the_same(tmp_path, prompts):
    from text2seg_widgets.insights.prompts import write_class_file

    path = write_class_file(tmp_path / "classes.txt", {"building": prompts, "road": ["road"]})
    expected = {"building": [" ".join(p.split()) for p in prompts], "road": ["road"]}
    assert ClassSet.from_file(path).to_dict() == expected
    res = CliRunner().invoke(main, ["project", "create", str(tmp_path / "p"), "--classes", str(path)])
    assert res.exit_code == 0, res.output


def test_class_file_into_a_missing_folder_is_a_clear_error(tmp_path):
    from text2seg_widgets.insights.prompts import write_class_file

    with pytest.raises(InputError, match="does not exist; create it"):
        write_class_file(tmp_path / "nope" / "classes.txt", {"building": ["roof"]})
