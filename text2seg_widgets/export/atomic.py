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
import secrets
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from text2seg_widgets.core.processes import pid_alive
from text2seg_widgets.errors import InputError

__all__ = ["atomic_dir", "write_json", "write_manifest", "MANIFEST", "read_manifest",
           "Protected", "EXPORT_MARKER"]

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
_TOOL = "text2seg-widgets"
#: The manifest key that says "this folder is an export written by text2seg-widgets": only a
#: folder whose manifest carries it is ever replaced by ``overwrite``.
EXPORT_MARKER = "text2seg_export"
_PROJECT_DB = "project.sqlite"
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


@dataclass(frozen=True)
class Protected:
    """What an export must never replace: the project folder (and anything inside it), a folder
    holding any of the project's source images, and a folder holding a project database.
    ``project_id`` is written into the export's marker."""

    project_folder: Path
    images: Sequence[Path]
    project_id: str

    def check(self, out: Path) -> None:
        """:class:`InputError` when replacing ``out`` would delete something protected."""
        project = Path(os.path.realpath(self.project_folder))
        if out == project or project in out.parents or out in project.parents:
            raise InputError(f"refusing to replace {out}: it is, contains or lies inside the "
                             f"project folder {project}; export to a folder outside it")
        for image in self.images:
            real = Path(os.path.realpath(image))
            if out in real.parents:
                raise InputError(f"refusing to replace {out}: it holds the project's source image "
                                 f"{real}; export to another folder")
        for _root, _dirs, files in os.walk(out):
            if _PROJECT_DB in files:
                raise InputError(f"refusing to replace {out}: it holds a project database "
                                 f"({Path(_root) / _PROJECT_DB}); export to another folder")


def write_manifest(folder: Path, kind: str, *, project_id: str | None = None,
                   **fields: Any) -> dict[str, Any]:
    """Write ``manifest.json``: the export marker (format, project identity), tool and version,
    time, and the given fields."""
    from text2seg_widgets import __version__

    manifest = {EXPORT_MARKER: {"format": kind, "project_id": project_id},
                "format": kind, "tool": _TOOL, "tool_version": __version__,
                "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **fields}
    write_json(folder / MANIFEST, manifest, indent=2)
    return manifest


def _clean_stale(parent: Path, name: str) -> None:
    """Remove temporary folders left by killed exports into ``parent/name``."""
    for entry in parent.glob(f".{name}{_PARTIAL}*"):
        try:
            pid = int(entry.name[len(name) + 1 + len(_PARTIAL):].split("-")[0])
        except ValueError:
            continue
        if not pid_alive(pid) or pid == os.getpid():
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


def _is_our_export(out: Path) -> bool:
    try:
        manifest = json.loads((out / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(manifest, dict) and isinstance(manifest.get(EXPORT_MARKER), dict) \
        and manifest.get("tool") == _TOOL


def _check_target(out: Path, overwrite: bool, protected: Protected | None) -> None:
    if protected is not None:
        protected.check(out)
    if out.exists():
        if not out.is_dir():
            raise InputError(f"export path {out} is an existing file; give a folder path")
        if not overwrite:
            raise InputError(f"export path {out} already exists; pass overwrite=True (CLI: "
                             "--overwrite) to replace it, or choose another folder")
        if any(out.iterdir()) and not _is_our_export(out):
            raise InputError(f"{out} exists and is not a text2seg-widgets export (its "
                             f"{MANIFEST} lacks the export marker, or it has none); refusing to "
                             "replace it. Choose another folder, or remove it yourself")


@contextmanager
def atomic_dir(out: str | Path, *, overwrite: bool = False,
               protected: Protected | None = None) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``out`` atomically, on error it vanishes.

    ``out`` must not exist unless ``overwrite``; with ``overwrite`` only an earlier export (a
    folder whose manifest carries :data:`EXPORT_MARKER`, or an empty folder) is replaced, and
    never one that ``protected`` forbids. A symbolic link is followed (the folder it points to is
    replaced, the link stays). The folder gets the usual permissions (``0777`` less the umask)."""
    out = Path(os.path.realpath(Path(out).absolute()))
    _check_target(out, overwrite, protected)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        _clean_stale(out.parent, out.name)
        tmp = out.parent / f".{out.name}{_PARTIAL}{os.getpid()}-{secrets.token_hex(4)}"
        os.mkdir(tmp)  # mode 0777 less the umask, as any folder the user makes (mkdtemp: 0700)
    except OSError as exc:
        raise InputError(f"cannot write the export to {out.parent} ({exc.strerror or exc}); "
                         "choose a folder you can write to") from exc
    try:
        yield tmp
        _fsync_tree(tmp)
        _check_target(out, overwrite, protected)  # the target may have appeared meanwhile
        _swap_in(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    log.info("export written to %s", out)
