"""Whether a process of this machine is still running: the test behind every leftover cleanup
(partial exports and backups, claims of killed runs) that must not touch a live writer's files."""

from __future__ import annotations

import os

__all__ = ["pid_alive"]


def pid_alive(pid: int) -> bool:
    """True while process ``pid`` exists on this machine (also one of another user)."""
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
