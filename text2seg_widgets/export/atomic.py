"""Atomic export folders: write everything into a hidden sibling, then swap it into place.

Every exporter writes into a temporary folder next to the target (same filesystem) and only when
everything is written and fsynced puts it in place: with ``renameat2(RENAME_EXCHANGE)`` on Linux
(one atomic step, the old export and the new one trade places), else with two renames. A crash at
any moment leaves either the previous export or the new one, complete, at the target path; the
leftover temporary folder of a killed export is removed by the next export into the same place.
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from text2seg_widgets.errors import InputError

__all__ = ["atomic_dir", "write_json", "write_manifest", "MANIFEST", "read_manifest"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_TOOL = "text2seg-widgets"
_PARTIAL = ".partial-"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def write_json(path: Path, data: Any, *, indent: int | None = None) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=indent, ensure_ascii=False)


def read_manifest(folder: str | Path) -> dict[str, Any]:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise InputError(f"{folder} has no {MANIFEST}: it is not a text2seg-widgets export")
    return json.loads(path.read_text(encoding="utf-8"))


def write_manifest(folder: Path, kind: str, **fields: Any) -> dict[str, Any]:
    """Write ``manifest.json``: export kind, tool and version, time, and the given fields."""
    from text2seg_widgets import __version__

    manifest = {"format": kind, "tool": _TOOL, "tool_version": __version__,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **fields}
    write_json(folder / MANIFEST, manifest, indent=2)
    return manifest


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(parent: Path, name: str) -> None:
    """Remove temporary folders left by killed exports into ``parent/name``."""
    for entry in parent.glob(f".{name}{_PARTIAL}*"):
        try:
            pid = int(entry.name[len(name) + 1 + len(_PARTIAL):].split("-")[0])
        except ValueError:
            continue
        if not _pid_alive(pid) or pid == os.getpid():
            shutil.rmtree(entry, ignore_errors=True)
            log.info("removed the leftover of an interrupted export: %s", entry)


def _fsync_tree(folder: Path) -> None:
    for root, _dirs, files in os.walk(folder):
        for name in files:
            fd = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        fd = os.open(root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2); False where the system cannot."""
    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    log.debug("renameat2 failed (errno %d); falling back to two renames", ctypes.get_errno())
    return False


def _swap_in(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.rename(tmp, out)
    elif _exchange(tmp, out):
        shutil.rmtree(tmp)  # tmp now holds the previous export
    else:
        old = out.with_name(f".{out.name}{_PARTIAL}{os.getpid()}-old")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old)
    fd = os.open(out.parent, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _check_target(out: Path, overwrite: bool) -> None:
    if out.exists():
        if not out.is_dir():
            raise InputError(f"export path {out} is an existing file; give a folder path")
        if not overwrite:
            raise InputError(f"export path {out} already exists; pass overwrite=True (CLI: "
                             "--overwrite) to replace it, or choose another folder")
        if any(out.iterdir()) and not (out / MANIFEST).is_file():
            raise InputError(f"{out} exists and is not a text2seg-widgets export (no "
                             f"{MANIFEST}); refusing to replace it. Choose another folder")


@contextmanager
def atomic_dir(out: str | Path, *, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``out`` atomically, on error it vanishes.

    ``out`` must not exist unless ``overwrite``; with ``overwrite`` only a previous export (a
    folder with a manifest, or an empty folder) is replaced."""
    out = Path(out).absolute()
    _check_target(out, overwrite)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale(out.parent, out.name)
        tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}{_PARTIAL}{os.getpid()}-",
                                    dir=out.parent))
    except OSError as exc:
        raise InputError(f"cannot write the export to {out.parent} ({exc.strerror or exc}); "
                         "choose a folder you can write to") from exc
    try:
        yield tmp
        _fsync_tree(tmp)
        _check_target(out, overwrite)  # the target may have appeared meanwhile
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("export written to %s", out)
