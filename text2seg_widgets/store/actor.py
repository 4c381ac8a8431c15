"""Who makes the writes of an open project: the user every part records when an action names none."""

from __future__ import annotations

import getpass
import os

__all__ = ["Actor", "default_user"]


def default_user() -> str | None:
    """``TEXT2SEG_USER``, else the login name."""
    if os.environ.get("TEXT2SEG_USER"):
        return os.environ["TEXT2SEG_USER"]
    try:
        return getpass.getuser()
    except Exception:  # pragma: no cover - no login name in some containers
        return None


class Actor:
    """The project's default user (changeable: ``project.user = "anna"``), shared by its parts."""

    def __init__(self, user: str | None) -> None:
        self.user = user

    def who(self, user: str | None) -> str | None:
        """``user`` when given, else the default."""
        return user or self.user
