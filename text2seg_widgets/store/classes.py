"""The project's classes: names, colours, prompts (a part of :class:`~.project.Project`).

Adding, editing and removing a class are undoable actions; removing one takes an automatic backup
first and refuses while annotations use the class unless ``cascade``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from text2seg_widgets.core.colors import class_color
from text2seg_widgets.errors import InputError
from text2seg_widgets.store.records import ClassInfo

if TYPE_CHECKING:
    from text2seg_widgets.store.actor import Actor
    from text2seg_widgets.store.backup import Backups
    from text2seg_widgets.store.db import Database, Tx

__all__ = ["Classes", "class_spec"]

_COLOR = re.compile(r"^#(?:[0-9a-fA-F]{6}|[0-9a-fA-F]{3})$")


class Classes:
    """The classes table (built by :class:`~.project.Project`)."""

    def __init__(self, db: "Database", actor: "Actor", backups: "Backups") -> None:
        self.db, self.actor, self.backups = db, actor, backups

    def all(self) -> list[ClassInfo]:
        rows = self.db.query("SELECT id, name, color, prompts FROM classes ORDER BY id")
        return [ClassInfo(r["id"], r["name"], r["color"], tuple(json.loads(r["prompts"])))
                for r in rows]

    def class_info(self, name_or_id: str | int) -> ClassInfo:
        for c in self.all():
            if c.id == name_or_id or c.name == name_or_id:
                return c
        known = ", ".join(repr(c.name) for c in self.all()) or "none"
        raise InputError(f"unknown class {name_or_id!r} (known classes: {known}); add it with "
                         "project.add_class(name) first")

    def add_class(self, name: str, color: str | None = None, prompts: Sequence[str] = (),
                  *, user: str | None = None) -> ClassInfo:
        name, color, prompts = class_spec({"name": name, "color": color, "prompts": prompts},
                                           [c.color for c in self.all()])
        with self.db.action(f"add class {name!r}", user=self.actor.who(user)) as tx:
            class_id = self.insert(tx, name, color, prompts)
        return self.class_info(class_id)

    def update_class(self, name_or_id: str | int, *, name: str | None = None,
                     color: str | None = None, prompts: Sequence[str] | None = None,
                     user: str | None = None) -> ClassInfo:
        info = self.class_info(name_or_id)
        new_name, new_color, new_prompts = class_spec(
            {"name": name if name is not None else info.name, "color": color or info.color,
             "prompts": info.prompts if prompts is None else prompts}, ())
        if new_name != info.name and any(c.name == new_name for c in self.all()):
            raise InputError(f"a class named {new_name!r} already exists")
        with self.db.action(f"edit class {info.name!r}", user=self.actor.who(user)) as tx:
            tx.update("classes", info.id, {"name": new_name, "color": new_color,
                                           "prompts": json.dumps(list(new_prompts))})
        return self.class_info(info.id)

    def remove_class(self, name_or_id: str | int, *, cascade: bool = False,
                     user: str | None = None) -> None:
        """Remove a class. Its proposed/rejected candidates go with it; annotations only with
        ``cascade=True`` (otherwise :class:`InputError`). Undoable, and an automatic backup is
        taken first (see :mod:`.backup`)."""
        info = self.class_info(name_or_id)
        anns = self.db.query("SELECT id FROM annotations WHERE class_id = ?", (info.id,))
        if anns and not cascade:
            raise InputError(f"{len(anns)} annotation(s) use class {info.name!r}; relabel or "
                             "delete them first, or pass cascade=True to delete them too")
        self.backups.auto_backup(f"remove class {info.name}")
        with self.db.action(f"remove class {info.name!r}", user=self.actor.who(user)) as tx:
            for (ann_id,) in tx.conn.execute("SELECT id FROM annotations WHERE class_id = ?",
                                             (info.id,)).fetchall():
                tx.delete("annotations", ann_id)
            for (cand_id,) in tx.conn.execute("SELECT id FROM candidates WHERE class_id = ?",
                                              (info.id,)).fetchall():
                for (ann_id,) in tx.conn.execute("SELECT id FROM annotations WHERE "
                                                 "candidate_id = ?", (cand_id,)).fetchall():
                    tx.update("annotations", ann_id, {"candidate_id": None})
                tx.delete("candidates", cand_id)
            tx.delete("classes", info.id)

    def insert(self, tx: "Tx", name: str, color: str, prompts: Sequence[str]) -> int:
        if tx.conn.execute("SELECT 1 FROM classes WHERE name = ?", (name,)).fetchone():
            raise InputError(f"a class named {name!r} already exists")
        return tx.insert("classes", {"name": name, "color": color,
                                     "prompts": json.dumps(list(prompts))})


def class_spec(spec: Any, taken: Sequence[str]) -> tuple[str, str, tuple[str, ...]]:
    """Normalise a class given as a name, a dict or a ClassInfo to (name, color, prompts).

    Without a colour the class gets its conventional one by name (water blue, buildings red...;
    :func:`text2seg_widgets.core.colors.class_color`), avoiding the ``taken`` colours."""
    if isinstance(spec, str):
        spec = {"name": spec}
    elif isinstance(spec, ClassInfo):
        spec = {"name": spec.name, "color": spec.color, "prompts": spec.prompts}
    elif not isinstance(spec, dict):
        raise InputError(f"a class must be a name or a dict with name/color/prompts, got {spec!r}")
    name = spec.get("name")
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"class name must be a non-empty string, got {name!r}")
    name = name.strip()
    if len(name) > 200 or any(ord(ch) < 32 for ch in name):
        raise InputError(f"class name {name[:40]!r} is too long or has control characters")
    color = spec.get("color") or class_color(name, taken)
    if not isinstance(color, str) or not _COLOR.match(color):
        raise InputError(f"class colour must look like '#rrggbb', got {color!r}")
    color = color.lower()
    if len(color) == 4:
        color = "#" + "".join(ch * 2 for ch in color[1:])
    prompts = spec.get("prompts") or ()
    if isinstance(prompts, str):
        prompts = (prompts,)
    prompts = tuple(str(p).strip() for p in prompts if str(p).strip())
    return name, color, prompts
