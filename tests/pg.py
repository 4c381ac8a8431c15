"""The throwaway PostgreSQL cluster of a test run (the package's own local-cluster code,
:mod:`text2seg_widgets.store.localpg`): a temporary folder under /tmp, fsync off, a free port,
stopped and removed at the end, also when tests fail or pytest is interrupted.

Nothing here mocks the server: the store's tests run against this real PostgreSQL. ``make test``
installs Debian's ``postgresql`` package when it is missing; without it the tests that need the
server fail with a message saying so (never skip).
"""

from __future__ import annotations

import atexit
import itertools
import os
import tempfile
from pathlib import Path

import pytest

from text2seg_widgets.errors import InputError
from text2seg_widgets.store.localpg import LocalCluster, free_port

__all__ = ["ThrowawayCluster", "start_cluster", "PASSWORD_ROLE"]

#: A role that must give its password (every other role is trusted on 127.0.0.1).
PASSWORD_ROLE = "secured"


class ThrowawayCluster(LocalCluster):
    """A :class:`LocalCluster` that hands out URLs of new databases."""

    _names = itertools.count(1)

    def new_url(self, prefix: str = "t") -> str:
        """The URL of a database that does not exist yet (Project.create makes it)."""
        return self.url(f"{prefix}_{os.getpid()}_{next(self._names)}")


def start_cluster() -> ThrowawayCluster:
    """Init and start a cluster; fails the run with a clear message without PostgreSQL."""
    folder = Path(tempfile.mkdtemp(prefix="text2seg-pg-", dir="/tmp"))
    cluster = ThrowawayCluster(folder, free_port(), fsync=False)
    atexit.register(cluster.remove)  # also when pytest is interrupted
    try:
        cluster.init()
        # one role logs in with a password (scram), so wrong-password handling is tested for real
        hba = cluster.data / "pg_hba.conf"
        hba.write_text(f"host all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
        cluster.start()
    except InputError as exc:
        pytest.fail(f"cannot start the test PostgreSQL: {exc}")
    return cluster
