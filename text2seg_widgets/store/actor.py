"""Who makes the writes of an open project: the user every part records when an action names none."""

from __future__ import annotations

__all__ = ["Actor"]


class Actor:
    """The project's default user (changeable: ``project.user = "anna"``), shared by its parts."""

    def __init__(self, user: str | None) -> None:
        self.user = user

    def who(self, user: str | None) -> str | None:
        """``user`` when given, else the default."""
        return user or self.user
