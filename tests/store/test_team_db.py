"""Team projects in PostgreSQL: bad URLs and credentials, no password anywhere, `project copy`
round trips, reconnecting after a server restart (real PostgreSQL: tests/pg.py)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from text2seg_widgets import Candidate, InputError
from text2seg_widgets.cli import main
from text2seg_widgets.export import export_coco
from text2seg_widgets.store import Project
from text2seg_widgets.store.copy import digest
from text2seg_widgets.store.projectcopy import copy_project
from text2seg_widgets.store.db import ConnectionLostError, redact
from text2seg_widgets.store.localpg import free_port
from tests.pg import PASSWORD_ROLE
from tests.store.helpers import rect, small_project, write_png

SECRET = "s3cret-Pa55"


def _admin(cluster, sql: str, database: str = "postgres") -> None:
    engine = sa.create_engine(cluster.url(database).replace("postgresql://", "postgresql+psycopg://"),
                              isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(sql)
    engine.dispose()


@pytest.fixture
def secured_role(pg_cluster):
    _admin(pg_cluster, f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = "
                       f"'{PASSWORD_ROLE}') THEN CREATE ROLE {PASSWORD_ROLE} LOGIN CREATEDB "
                       f"PASSWORD '{SECRET}'; END IF; END $$")
    return PASSWORD_ROLE


def test_each_bad_location_gets_one_clear_message(pg_cluster, secured_role, tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    port = pg_cluster.port
    cases = [
        (f"postgresql://postgres@127.0.0.1:{free_port()}/x", "cannot reach a PostgreSQL server"),
        (f"postgresql://{secured_role}:wrong-{SECRET}@127.0.0.1:{port}/postgres",
         "wrong or missing password"),
        (f"postgresql://{secured_role}@127.0.0.1:{port}/postgres", "wrong or missing password"),
        (f"postgresql://nobody@127.0.0.1:{port}/postgres", "no user 'nobody'"),
        (f"postgresql://postgres@127.0.0.1:{port}/no_such_db", "does not exist"),
        (f"postgresql://postgres@127.0.0.1:{port}/postgres", "not a text2seg project"),
        ("postgresql://postgres@127.0.0.1:notaport/x", "cannot read the database URL"),
        ("mysql://root:pw@localhost/db", "mysql:// is not a project location"),
    ]
    with caplog.at_level(logging.DEBUG):
        for url, message in cases:
            with pytest.raises(InputError, match=message) as err:
                Project.open(url)
            assert SECRET not in str(err.value) and "pw@" not in str(err.value)
    assert SECRET not in caplog.text
    # "not a project" wrote nothing into the database it looked at
    engine = sa.create_engine(pg_cluster.url().replace("postgresql://", "postgresql+psycopg://"))
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()
    # the CLI says the same in one line, exit code 1
    result = CliRunner().invoke(main, ["project", "stats", cases[1][0]])
    assert result.exit_code == 1 and "wrong or missing password" in result.output
    assert SECRET not in result.output


def test_a_password_never_reaches_logs_history_manifests_or_the_project(
        pg_cluster, secured_role, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    url = f"postgresql://{secured_role}:{SECRET}@127.0.0.1:{pg_cluster.port}/pw_{free_port()}"
    with caplog.at_level(logging.DEBUG):
        p, image_id, ids = small_project(url, write_png(tmp_path / "a.png"))
        p.accept(ids[0], user="anna")
        assert p.location == redact(url) and SECRET not in p.location
        export_coco(p, tmp_path / "coco", states=None)
        p.backup(tmp_path / "b.sqlite")
        dump = json.dumps([dict(r) for t in ("meta", "actions", "changes", "runs", "images")
                           for r in p.database.query(f"SELECT * FROM {t}")])
        p.close()
    assert SECRET not in dump and SECRET not in caplog.text
    for path in list((tmp_path / "coco").rglob("*.json")) + [tmp_path / "b.sqlite"]:
        assert SECRET.encode() not in path.read_bytes(), path


def test_copy_round_trip_sqlite_postgresql_sqlite_is_identical(pg_cluster, tmp_path: Path) -> None:
    inside = tmp_path / "proj"
    (tmp_path / "imgs").mkdir()
    p, image_id, ids = small_project(inside, write_png(tmp_path / "imgs" / "a.png"))
    p.add_image(write_png(inside / "in-folder.png", seed=4))  # stored relative to the folder
    p.accept(ids[0], user="anna")
    p.reject(ids[1], user="ben")
    second = p.add_annotation(image_id, rect(64, 80, 40, 40, 60, 70), "road", user="anna")
    p.relabel(second, "building", user="carl")
    p.add_time(image_id, 12.5)
    run = p.start_run({"models": "tiny"})
    p.add_candidates(image_id, [Candidate.from_mask(rect(64, 80, 1, 1, 9, 9), class_name="road",
                                                    score=0.4, branch="filter")], run)
    p.mark_image_processed(image_id, run)
    third = p.add_annotation(image_id, rect(64, 80, 50, 0, 60, 10), "road")
    p.delete_annotation(third)  # the highest annotation id is gone: it must not be given again
    p.delete_annotation(second)
    p.undo()  # the history holds an undone action: redo must work on the copies
    history = p.history(20)
    before = digest(p.database, resolve=lambda s: str(p.catalog.resolve(s)))
    export_coco(p, tmp_path / "coco-a", states=None, images="none")
    p.close()

    root = tmp_path  # the team's image root on this machine
    url = pg_cluster.new_url()
    report = copy_project(inside, url, image_root=root)
    assert report.rows["annotations"] == 2 and report.rows["changes"] > 0
    with Project.open(url, image_root=root) as team:
        stored = [r[0] for r in team.database.query("SELECT path FROM images ORDER BY id")]
        assert stored == ["imgs/a.png", "proj/in-folder.png"]  # relative to the image root
        assert team.missing_images() == []
        assert digest(team.database, resolve=lambda s: str(team.catalog.resolve(s))) == before
        assert team.project_id == Project.open(inside).project_id
    back = tmp_path / "back"
    result = CliRunner().invoke(main, ["--image-root", str(root), "project", "copy", url, str(back)])
    assert result.exit_code == 0, result.output
    assert "copied postgresql://postgres@127.0.0.1" in result.output
    with Project.open(back) as q:
        assert digest(q.database, resolve=lambda s: str(q.catalog.resolve(s))) == before
        export_coco(q, tmp_path / "coco-b", states=None, images="none")
        # the history travels: same entries, and the undone action redoes on the copy
        assert q.history(20) == history
        assert str(q.redo()) == f"delete annotation {second}" and not q.can_redo
        new = q.add_annotation(image_id, rect(64, 80, 0, 0, 5, 5), "road")
        assert new == third + 1
    a = json.loads((tmp_path / "coco-a" / "annotations.json").read_text())
    b = json.loads((tmp_path / "coco-b" / "annotations.json").read_text())
    for key in ("images", "annotations", "categories"):
        assert a[key] == b[key]
    assert len(a["annotations"]) == 2


def test_copy_refuses_a_destination_with_work_and_leaves_it_alone(pg_cluster, tmp_path: Path) -> None:
    src, _, ids = small_project(tmp_path / "src", write_png(tmp_path / "a.png"))
    src.close()
    url = pg_cluster.new_url()
    dest, _, dest_ids = small_project(url, write_png(tmp_path / "b.png", seed=2))
    dest.accept(dest_ids[0])
    dest.close()
    with pytest.raises(InputError, match="already holds a project"):
        copy_project(tmp_path / "src", url)
    with Project.open(url) as dest:
        assert len(dest.annotations()) == 1


def test_reconnects_after_a_server_restart(pg_cluster, tmp_path: Path,
                                           caplog: pytest.LogCaptureFixture) -> None:
    p, image_id, ids = small_project(pg_cluster.new_url(), write_png(tmp_path / "a.png"))
    p.accept(ids[0])
    pg_cluster.restart(mode="immediate")  # a crash: every connection is cut
    with caplog.at_level(logging.INFO):
        p.reject(ids[1])  # the next action reconnects and is applied
    assert "was lost" in caplog.text and "connected to" in caplog.text
    assert [c.status for c in p.candidates(image_id)] == ["accepted", "rejected", "proposed"]
    assert p.integrity_check() == "ok"
    # the server goes away for good: one clear error, nothing half-written
    pg_cluster.stop()
    try:
        with pytest.raises(ConnectionLostError, match="could not be opened again"):
            p.accept(ids[2])
    finally:
        pg_cluster.start()
    p.accept(ids[2])
    assert [c.status for c in p.candidates(image_id)] == ["accepted", "rejected", "accepted"]
    p.close()


def test_same_ids_and_float_scores_on_both_databases(project_at, tmp_path: Path) -> None:
    p, image_id, ids = small_project(project_at, write_png(tmp_path / "a.png"))
    assert ids == [1, 2, 3] and [c.candidate.score for c in p.candidates(image_id)] == [0.9, 0.6, 0.3]
    mask = np.zeros((64, 80), bool)
    mask[5:9, 5:9] = True
    ann = p.add_annotation(image_id, mask, "road", score=0.123456789012345)
    assert p.annotation(ann).score == 0.123456789012345  # float8, not float4
    p.close()


def _columns(url: str) -> dict[str, list[tuple[str, str, bool]]]:
    engine = sa.create_engine(url)
    inspector = sa.inspect(engine)
    out = {}
    for t in inspector.get_table_names():
        if t == "alembic_version":
            continue
        keys = set(inspector.get_pk_constraint(t)["constrained_columns"])
        # (SQLite reports an INTEGER PRIMARY KEY as nullable; it is the rowid and never is.)
        out[t] = [(c["name"], type(c["type"]).__name__.upper(), bool(c["nullable"]) and c["name"] not in keys)
                  for c in inspector.get_columns(t)]
    engine.dispose()
    return out


def test_both_databases_have_the_same_tables_columns_and_nullability(pg_cluster, tmp_path: Path) -> None:
    """The PostgreSQL schema is the SQLite one translated: same tables, columns in the same order,
    same NOT NULLs; the types differ only as the translation says (ids and areas BIGINT, REAL
    float8)."""
    Project.create(tmp_path / "lite", classes=["road"]).close()
    url = pg_cluster.new_url()
    Project.create(url, classes=["road"]).close()
    lite = _columns(f"sqlite:///{tmp_path / 'lite' / 'project.sqlite'}")
    pg = _columns(url.replace("postgresql://", "postgresql+psycopg://"))
    assert sorted(lite) == sorted(pg) and len(pg) == 15
    names = {t: [(n, null) for n, _type, null in cols] for t, cols in lite.items()}
    assert names == {t: [(n, null) for n, _type, null in cols] for t, cols in pg.items()}
    words = {"INTEGER": {"INTEGER", "BIGINT"}, "REAL": {"DOUBLE_PRECISION"}, "TEXT": {"TEXT"}}
    for table, cols in lite.items():
        for (name, lite_type, _), (_, pg_type, _) in zip(cols, pg[table]):
            assert pg_type in words[lite_type], (table, name, lite_type, pg_type)
    assert [(n, t) for n, t, _ in pg["annotations"]][:10] == [
        ("id", "BIGINT"), ("image_id", "BIGINT"), ("class_id", "BIGINT"), ("counts", "TEXT"),
        ("height", "INTEGER"), ("width", "INTEGER"), ("bbox", "TEXT"), ("area", "BIGINT"),
        ("score", "DOUBLE_PRECISION"), ("source", "TEXT")]
