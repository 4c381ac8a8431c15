"""Transfers for the weight registry: streamed, resumable, checksum-verified URL downloads
(stdlib :mod:`urllib` only) and Hugging Face Hub fetches into a plain folder.

URL downloads write ``<dest>.part`` and only an atomic :func:`os.replace` publishes ``dest``,
after its size and sha256 are checked; so ``dest`` is either absent or complete:

* an interrupted transfer leaves the ``.part`` file, and the next call resumes it (an HTTP
  ``Range`` request; ``file://`` sources seek to the offset); a server that ignores ``Range``
  (status 200) makes the download restart from byte 0;
* a checksum or size mismatch deletes the ``.part`` file and raises :class:`ChecksumError`
  naming both hashes;
* when no sha256 is recorded the file is checked by size only (logged as a warning).

Nothing here reads the environment except ``HF_ENDPOINT`` (passed on to ``huggingface_hub`` at
call time, so a changed endpoint is honoured even after import).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import http.client
import logging
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from text2seg_widgets.errors import ChecksumError, Text2SegError

__all__ = [
    "DownloadError",
    "DEFAULT_TIMEOUT",
    "download_url",
    "hub_download",
    "part_path",
    "sha256_file",
]

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20
DEFAULT_TIMEOUT = 60.0
_USER_AGENT = "text2seg-widgets weight fetcher"


class DownloadError(Text2SegError, ConnectionError):
    """A transfer failed or stopped early; a partial ``.part`` file is kept so a retry resumes."""


def part_path(dest: Path) -> Path:
    """The partial file that a download of ``dest`` writes before publishing it."""
    return dest.with_name(dest.name + ".part")


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in chunks."""
    return _hash_prefix(Path(path), None).hexdigest()


def _hash_prefix(path: Path, nbytes: int | None) -> "hashlib._Hash":
    """A sha256 object fed with the first ``nbytes`` bytes of ``path`` (all of it when None)."""
    hasher = hashlib.sha256()
    if nbytes == 0 or not path.exists():
        return hasher
    remaining = nbytes
    with path.open("rb") as handle:
        while remaining is None or remaining > 0:
            want = CHUNK_SIZE if remaining is None else min(CHUNK_SIZE, remaining)
            data = handle.read(want)
            if not data:
                break
            hasher.update(data)
            if remaining is not None:
                remaining -= len(data)
    return hasher


@contextlib.contextmanager
def _locked(dest: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``dest``'s folder so two processes never write the same ``.part``
    (a lock on the directory itself leaves no lock file behind)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - not POSIX: no inter-process lock
        yield
        return
    fd = os.open(dest.parent, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def download_url(
    url: str,
    dest: Path,
    *,
    sha256: str | None = None,
    size: int | None = None,
    timeout: float = DEFAULT_TIMEOUT,
    progress: bool = True,
    restart: bool = False,
) -> Path:
    """Download ``url`` to ``dest`` (resuming ``dest.part``), verify it, then publish it atomically.

    ``restart`` discards an existing partial file first. Raises :class:`DownloadError` when the
    transfer fails (the partial file stays for the next call) and :class:`ChecksumError` when the
    complete file has the wrong size or sha256 (the partial file is deleted).
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = part_path(dest)
    with _locked(dest):
        if restart:
            part.unlink(missing_ok=True)
        offset = part.stat().st_size if part.exists() else 0
        if size is not None and offset > size:
            logger.warning("Discarding %s: it is larger (%d B) than the expected %d B", part, offset, size)
            part.unlink()
            offset = 0
        hasher = _hash_prefix(part, offset)
        if size is None or offset < size:
            offset, hasher = _transfer(url, part, offset, hasher, size, timeout, progress)
        _publish(part, dest, hasher.hexdigest(), offset, sha256, size, url)
    return dest


def _transfer(url: str, part: Path, offset: int, hasher: "hashlib._Hash", size: int | None,
              timeout: float, progress: bool) -> tuple[int, "hashlib._Hash"]:
    """Append the remote bytes from ``offset`` to ``part``; returns (byte count, sha256 so far)."""
    stream, start, total = _open(url, offset, timeout)
    if total is None:
        total = size
    elif size is not None and total != size:  # a different file: do not download it at all
        stream.close()
        part.unlink(missing_ok=True)
        raise ChecksumError(
            f"{url} has {total} bytes but {size} were expected, so nothing was downloaded (a partial "
            "file was deleted). The source may have changed: check the spec's URL and size.")
    if start != offset:  # the source restarted from 0: the partial bytes are not reusable
        logger.info("%s does not support resuming; restarting the download from byte 0", url)
        part.unlink(missing_ok=True)
        hasher = hashlib.sha256()
        offset = 0
    written = offset
    from tqdm import tqdm  # the plain bar on stderr, also inside notebooks

    bar = tqdm(total=total, initial=offset, unit="B", unit_scale=True, unit_divisor=1024,
               desc=part.name[: -len(".part")], file=sys.stderr, disable=not progress, leave=False)
    try:
        with stream, part.open("ab") as out:
            written = _copy(stream, out, hasher, written, bar)
            out.flush()
            os.fsync(out.fileno())
    except (OSError, http.client.HTTPException) as exc:
        written = part.stat().st_size if part.exists() else 0
        raise DownloadError(
            f"Download of {url} was interrupted after {written} bytes ({exc!r}). The partial file "
            f"{part} was kept; run the same fetch again to resume it."
        ) from exc
    finally:
        bar.close()
    if total is not None and written < total:
        raise DownloadError(
            f"Download of {url} ended after {written} of {total} bytes. The partial file {part} "
            "was kept; run the same fetch again to resume it."
        )
    return written, hasher


def _copy(stream: BinaryIO, out: BinaryIO, hasher: "hashlib._Hash", written: int, bar) -> int:
    """Copy ``stream`` to ``out`` chunk by chunk, hashing as it goes; returns the byte count.

    Each chunk is written before the next read, so an exception leaves every byte received so
    far in ``out`` (the caller flushes it), which is what makes resuming exact.
    """
    while True:
        try:
            data = stream.read(CHUNK_SIZE)
        except http.client.IncompleteRead as exc:  # the peer closed early: keep what arrived
            if exc.partial:
                out.write(exc.partial)
                hasher.update(exc.partial)
                written += len(exc.partial)
            out.flush()
            raise
        if not data:
            return written
        out.write(data)
        hasher.update(data)
        written += len(data)
        bar.update(len(data))


def _open(url: str, offset: int, timeout: float) -> tuple[BinaryIO, int, int | None]:
    """Open ``url`` at ``offset``: (stream, offset actually served, full size if known)."""
    parsed = urllib.parse.urlparse(url)
    if parsed.scheme == "file":
        return _open_file(urllib.request.url2pathname(parsed.path), offset)
    if parsed.scheme not in ("http", "https"):
        raise DownloadError(f"Unsupported URL scheme in {url!r}: use http(s):// or file://.")
    headers = {"User-Agent": _USER_AGENT}
    if offset:
        headers["Range"] = f"bytes={offset}-"
    request = urllib.request.Request(url, headers=headers)
    try:
        response = urllib.request.urlopen(request, timeout=timeout)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # nothing left to send: the partial file is complete
            exc.close()
            return _EmptyStream(), offset, offset
        raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}.") from exc
    except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
        raise DownloadError(f"Could not reach {url}: {exc}. Check the network and retry.") from exc
    return _served_range(response, offset)


def _served_range(response, offset: int) -> tuple[BinaryIO, int, int | None]:
    length = response.headers.get("Content-Length")
    if response.status == 206:
        content_range = response.headers.get("Content-Range", "")  # bytes START-END/TOTAL
        try:
            span, _, total = content_range.split(" ", 1)[1].partition("/")
            start = int(span.split("-", 1)[0])
        except (IndexError, ValueError):
            response.close()
            raise DownloadError(f"Unreadable Content-Range {content_range!r} from {response.url}.")
        if start != offset:
            response.close()
            raise DownloadError(f"{response.url} served bytes from {start}, not {offset} as asked.")
        full = int(total) if total.isdigit() else (start + int(length) if length else None)
        return response, start, full
    return response, 0, int(length) if length and length.isdigit() else None


def _open_file(path: str, offset: int) -> tuple[BinaryIO, int, int | None]:
    try:
        handle = open(path, "rb")  # noqa: SIM115 - closed by the caller's ``with``
    except OSError as exc:
        raise DownloadError(f"Cannot read the source file {path}: {exc}.") from exc
    total = os.fstat(handle.fileno()).st_size
    start = offset if offset <= total else 0
    handle.seek(start)
    return handle, start, total


class _EmptyStream(io.BytesIO):
    """A stream with nothing in it, for a resume that finds nothing left to read."""

    def __enter__(self) -> "_EmptyStream":
        return self

    def __exit__(self, *_exc: object) -> None:
        return None


def _publish(part: Path, dest: Path, actual: str, nbytes: int, sha256: str | None,
             size: int | None, url: str) -> None:
    """Check the complete ``part`` file against the record, then rename it to ``dest``."""
    if size is not None and nbytes != size:
        part.unlink(missing_ok=True)
        raise ChecksumError(
            f"{url} gave {nbytes} bytes but {size} were expected; the partial file was deleted. "
            "The source may have changed: check the spec, then fetch again."
        )
    if sha256 is not None and actual != sha256.lower():
        part.unlink(missing_ok=True)
        raise ChecksumError(
            f"Checksum mismatch for {url}: expected sha256 {sha256.lower()}, got {actual}. "
            "The partial file was deleted; fetch again, and if it persists the source changed."
        )
    if sha256 is None:
        logger.warning("No sha256 is recorded for %s; it was verified by size only.", url)
    os.replace(part, dest)
    logger.info("Saved %s (%d bytes, sha256 %s)", dest, nbytes, actual)


def hub_download(
    repo_id: str,
    revision: str,
    target_dir: Path,
    *,
    filename: str | None = None,
    allow_patterns: Sequence[str] = (),
    gated: bool = False,
    force: bool = False,
) -> Path:
    """Fetch one file (``filename``) or a snapshot (``allow_patterns``) of a Hugging Face Hub repo
    at ``revision`` into the plain folder ``target_dir``; returns the file or the folder.

    The folder layout is the repo's own, so it can be copied to an offline machine as it is and
    loaded with ``from_pretrained(folder)`` or open_clip's ``local-dir:``. ``force`` downloads
    again files that are already there.
    """
    import huggingface_hub
    from huggingface_hub import errors as hub_errors

    endpoint = os.environ.get("HF_ENDPOINT") or None
    target_dir = Path(target_dir)
    target_dir.mkdir(parents=True, exist_ok=True)
    where = f"{repo_id}@{revision}"
    try:
        if filename:
            return Path(huggingface_hub.hf_hub_download(
                repo_id=repo_id, filename=filename, revision=revision, local_dir=target_dir,
                endpoint=endpoint, force_download=force))
        huggingface_hub.snapshot_download(
            repo_id=repo_id, revision=revision, local_dir=target_dir, endpoint=endpoint,
            allow_patterns=list(allow_patterns) or None, force_download=force)
        return target_dir
    except hub_errors.GatedRepoError as exc:
        raise DownloadError(
            f"{repo_id} is a gated repository: accept its licence on https://huggingface.co/{repo_id} "
            "with your account, then log in (`hf auth login`, or set HF_TOKEN) and fetch again."
        ) from exc
    except (hub_errors.RepositoryNotFoundError, hub_errors.RevisionNotFoundError,
            hub_errors.EntryNotFoundError) as exc:
        hint = " (it may be gated: log in with `hf auth login`)" if gated else ""
        raise DownloadError(f"{where} or the requested file does not exist on the hub{hint}: {exc}") from exc
    except (hub_errors.HfHubHTTPError, OSError, ValueError) as exc:
        raise DownloadError(f"Could not download {where} from the hub: {exc}") from exc
