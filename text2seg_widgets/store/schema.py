"""The project database schema, its version number and the migrations between versions.

The schema version lives in ``PRAGMA user_version``. :data:`MIGRATIONS` maps each version ``v`` to
the SQL that turns a version ``v - 1`` database into a version ``v`` one; :func:`migrate` runs the
missing steps in one transaction, so an old project opens as the current version or not at all.
Version 0 is an empty file.
"""

from __future__ import annotations

import sqlite3

from text2seg_widgets.errors import InputError

__all__ = ["SCHEMA_VERSION", "MIGRATIONS", "IMAGE_STATES", "check_state", "CANDIDATE_STATUSES", "ORIGINS",
           "INVARIANT_MESSAGE", "migrate"]

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

#: version -> SQL that upgrades ``version - 1`` to ``version``. Append; never edit a shipped step.
MIGRATIONS: dict[int, str] = {1: _V1, 2: _V2, 3: _V3}
SCHEMA_VERSION = max(MIGRATIONS)


def check_state(state: str) -> None:
    """:class:`InputError` unless ``state`` is one of :data:`IMAGE_STATES`."""
    if state not in IMAGE_STATES:
        raise InputError(f"unknown image state {state!r}; use one of {', '.join(IMAGE_STATES)}")


def user_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA user_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, *, target: int | None = None) -> int:
    """Upgrade the database to ``target`` in one transaction; return the version it had before.

    ``conn`` must be in autocommit mode (``isolation_level=None``). A database newer than this
    package raises :class:`InputError` rather than being touched.
    """
    latest = max(MIGRATIONS)
    target = latest if target is None else target
    conn.execute("BEGIN IMMEDIATE")
    try:
        before = user_version(conn)
        if before > latest:
            raise InputError(
                f"this project was written by a newer text2seg-widgets (schema {before}, this "
                f"version reads up to {latest}); upgrade text2seg-widgets to open it")
        for version in range(before + 1, target + 1):
            for statement in _statements(MIGRATIONS[version]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {int(version)}")
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return before


def _statements(script: str) -> list[str]:
    """Split a script into complete statements (trigger bodies hold ``;`` of their own)."""
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
