"""People and roles: who may do what in a project, checked by the store on every write.

A project with no members (every one-person project) lets its user do everything, as before.
Once it has members (a team project gets its creator as ``manager``), every write names a user
(``user=``, ``TEXT2SEG_USER`` or the login name), and :data:`PERMISSIONS` says which roles may do
it:

=============  ================================================================================
``annotate``   accept, reject, draw, edit, delete masks; set an image's state; finish an image
``review``     approve or return a finished image; resolve disagreements
``classes``    add, rename, recolour or remove classes
``assign``     spread images over annotators
``members``    add people, change their roles
``restore``    put a backup back, import a dataset over the project
=============  ================================================================================

Roles: ``annotator`` may annotate; ``reviewer`` may annotate and review; ``manager`` may do all.
The checks run inside the write's transaction (:meth:`People.guard`, installed on the database
by :class:`~.project.Project`), so no code path around them writes.

These are the tool's rules, recorded with every write; they do not replace the database's own
accounts (each person's PostgreSQL login is what the server itself trusts).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.store.db import ConflictError, now
from text2seg_widgets.store.schema import ROLES

if TYPE_CHECKING:
    from text2seg_widgets.store.actor import Actor
    from text2seg_widgets.store.db import Database, Tx

__all__ = ["People", "PERMISSIONS", "NotAllowedError", "LEASE_TTL_S", "check_role"]

#: what -> the roles that may do it.
PERMISSIONS: dict[str, frozenset[str]] = {
    "annotate": frozenset(ROLES),
    "review": frozenset({"reviewer", "manager"}),
    "classes": frozenset({"manager"}),
    "assign": frozenset({"manager"}),
    "members": frozenset({"manager"}),
    "restore": frozenset({"manager"}),
}
#: How long a lease lives without a write (a closed laptop gives the image back after this).
LEASE_TTL_S = 15 * 60.0


class NotAllowedError(InputError):
    """The user's role does not allow the action; nothing was written."""


def check_role(role: str) -> str:
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; use one of {', '.join(ROLES)}")
    return role


class People:
    """The members table and the write guard (built by :class:`~.project.Project`)."""

    def __init__(self, db: "Database", actor: "Actor", lease_ttl_s: float = LEASE_TTL_S) -> None:
        self.db, self.actor = db, actor
        self.lease_ttl_s = float(lease_ttl_s)

    # ------------------------------------------------------------------ members
    def members(self) -> dict[str, str]:
        """name -> role, by name."""
        return {str(r[0]): str(r[1]) for r in
                self.db.query("SELECT name, role FROM members ORDER BY name")}

    def is_team(self) -> bool:
        """True once the project has members (roles are checked from then on)."""
        return bool(self.db.query("SELECT 1 FROM members LIMIT 1"))

    def role_of(self, user: str | None) -> str | None:
        rows = self.db.query("SELECT role FROM members WHERE name = ?", (user or "",))
        return str(rows[0][0]) if rows else None

    def set_member(self, name: str, role: str, *, user: str | None = None) -> None:
        """Add ``name`` with ``role``, or change their role (a manager's action; the first
        member of a project may be added by anyone, and must be a manager)."""
        name = " ".join(str(name).split())
        if not name:
            raise InputError("a member needs a name (their login or TEXT2SEG_USER)")
        check_role(role)
        who = self.actor.who(user)
        with self.db.raw() as tx:
            team = tx.conn.execute("SELECT 1 FROM members LIMIT 1").fetchone() is not None
            if not team and role != "manager":
                raise InputError("the first member of a project must be a manager (to add "
                                 "the others); add yourself first: --role manager")
            if team:
                self.require(tx, who, "members")
                managers = [r[0] for r in tx.conn.execute(
                    "SELECT name FROM members WHERE role = 'manager'").fetchall()]
                if managers == [name] and role != "manager":
                    raise InputError(f"{name} is the project's only manager; make someone else "
                                     "manager first")
            tx.conn.execute(
                "INSERT INTO members (name, role, added_at, added_by) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (name) DO UPDATE SET role = excluded.role",
                (name, role, now(), who))

    def remove_member(self, name: str, *, user: str | None = None) -> None:
        who = self.actor.who(user)
        with self.db.raw() as tx:
            self.require(tx, who, "members")
            role = tx.conn.execute("SELECT role FROM members WHERE name = ?", (name,)).fetchone()
            if role is None:
                raise InputError(f"{name} is not a member of this project")
            if role[0] == "manager" and tx.conn.execute(
                    "SELECT COUNT(*) FROM members WHERE role = 'manager'").scalar() == 1:
                raise InputError(f"{name} is the project's only manager; make someone else "
                                 "manager first")
            tx.conn.execute("DELETE FROM members WHERE name = ?", (name,))
            tx.conn.execute('DELETE FROM leases WHERE "user" = ?', (name,))

    # ------------------------------------------------------------------ checks
    def require(self, tx: "Tx", user: str | None, what: str) -> None:
        """:class:`NotAllowedError` unless ``user`` may do ``what`` (always allowed in a project
        without members)."""
        allowed = PERMISSIONS[what]
        row = tx.conn.execute("SELECT role FROM members WHERE name = ?", (user or "",)).fetchone()
        if row is None:
            if tx.conn.execute("SELECT 1 FROM members LIMIT 1").fetchone() is None:
                return
            raise NotAllowedError(
                f"{user or 'this user'} is not a member of this project, so cannot {what}; ask "
                f"a manager to add you (`text2seg-widgets project members add PROJECT "
                f"{user or 'NAME'} --role annotator`), or set TEXT2SEG_USER / --user")
        if row[0] not in allowed:
            roles = " or ".join(f"{r}s" for r in sorted(allowed))
            raise NotAllowedError(f"{user} is {_article(row[0])} {row[0]}: only {roles} may "
                                  f"{_VERBS.get(what, what)}; nothing was changed")

    def guard(self, tx: "Tx", table: str, before: dict[str, Any] | None,
              after: dict[str, Any] | None) -> None:
        """Checks every user write (an undoable action's row change) before it stands: the
        writer's role, and that no one else holds a live lease on the image it touches; a write
        on an image renews (or takes) the writer's lease."""
        user = tx.user
        if table == "classes":
            self.require(tx, user, "classes")
            return
        row = after if after is not None else before
        if row is None:
            return
        if table == "images":
            now_row = after or {}
            changed = {k for k in now_row if before is None or before.get(k) != now_row.get(k)}
            if changed & {"review", "review_note", "reviewed_by", "reviewed_at"} and \
                    now_row.get("review") in ("approved", "returned"):
                self.require(tx, user, "review")
                return
            image_id = int(row["id"])
        else:
            image_id = int(row["image_id"])
        self.require(tx, user, "annotate")
        self.hold(tx, image_id, user)

    def hold(self, tx: "Tx", image_id: int, user: str | None) -> None:
        """Renew ``user``'s lease on the image (take it when free); :class:`ConflictError` when
        someone else holds a live lease on it (consensus images excepted)."""
        if user is None or tx.conn.execute("SELECT 1 FROM members LIMIT 1").fetchone() is None:
            return
        clock = time.time()
        other = tx.conn.execute(
            'SELECT "user", expires_at FROM leases WHERE image_id = ? AND "user" != ? AND '
            "expires_at > ? ORDER BY expires_at DESC LIMIT 1", (image_id, user, clock)).fetchone()
        if other is not None and not _consensus(tx, image_id):
            minutes = max(1, round((float(other[1]) - clock) / 60))
            raise ConflictError(f"image {image_id} is being labelled by {other[0]} (their lease "
                                f"runs {minutes} more min unless they go on); nothing was "
                                "changed. Take your next image")
        tx.conn.execute(
            'INSERT INTO leases (image_id, "user", expires_at) VALUES (?, ?, ?) ON CONFLICT '
            '(image_id, "user") DO UPDATE SET expires_at = excluded.expires_at',
            (image_id, user, clock + self.lease_ttl_s))


def _consensus(tx: "Tx", image_id: int) -> bool:
    return tx.conn.execute("SELECT 1 FROM assignments WHERE image_id = ? AND kind = 'consensus' "
                           "LIMIT 1", (image_id,)).fetchone() is not None


def _article(role: str) -> str:
    return "an" if role[:1] in "aeiou" else "a"


_VERBS = {"annotate": "annotate", "review": "approve or return images",
          "classes": "add, change or remove classes", "assign": "assign images",
          "members": "add members or change roles", "restore": "restore backups"}
