"""Effort measured for real: annotation origin and edit actions, time per image, the per-class
effort table (store and `project stats`), and the migration of version-1 projects."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from text2seg_widgets.cli import main
from text2seg_widgets.core import mask_to_rle
from text2seg_widgets.errors import InputError
from text2seg_widgets.store import DB_NAME, SCHEMA_VERSION, Project
from text2seg_widgets.store import schema
from tests.store.helpers import rect, small_project, write_png


def test_origin_and_actions_of_each_way_to_make_an_annotation(tmp_path: Path, project_at) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    unchanged = p.accept(ids[0])
    corrected = p.accept(ids[1])
    p.update_annotation_mask(corrected, rect(64, 80, 30, 0, 40, 50), actions=3)
    p.update_annotation_mask(corrected, rect(64, 80, 30, 0, 40, 40))  # one more action
    relabelled = p.accept(ids[2], class_name="road")
    drawn = p.add_annotation(image_id, rect(64, 80, 50, 50, 60, 60), "road", actions=4)
    p.update_annotation_mask(drawn, rect(64, 80, 50, 50, 60, 62), actions=2)
    imported = p.add_annotation(image_id, rect(64, 80, 0, 60, 5, 70), "road", source="import")
    got = {a.id: (a.origin, a.edit_actions) for a in p.annotations()}
    assert got == {unchanged: ("proposed", 0), corrected: ("corrected", 4),
                   relabelled: ("corrected", 1), drawn: ("drawn", 6), imported: ("imported", 0)}
    p.relabel(unchanged, "road")
    assert (p.annotation(unchanged).origin, p.annotation(unchanged).edit_actions) == (
        "corrected", 1)
    p.undo()
    assert p.annotation(unchanged).origin == "proposed"
    with pytest.raises(InputError, match="actions must be a whole number"):
        p.add_annotation(image_id, rect(64, 80, 1, 1, 3, 3), "road", actions=-1)
    p.close()


def test_time_and_the_effort_table(tmp_path: Path, project_at) -> None:
    p, first, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    second = p.add_image(write_png(tmp_path / "b.png", seed=1)).id
    p.accept(ids[0])                                                  # building, unchanged
    ann = p.accept(ids[2])                                            # building, corrected x2
    p.update_annotation_mask(ann, rect(64, 80, 20, 40, 30, 60), actions=2)
    p.add_annotation(first, rect(64, 80, 50, 0, 60, 10), "road", actions=5)   # road, drawn
    p.add_annotation(second, rect(64, 80, 0, 0, 9, 9), "building", actions=3)  # drawn
    p.add_annotation(second, rect(64, 80, 20, 0, 29, 9), "road", source="import")  # not counted
    p.add_time(first, 30.0)
    p.add_time(first, 15.0)   # 45 s over 3 objects on the first image: 15 s each
    p.add_time(second, 8.0)   # one counted object: 8 s
    assert p.image_seconds(first) == 45.0 and p.image_seconds(second) == 8.0
    assert p.effort() == [
        {"class_name": "building", "accepted_unchanged": 1, "corrected": 1, "drawn": 1,
         "median_seconds_per_object": 15.0, "median_actions_per_object": 2.0},
        {"class_name": "road", "accepted_unchanged": 0, "corrected": 0, "drawn": 1,
         "median_seconds_per_object": 15.0, "median_actions_per_object": 5.0}]
    assert p.stats()["effort"] == p.effort()
    assert str(p.undo()) == "add 'road' mask on image 2"  # the import; add_time is no step
    with pytest.raises(InputError, match="finite number >= 0"):
        p.add_time(first, float("nan"))
    p.close()
    result = CliRunner().invoke(main, ["project", "stats", str(project_at)])
    assert result.exit_code == 0, result.output
    assert "building: 1 / 1 / 1, 15.0 s, 2.0 actions" in result.output
    assert "road: 0 / 0 / 1, 15.0 s, 5.0 actions" in result.output
    fresh = Project.create(tmp_path / "q", classes=["water"])
    fresh.close()
    result = CliRunner().invoke(main, ["project", "stats", str(tmp_path / "q")])
    assert "water: 0 / 0 / 0, -, -" in result.output


def _version1_project(folder: Path, image: Path) -> None:
    """A project database exactly as schema version 1 wrote it (raw SQL, no current code)."""
    folder.mkdir()
    conn = sqlite3.connect(folder / DB_NAME, isolation_level=None)
    for statement in schema.SQLITE_STEPS[1]:  # as version 1 wrote it (before Alembic)
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    rle = mask_to_rle(rect(64, 80, 2, 3, 12, 20))
    edited = mask_to_rle(rect(64, 80, 2, 3, 12, 30))
    sql = [("INSERT INTO meta VALUES ('app', 'text2seg-widgets'), ('created_at', 'x')", ()),
           ("INSERT INTO classes (name, color) VALUES ('building', '#e6194b')", ()),
           ("INSERT INTO images (path, width, height, transform, checksum, state, added_at) "
            "VALUES (?, 80, 64, '[1,0,0,0,1,0]', 'sha256:x', 'done', 't')", (str(image),)),
           ("INSERT INTO images (path, width, height, transform, checksum, state, added_at) "
            "VALUES (?, 80, 64, '[1,0,0,0,1,0]', 'sha256:y', 'done', 't')", (str(image) + "2",))]
    for i, status in enumerate(["accepted", "accepted", "proposed", "rejected"]):
        image_id = 1 if i < 3 else 2
        sql.append(("INSERT INTO candidates (image_id, class_id, counts, height, width, bbox, "
                    "area, score, branch, status) VALUES (?, 1, ?, 64, 80, '[3,2,17,10]', 170, "
                    "0.9, 'detector', ?)", (image_id, rle["counts"], status)))
    for cand, counts, source in [(1, rle["counts"], "detector"), (2, edited["counts"], "detector"),
                                 (None, rle["counts"], "manual"), (None, rle["counts"], "import")]:
        sql.append(("INSERT INTO annotations (image_id, class_id, counts, height, width, bbox, "
                    "area, score, source, candidate_id, created_at, updated_at) VALUES (1, 1, ?, "
                    "64, 80, '[3,2,17,10]', 170, 1.0, ?, ?, 't', 't')", (counts, source, cand)))
    for statement, params in sql:
        conn.execute(statement, params)
    conn.close()


def test_a_version_1_project_opens_migrated(tmp_path: Path) -> None:
    _version1_project(tmp_path / "old", write_png(tmp_path / "a.png"))
    with Project.open(tmp_path / "old") as p:
        assert p.schema_version == SCHEMA_VERSION == 5
        assert [(a.origin, a.edit_actions) for a in p.annotations()] == [
            ("proposed", 0), ("corrected", 1), ("drawn", 1), ("imported", 0)]
        # image 1 was "done" with a proposed candidate: reopened; image 2 stays done
        assert [(s.id, s.state, s.proposed, s.seconds) for s in p.image_summaries()] == [
            (1, "in progress", 1, 0.0), (2, "done", 0, 0.0)]
        assert p.image(1).state_note == "" and p.integrity_check() == "ok"
        assert p.finish_image(1, rest="reject") == 1
        p.add_time(1, 2.5)
        assert p.effort()[0]["accepted_unchanged"] == 1
    conn = sqlite3.connect(tmp_path / "old" / DB_NAME)
    assert json.loads(json.dumps(conn.execute("PRAGMA user_version").fetchone()))[0] == 5
    conn.close()
