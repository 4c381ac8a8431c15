"""A local PostgreSQL server for a trial team project (``text2seg-widgets pg start``) and for the
tests: a cluster in a folder of its own, run as the ``postgres`` user when started by root (the
server refuses to run as root), listening on 127.0.0.1 and a socket in its folder only.

Debian keeps the server tools in ``/usr/lib/postgresql/<version>/bin`` (not on PATH);
``TEXT2SEG_PG_BIN`` overrides. For real teams, use the PostgreSQL your organisation runs.
"""

from __future__ import annotations

import logging
import os
import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from text2seg_widgets.errors import InputError

__all__ = ["LocalCluster", "pg_bin", "free_port", "default_folder"]

log = logging.getLogger(__name__)


def pg_bin() -> Path:
    """The folder of ``initdb``/``pg_ctl``: ``TEXT2SEG_PG_BIN``, else Debian's newest
    ``/usr/lib/postgresql/<version>/bin``; :class:`InputError` saying how to install it."""
    if os.environ.get("TEXT2SEG_PG_BIN"):
        return Path(os.environ["TEXT2SEG_PG_BIN"])
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit() else 0)
    if not found:
        raise InputError("PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb); "
                         "install it with `apt-get install postgresql` (Debian/Ubuntu), or set "
                         "TEXT2SEG_PG_BIN to the folder holding initdb and pg_ctl")
    return found[-1].parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_folder() -> Path:
    """``$TEXT2SEG_HOME/pg``, else ``~/.local/share/text2seg-widgets/pg``; as root (the server
    runs as ``postgres``, which cannot enter root's home) ``/var/tmp/text2seg-widgets-pg``."""
    if os.environ.get("TEXT2SEG_HOME"):
        return Path(os.environ["TEXT2SEG_HOME"]) / "pg"
    if os.geteuid() == 0:
        return Path("/var/tmp/text2seg-widgets-pg")
    return Path.home() / ".local" / "share" / "text2seg-widgets" / "pg"


@dataclass
class LocalCluster:
    """One cluster in ``folder`` (data in ``folder/data``, log in ``folder/server.log``)."""

    folder: Path
    port: int
    #: fsync off: for throwaway test clusters (a killed server process still loses nothing;
    #: only a power cut would).
    fsync: bool = True

    @property
    def data(self) -> Path:
        return self.folder / "data"

    @property
    def log_file(self) -> Path:
        return self.folder / "server.log"

    def _run(self, *args: str | Path, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [str(a) for a in args]
        if os.geteuid() == 0:  # the server refuses root: run its tools as postgres
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
        if check and done.returncode != 0:
            tail = self.log_file.read_text(errors="replace")[-1500:] if self.log_file.exists() else ""
            raise InputError(f"{Path(cmd[-1]).name if len(cmd) < 3 else ' '.join(cmd[-3:])} failed "
                             f"({done.stderr.strip() or done.stdout.strip()}) {tail}".strip())
        return done

    def init(self) -> None:
        """Create the folder and the cluster (user ``postgres``, trust on 127.0.0.1 only)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.folder.chmod(0o755)
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        if (self.data / "PG_VERSION").is_file():
            return
        self._run(pg_bin() / "initdb", "-D", self.data, "-A", "trust", "-U", "postgres",
                  "--no-sync", "-E", "UTF8", "--locale=C")

    def start(self) -> None:
        opts = (f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 "
                f"-c max_connections=200{'' if self.fsync else ' -c fsync=off'}")
        self._run(pg_bin() / "pg_ctl", "-D", self.data, "-o", opts, "-l", self.log_file,
                  "-w", "-t", "60", "start")
        (self.folder / "port").write_text(str(self.port))

    def running(self) -> bool:
        return self._run(pg_bin() / "pg_ctl", "-D", self.data, "status", check=False).returncode == 0

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode`` ``fast``, or ``immediate``: like a crash)."""
        if self.data.is_dir():
            self._run(pg_bin() / "pg_ctl", "-D", self.data, "-m", mode, "-w", "stop", check=False)

    def restart(self, *, down_s: float = 0.0, mode: str = "fast") -> None:
        self.stop(mode)
        time.sleep(down_s)
        self.start()

    def remove(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.folder, ignore_errors=True)

    def url(self, database: str = "postgres", user: str = "postgres") -> str:
        return f"postgresql://{user}@127.0.0.1:{self.port}/{database}"

    @classmethod
    def at(cls, folder: Path) -> "LocalCluster":
        """The cluster in ``folder``, on the port it last used (a new free port otherwise)."""
        port_file = folder / "port"
        port = int(port_file.read_text()) if port_file.is_file() else free_port()
        return cls(folder, port)
