"""The project database schema on SQLite and PostgreSQL, its versions, and upgrading to them.

Schema versions are Alembic revisions ``0001``, ``0002``, ... (``store/migrations/versions``), kept
in the ``alembic_version`` table. Each revision runs the statements of one step for the database's
dialect (:data:`SQLITE_STEPS`, :data:`POSTGRESQL_STEPS`: the same tables, columns, constraints and
triggers written for each). :func:`migrate` runs the missing steps in ONE transaction under the
write lock, so an old project opens as the current version or not at all. SQLite projects written
before Alembic kept their version in ``PRAGMA user_version`` only: they are stamped at that
revision first, and ``user_version`` keeps being set (an older text2seg-widgets reads it to refuse
a newer project). Version 0 is an empty database.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import TYPE_CHECKING

from alembic import command
from alembic.config import Config

from text2seg_widgets.errors import InputError

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection as SAConnection

    from text2seg_widgets.store.db import Conn, Database

__all__ = ["SCHEMA_VERSION", "SQLITE_STEPS", "POSTGRESQL_STEPS", "IMAGE_STATES", "check_state",
           "CANDIDATE_STATUSES", "ORIGINS", "INVARIANT_MESSAGE", "migrate", "run_step",
           "schema_version", "revision_of", "latest_version", "MIGRATIONS_DIR", "ROLES",
           "REVIEW_STATES", "ASSIGNMENT_KINDS"]

#: Review states of an image, in the order the widget shows them.
IMAGE_STATES = ("unreviewed", "in progress", "done", "skipped")
#: Review statuses of a candidate.
CANDIDATE_STATUSES = ("proposed", "accepted", "rejected")

_V1 = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE classes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    color TEXT NOT NULL,
    prompts TEXT NOT NULL DEFAULT '[]'
);
CREATE TABLE images (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    crs TEXT,
    transform TEXT NOT NULL,
    checksum TEXT NOT NULL,
    win TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'unreviewed'
        CHECK (state IN ('unreviewed', 'in progress', 'done', 'skipped')),
    state_user TEXT,
    state_at TEXT,
    added_at TEXT NOT NULL,
    UNIQUE (path, win)
);
CREATE TABLE runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    manifest TEXT NOT NULL,
    started_at TEXT NOT NULL,
    finished_at TEXT
);
CREATE TABLE processed (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    run_id INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    at TEXT NOT NULL,
    PRIMARY KEY (image_id, run_id)
);
CREATE TABLE candidates (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id),
    run_id INTEGER REFERENCES runs(id),
    class_id INTEGER NOT NULL REFERENCES classes(id),
    counts TEXT NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    bbox TEXT NOT NULL,
    area INTEGER NOT NULL,
    score REAL NOT NULL,
    branch TEXT NOT NULL,
    prompt TEXT NOT NULL DEFAULT '',
    model TEXT NOT NULL DEFAULT '',
    extra TEXT NOT NULL DEFAULT '{}',
    status TEXT NOT NULL DEFAULT 'proposed' CHECK (status IN ('proposed', 'accepted', 'rejected')),
    reviewed_by TEXT,
    reviewed_at TEXT
);
CREATE INDEX candidates_image ON candidates(image_id, status);
CREATE TABLE annotations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id),
    class_id INTEGER NOT NULL REFERENCES classes(id),
    counts TEXT NOT NULL,
    height INTEGER NOT NULL,
    width INTEGER NOT NULL,
    bbox TEXT NOT NULL,
    area INTEGER NOT NULL,
    score REAL NOT NULL,
    source TEXT NOT NULL,
    candidate_id INTEGER REFERENCES candidates(id),
    user TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX annotations_image ON annotations(image_id);
CREATE TABLE actions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    description TEXT NOT NULL,
    user TEXT,
    at TEXT NOT NULL,
    undone INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX actions_undone ON actions(undone, id);
CREATE TABLE changes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id INTEGER NOT NULL REFERENCES actions(id) ON DELETE CASCADE,
    tbl TEXT NOT NULL,
    row_id INTEGER NOT NULL,
    before TEXT,
    after TEXT
);
CREATE INDEX changes_action ON changes(action_id);
"""

#: Where an annotation came from (effort accounting): accepted as the pipeline proposed it,
#: proposed then corrected by hand, drawn from scratch, or imported from another dataset.
ORIGINS = ("proposed", "corrected", "drawn", "imported")

# Version 2: review integrity and effort.
# - images.state_note: why an image was skipped (or other note on its state);
# - image_time: seconds spent per image (kept outside ``images`` so that timing, which is not an
#   undo step, never makes an undo of a state change look like a conflict);
# - annotations.origin / edit_actions (see ORIGINS). Old rows: an annotation whose mask still
#   equals its candidate's is ``proposed`` (0 actions); one that differs is ``corrected`` and one
#   without a candidate ``drawn`` (1 action each: at least one happened, how many is unknown);
#   source ``import`` -> ``imported``;
# - the invariant "an image is done only when none of its candidates is proposed", enforced by
#   triggers (old projects: such images are reopened as ``in progress`` first).
_V2 = """
ALTER TABLE images ADD COLUMN state_note TEXT NOT NULL DEFAULT '';
CREATE TABLE image_time (
    image_id INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    seconds REAL NOT NULL DEFAULT 0
);
ALTER TABLE annotations ADD COLUMN origin TEXT NOT NULL DEFAULT 'drawn'
    CHECK (origin IN ('proposed', 'corrected', 'drawn', 'imported'));
ALTER TABLE annotations ADD COLUMN edit_actions INTEGER NOT NULL DEFAULT 0;
UPDATE annotations SET
    origin = CASE
        WHEN source = 'import' THEN 'imported'
        WHEN candidate_id IS NULL THEN 'drawn'
        WHEN counts = (SELECT c.counts FROM candidates c WHERE c.id = annotations.candidate_id)
            THEN 'proposed'
        ELSE 'corrected' END,
    edit_actions = CASE
        WHEN source = 'import' THEN 0
        WHEN candidate_id IS NOT NULL AND counts = (SELECT c.counts FROM candidates c
                                                    WHERE c.id = annotations.candidate_id) THEN 0
        ELSE 1 END;
UPDATE images SET state = 'in progress' WHERE state = 'done' AND EXISTS (
    SELECT 1 FROM candidates c WHERE c.image_id = images.id AND c.status = 'proposed');
CREATE TRIGGER images_done_needs_review BEFORE UPDATE OF state ON images
WHEN NEW.state = 'done' AND EXISTS (
    SELECT 1 FROM candidates c WHERE c.image_id = NEW.id AND c.status = 'proposed')
BEGIN
    SELECT RAISE(ABORT, 'unreviewed candidates on an image marked done');
END;
CREATE TRIGGER candidates_proposed_on_done BEFORE UPDATE OF status ON candidates
WHEN NEW.status = 'proposed' AND EXISTS (
    SELECT 1 FROM images i WHERE i.id = NEW.image_id AND i.state = 'done')
BEGIN
    SELECT RAISE(ABORT, 'unreviewed candidates on an image marked done');
END;
CREATE TRIGGER candidates_insert_on_done BEFORE INSERT ON candidates
WHEN NEW.status = 'proposed' AND EXISTS (
    SELECT 1 FROM images i WHERE i.id = NEW.image_id AND i.state = 'done')
BEGIN
    SELECT RAISE(ABORT, 'unreviewed candidates on an image marked done');
END;
"""

#: The message of the triggers above (how :mod:`.history` recognises a refused replay).
INVARIANT_MESSAGE = "unreviewed candidates on an image marked done"

# Version 3: sharing work and knowing which project a file belongs to.
# - claims: an image held by one worker (a pseudo-label run, an embed run) until ``expires_at``
#   (seconds since the epoch); ``holder`` names the host, process and run (see :mod:`.claims`);
# - meta.project_id: a random identity given once, kept by backups and checked by restore;
# - an index on (checksum, win): adding a file whose bytes are already in the project is noticed.
_V3 = """
CREATE TABLE claims (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (image_id, kind)
);
INSERT OR IGNORE INTO meta (key, value) VALUES ('project_id', lower(hex(randomblob(16))));
CREATE INDEX images_checksum ON images(checksum, win);
"""


#: People's roles in a team project (see :mod:`.people`).
ROLES = ("annotator", "reviewer", "manager")
#: Review-stage verdicts of a finished image ('' = no review stage: a one-person project).
REVIEW_STATES = ("", "pending", "approved", "returned")
#: Why an image is assigned to someone.
ASSIGNMENT_KINDS = ("work", "consensus", "honeypot")

# Version 4: teams.
# - members: who may do what (an empty table: everyone may do everything, as before);
# - assignments: which images are whose (see :mod:`.assignments`);
# - leases: an image being labelled by a person, until ``expires_at`` (seconds since the epoch),
#   renewed by every write they make on it;
# - images.review / review_note / reviewed_by / reviewed_at: the review stage of a finished image
#   (pending -> approved, or returned with a note), and review_events: every verdict with its
#   comment (the annotator reads it when the image comes back).
_V4 = """
CREATE TABLE members (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL CHECK (role IN ('annotator', 'reviewer', 'manager')),
    added_at TEXT NOT NULL,
    added_by TEXT
);
CREATE TABLE assignments (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    "user" TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'work' CHECK (kind IN ('work', 'consensus', 'honeypot')),
    assigned_at TEXT NOT NULL,
    PRIMARY KEY (image_id, "user")
);
CREATE INDEX assignments_user ON assignments("user");
CREATE TABLE leases (
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    "user" TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (image_id, "user")
);
ALTER TABLE images ADD COLUMN review TEXT NOT NULL DEFAULT ''
    CHECK (review IN ('', 'pending', 'approved', 'returned'));
ALTER TABLE images ADD COLUMN review_note TEXT NOT NULL DEFAULT '';
ALTER TABLE images ADD COLUMN reviewed_by TEXT;
ALTER TABLE images ADD COLUMN reviewed_at TEXT;
CREATE TABLE review_events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    image_id INTEGER NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    "user" TEXT,
    verdict TEXT NOT NULL,
    comment TEXT NOT NULL DEFAULT '',
    at TEXT NOT NULL
);
CREATE INDEX review_events_image ON review_events(image_id);
"""

# Version 5: consensus and honeypot replicas. An image given to several annotators to label
# independently (consensus), or a ground-truth image mixed into someone's work (honeypot), is
# labelled on a *replica*: a row of its own (``replica`` = the annotator, ``replica_of`` = the
# image), with its own state, candidates and annotations, so nobody sees the others' masks. The
# uniqueness of (path, win) becomes (path, win, replica). SQLite cannot change a UNIQUE
# constraint in place: the table is rebuilt (foreign keys are off during the step, see
# :func:`migrate`; the ids, the next id, the index and the trigger are kept).
_IMAGES_V5 = """
CREATE TABLE images_v5 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    path TEXT NOT NULL,
    width INTEGER NOT NULL,
    height INTEGER NOT NULL,
    crs TEXT,
    transform TEXT NOT NULL,
    checksum TEXT NOT NULL,
    win TEXT NOT NULL DEFAULT '',
    state TEXT NOT NULL DEFAULT 'unreviewed'
        CHECK (state IN ('unreviewed', 'in progress', 'done', 'skipped')),
    state_user TEXT,
    state_at TEXT,
    added_at TEXT NOT NULL,
    state_note TEXT NOT NULL DEFAULT '',
    review TEXT NOT NULL DEFAULT '' CHECK (review IN ('', 'pending', 'approved', 'returned')),
    review_note TEXT NOT NULL DEFAULT '',
    reviewed_by TEXT,
    reviewed_at TEXT,
    replica TEXT NOT NULL DEFAULT '',
    replica_of INTEGER REFERENCES images_v5(id) ON DELETE CASCADE,
    UNIQUE (path, win, replica)
);
"""
_IMAGE_COLUMNS = ("id, path, width, height, crs, transform, checksum, win, state, state_user, "
                  "state_at, added_at, state_note, review, review_note, reviewed_by, reviewed_at")
_V5 = _IMAGES_V5 + f"""
INSERT INTO images_v5 ({_IMAGE_COLUMNS}) SELECT {_IMAGE_COLUMNS} FROM images;
INSERT INTO sqlite_sequence (name, seq) SELECT 'images_v5', seq FROM sqlite_sequence
    WHERE name = 'images' AND NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'images_v5');
UPDATE sqlite_sequence SET seq = (SELECT MAX(seq) FROM sqlite_sequence
    WHERE name IN ('images', 'images_v5')) WHERE name = 'images_v5';
DROP TRIGGER candidates_proposed_on_done;
DROP TRIGGER candidates_insert_on_done;
DROP TABLE images;
ALTER TABLE images_v5 RENAME TO images;
CREATE TRIGGER candidates_proposed_on_done BEFORE UPDATE OF status ON candidates
WHEN NEW.status = 'proposed' AND EXISTS (
    SELECT 1 FROM images i WHERE i.id = NEW.image_id AND i.state = 'done')
BEGIN
    SELECT RAISE(ABORT, 'unreviewed candidates on an image marked done');
END;
CREATE TRIGGER candidates_insert_on_done BEFORE INSERT ON candidates
WHEN NEW.status = 'proposed' AND EXISTS (
    SELECT 1 FROM images i WHERE i.id = NEW.image_id AND i.state = 'done')
BEGIN
    SELECT RAISE(ABORT, 'unreviewed candidates on an image marked done');
END;
CREATE INDEX images_checksum ON images(checksum, win);
CREATE INDEX images_replica_of ON images(replica_of);
CREATE TRIGGER images_done_needs_review BEFORE UPDATE OF state ON images
WHEN NEW.state = 'done' AND EXISTS (
    SELECT 1 FROM candidates c WHERE c.image_id = NEW.id AND c.status = 'proposed')
BEGIN
    SELECT RAISE(ABORT, 'unreviewed candidates on an image marked done');
END;
"""

# The same steps for PostgreSQL. Tables, columns and indexes are the SQLite statements translated
# by :func:`_to_postgresql` (identity ids, BIGINT keys and areas, DOUBLE PRECISION for REAL: float8
# like SQLite's REAL, the reserved word ``user`` quoted); what SQLite says in its own words is
# written for PostgreSQL below: the review-invariant triggers as PL/pgSQL functions raising the
# same message with SQLSTATE 23514 (check_violation: an IntegrityError on both databases), the
# project id, and version 5's change of a UNIQUE constraint (in place, no table rebuild).
_PG_TRIGGERS = [
    f"""CREATE FUNCTION t2s_image_done_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'done' AND EXISTS (
            SELECT 1 FROM candidates c WHERE c.image_id = NEW.id AND c.status = 'proposed') THEN
        RAISE EXCEPTION '{INVARIANT_MESSAGE}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$""",
    f"""CREATE FUNCTION t2s_candidate_done_check() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.status = 'proposed' AND EXISTS (
            SELECT 1 FROM images i WHERE i.id = NEW.image_id AND i.state = 'done') THEN
        RAISE EXCEPTION '{INVARIANT_MESSAGE}' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END $$""",
    """CREATE TRIGGER images_done_needs_review BEFORE UPDATE OF state ON images
    FOR EACH ROW EXECUTE FUNCTION t2s_image_done_check()""",
    """CREATE TRIGGER candidates_proposed_on_done BEFORE UPDATE OF status ON candidates
    FOR EACH ROW EXECUTE FUNCTION t2s_candidate_done_check()""",
    """CREATE TRIGGER candidates_insert_on_done BEFORE INSERT ON candidates
    FOR EACH ROW EXECUTE FUNCTION t2s_candidate_done_check()""",
]
_PG_PROJECT_ID = ("INSERT INTO meta (key, value) VALUES ('project_id', "
                  "replace(gen_random_uuid()::text, '-', '')) ON CONFLICT (key) DO NOTHING")
_PG_V5 = [
    "ALTER TABLE images ADD COLUMN replica TEXT NOT NULL DEFAULT ''",
    "ALTER TABLE images ADD COLUMN replica_of BIGINT REFERENCES images(id) ON DELETE CASCADE",
    "ALTER TABLE images DROP CONSTRAINT images_path_win_key",
    "ALTER TABLE images ADD CONSTRAINT images_path_win_replica_key UNIQUE (path, win, replica)",
    "CREATE INDEX images_replica_of ON images(replica_of)",
]

#: SQLite column types and words -> PostgreSQL, applied in order by :func:`_to_postgresql`.
_PG_WORDS = (
    (r"\bINTEGER PRIMARY KEY AUTOINCREMENT\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY"),
    (r"\b(\w+_id|area) INTEGER\b", r"\1 BIGINT"),
    (r"\bREAL\b", "DOUBLE PRECISION"),
    (r"(?m)^(\s+)user TEXT\b", r'\1"user" TEXT'),
)


def _to_postgresql(statement: str) -> str:
    """An SQLite CREATE TABLE / ALTER TABLE / CREATE INDEX statement in PostgreSQL's words."""
    for pattern, replacement in _PG_WORDS:
        statement = re.sub(pattern, replacement, statement)
    return statement


def _portable(script: str) -> list[str]:
    """The statements of an SQLite step that PostgreSQL runs translated: table, column and index
    definitions (triggers, data fixes for old SQLite projects and SQLite-only words are not)."""
    return [_to_postgresql(s) for s in _statements(script)
            if s.startswith(("CREATE TABLE", "CREATE INDEX", "ALTER TABLE"))]


def _statements(script: str) -> list[str]:
    """Split an SQLite script into complete statements (trigger bodies hold ``;`` of their own)."""
    out, current = [], ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                out.append(current.strip())
            current = ""
    if current.strip():
        out.append(current.strip())
    return out


#: version -> the statements that upgrade ``version - 1`` to ``version``, per dialect.
#: Append (with an Alembic revision that runs it); never edit a shipped step.
SQLITE_STEPS: dict[int, list[str]] = {v: _statements(s) for v, s in
                                      ((1, _V1), (2, _V2), (3, _V3), (4, _V4), (5, _V5))}
POSTGRESQL_STEPS: dict[int, list[str]] = {1: _portable(_V1), 2: _portable(_V2) + _PG_TRIGGERS,
                                           3: _portable(_V3) + [_PG_PROJECT_ID], 4: _portable(_V4),
                                           5: _PG_V5}
SCHEMA_VERSION = max(SQLITE_STEPS)
assert set(SQLITE_STEPS) == set(POSTGRESQL_STEPS)

#: The Alembic script folder (env.py and versions/).
MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def check_state(state: str) -> None:
    """:class:`InputError` unless ``state`` is one of :data:`IMAGE_STATES`."""
    if state not in IMAGE_STATES:
        raise InputError(f"unknown image state {state!r}; use one of {', '.join(IMAGE_STATES)}")


def latest_version() -> int:
    """The newest schema this package writes (the last step of :data:`SQLITE_STEPS`)."""
    return max(SQLITE_STEPS)


def revision_of(version: int) -> str:
    """The Alembic revision id of schema ``version`` (``3`` -> ``"0003"``)."""
    return f"{int(version):04d}"


def run_step(connection: "SAConnection", version: int) -> None:
    """Run step ``version`` on ``connection`` in its dialect (called by the Alembic revisions)."""
    steps = SQLITE_STEPS if connection.dialect.name == "sqlite" else POSTGRESQL_STEPS
    for statement in steps[version]:
        connection.exec_driver_sql(statement)


def schema_version(conn: "Conn") -> int:
    """The schema version of the database behind ``conn`` (0: empty). SQLite: the higher of the
    Alembic revision and ``PRAGMA user_version`` (which versions before Alembic wrote)."""
    pragma = 0
    if conn.dialect == "sqlite":
        pragma = int(conn.execute("PRAGMA user_version").fetchone()[0])  # type: ignore[index]
    if _has_table(conn, "alembic_version"):
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
        if row is not None:
            text = str(row[0])
            if not text.isdigit():
                raise InputError(f"this database's schema revision {text!r} is not one of "
                                 "text2seg-widgets'; it is not a text2seg project")
            return max(int(text), pragma)
    return pragma


def _alembic(connection: "SAConnection") -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.attributes["connection"] = connection
    return cfg


def migrate(db: "Database", *, target: int | None = None) -> int:
    """Upgrade the database to ``target`` in one transaction; return the version it had before.

    A database newer than this package raises :class:`InputError` rather than being touched."""
    sqlite = db.dialect == "sqlite"
    if sqlite:  # a step may rebuild a table (SQLite's documented way needs foreign keys off)
        with db.lock:
            db.conn.execute("PRAGMA foreign_keys = OFF")
    try:
        return _migrate_locked(db, target)
    finally:
        if sqlite:
            with db.lock:
                db.conn.execute("PRAGMA foreign_keys = ON")


def _migrate_locked(db: "Database", target: int | None) -> int:
    latest = latest_version()
    target = latest if target is None else target
    with db.raw() as tx:
        before = schema_version(tx.conn)
        if before > latest:
            raise InputError(
                f"this project was written by a newer text2seg-widgets (schema {before}, this "
                f"version reads up to {latest}); upgrade text2seg-widgets to open it")
        if before >= target:
            return before
        cfg = _alembic(tx.conn.sa)
        if before > 0 and not _has_alembic_row(tx.conn):
            command.stamp(cfg, revision_of(before))
        command.upgrade(cfg, revision_of(target))
        if tx.conn.dialect == "sqlite":
            broken = tx.conn.execute("PRAGMA foreign_key_check").fetchall()
            if broken:
                raise InputError(f"the upgrade would leave {len(broken)} row(s) pointing at "
                                 "missing rows; the project was left unchanged")
            tx.conn.execute(f"PRAGMA user_version = {int(target)}")
    return before


def _has_alembic_row(conn: "Conn") -> bool:
    return _has_table(conn, "alembic_version") and \
        conn.execute("SELECT 1 FROM alembic_version").fetchone() is not None


def _has_table(conn: "Conn", name: str) -> bool:
    if conn.dialect == "sqlite":
        sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"
    else:
        sql = ("SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() "
               "AND table_name = ?")
    return conn.execute(sql, (name,)).fetchone() is not None
