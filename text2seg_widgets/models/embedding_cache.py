"""A persistent, size-bounded cache of image embeddings on disk (safetensors, float32).

Key: the digest of the exact RGB pixels the encoder saw (so the image's content, the window,
the band choice and the stretch are all inside it) + the model identity (weights sha256 and
preprocessing). Weights with another sha256 therefore never reuse an old embedding.

One file per embedding, ``<root>/<key[:2]>/<key>.safetensors``: the features in float32, exactly
as the encoder returned them, so a decode from the cache is bit-identical to a decode without it
(results never depend on the cache being cold, warm or off; float16 halved the files but moved
masks by a few pixels), and, in the safetensors metadata, the embedding's facts plus two checksums:
``header_sha256`` over every metadata field and the tensor's dtype and shape (checked from the
header alone, cheaply) and ``sha256`` over the tensor bytes. Properties:

* **atomic**: a writer writes ``.tmp-*`` beside the target and renames it into place
  (``os.replace``), so a reader sees either no file or a whole one, and two writers of the same
  key (two processes) both leave a valid file;
* **verified**: a truncated, corrupt or foreign file (bad header, a changed metadata field or
  dtype, wrong length, sha256 mismatch, other identity) is logged, deleted and reported as a miss:
  the caller re-encodes, never crashes; :meth:`EmbeddingCache.check` does the same for a file
  without loading it (header only, or everything with ``full=True``);
* **bounded**: after each write, least recently used files (by modification time; a hit touches
  its file) are deleted until the total is under the limit.

Settings: ``TEXT2SEG_EMBED_CACHE`` (folder; default ``<text2seg cache>/embeddings``, the text2seg
cache being ``$TEXT2SEG_CACHE`` or ``~/.cache/text2seg-widgets``) and ``TEXT2SEG_EMBED_CACHE_GB``
(size limit in GB, default 4; ``0`` disables the cache for :meth:`EmbeddingCache.from_env`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from text2seg_widgets.errors import InputError
from text2seg_widgets.models.embedding import Embedding, ModelIdentity, image_digest

__all__ = ["EmbeddingCache", "CACHE_DIR_ENV", "CACHE_GB_ENV", "DEFAULT_GB", "FORMAT"]

log = logging.getLogger(__name__)

CACHE_DIR_ENV = "TEXT2SEG_EMBED_CACHE"
CACHE_GB_ENV = "TEXT2SEG_EMBED_CACHE_GB"
DEFAULT_GB = 4.0
FORMAT = "text2seg-embedding/2"
_SUFFIX = ".safetensors"
_TMP_PREFIX = ".tmp-"
_STALE_TMP_SECONDS = 3600.0


class _Corrupt(Exception):
    """A cache file that cannot be trusted (the message says why)."""


def _limit_from_env() -> float:
    raw = os.environ.get(CACHE_GB_ENV, "").strip()
    if not raw:
        return DEFAULT_GB
    try:
        gb = float(raw)
    except ValueError as exc:
        raise InputError(f"{CACHE_GB_ENV}={raw!r} is not a number; give the cache size in GB, e.g. 4 "
                         "(0 turns the embedding cache off)") from exc
    if gb < 0:
        raise InputError(f"{CACHE_GB_ENV} must be >= 0, got {gb}")
    return gb


def _check_root(root: Path) -> None:
    """:class:`InputError` when ``root`` cannot hold a cache: a file, or a folder not writable."""
    hint = (f"set {CACHE_DIR_ENV} (or --cache-dir) to a folder you can write to, or "
            f"{CACHE_GB_ENV}=0 to turn the cache off")
    if root.exists() and not root.is_dir():
        raise InputError(f"the embedding cache path {root} is a file, not a folder; {hint}")
    existing = root
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise InputError(f"the embedding cache folder {root} is not writable; {hint}")


def default_root() -> Path:
    """``$TEXT2SEG_EMBED_CACHE``, else ``embeddings/`` inside the text2seg cache folder."""
    raw = os.environ.get(CACHE_DIR_ENV, "").strip()
    if raw:
        return Path(raw).expanduser()
    from text2seg_widgets.models.weights import cache_dir

    return cache_dir() / "embeddings"


class EmbeddingCache:
    """Embeddings on disk, keyed by pixels + model identity (see the module docstring).

    Args:
        root: the cache folder (created on first write); default :func:`default_root`.
        max_gb: size limit in GB (10**9 bytes); default ``$TEXT2SEG_EMBED_CACHE_GB`` or 4.

    Counters ``hits``, ``misses``, ``writes``, ``corrupt`` and ``evicted`` count this object's work.
    """

    def __init__(self, root: str | Path | None = None, max_gb: float | None = None) -> None:
        self.root = Path(root).expanduser() if root is not None else default_root()
        _check_root(self.root)
        gb = _limit_from_env() if max_gb is None else float(max_gb)
        if gb <= 0:
            raise InputError("an embedding cache needs a size limit > 0 GB; use no cache (None) to turn it off")
        self.max_bytes = int(gb * 1e9)
        self.hits = self.misses = self.writes = self.corrupt = self.evicted = 0

    @classmethod
    def from_env(cls) -> "EmbeddingCache | None":
        """The cache the environment configures, or None when ``TEXT2SEG_EMBED_CACHE_GB=0``."""
        gb = _limit_from_env()
        return cls(max_gb=gb) if gb > 0 else None

    # -- keys ----------------------------------------------------------------------------------
    @staticmethod
    def key(identity: ModelIdentity, digest: str) -> str:
        """The file key: sha256 of the weights sha256, the preprocessing and the pixel digest."""
        text = json.dumps([FORMAT, identity.weights_sha256, identity.preprocessing, digest])
        return hashlib.sha256(text.encode()).hexdigest()

    def path_for(self, identity: ModelIdentity, image: np.ndarray | str) -> Path:
        digest = image if isinstance(image, str) else image_digest(image)
        key = self.key(identity, digest)
        return self.root / key[:2] / f"{key}{_SUFFIX}"

    def __contains__(self, item: tuple[ModelIdentity, np.ndarray | str]) -> bool:
        """``(identity, image or digest) in cache``: a file exists (not verified)."""
        identity, image = item
        return self.path_for(identity, image).is_file()

    def check(self, identity: ModelIdentity, image: np.ndarray | str, *, full: bool = False) -> bool:
        """Whether a trustworthy entry exists for ``image``: its header and metadata checksum (and
        with ``full`` its tensor bytes) are verified; an untrustworthy file is deleted (False)."""
        digest = image if isinstance(image, str) else image_digest(image)
        path = self.path_for(identity, digest)
        try:
            if full:
                _decode(path.read_bytes(), identity, digest)
            else:
                with open(path, "rb") as fh:
                    head = fh.read(8)
                    n = int.from_bytes(head, "little") if len(head) == 8 else 0
                    _check_header(_header(head + fh.read(n) if 0 < n < 1 << 24 else head),
                                  identity, digest, size=path.stat().st_size)
        except FileNotFoundError:
            return False
        except _Corrupt as exc:
            self._drop(path, exc)
            return False
        return True

    def _drop(self, path: Path, why: _Corrupt) -> None:
        """Delete an untrustworthy entry (it is recomputed by whoever asked)."""
        log.warning("embedding cache: dropping %s (%s); it will be recomputed", path.name, why)
        self.corrupt += 1
        _unlink(path)

    # -- read ----------------------------------------------------------------------------------
    def get(self, identity: ModelIdentity, image: np.ndarray | str) -> Embedding | None:
        """The cached embedding of ``image`` (pixels or their :func:`image_digest`) for a model of
        ``identity``, as float32; None on a miss or an untrustworthy file (which is deleted)."""
        digest = image if isinstance(image, str) else image_digest(image)
        path = self.path_for(identity, digest)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            self.misses += 1
            return None
        try:
            embedding = _decode(data, identity, digest)
        except _Corrupt as exc:
            self._drop(path, exc)
            self.misses += 1
            return None
        _touch(path)
        self.hits += 1
        return embedding

    # -- write ---------------------------------------------------------------------------------
    def put(self, embedding: Embedding, *, source: str | None = None, window: Any = None) -> Path:
        """Write ``embedding`` (as float32) atomically; ``source``/``window`` are recorded as
        information. Evicts least recently used files when over the limit. Returns the path."""
        path = self.path_for(embedding.identity, embedding.image_digest)
        path.parent.mkdir(parents=True, exist_ok=True)
        data = _encode(embedding, source=source, window=window)
        fd, tmp = tempfile.mkstemp(prefix=_TMP_PREFIX, suffix=_SUFFIX, dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        except BaseException:
            _unlink(Path(tmp))
            raise
        self.writes += 1
        self.evict()
        return path

    # -- size ----------------------------------------------------------------------------------
    def _entries(self) -> list[tuple[float, int, Path]]:
        """(mtime, size, path) of every cache file; stale temporary files are removed."""
        out: list[tuple[float, int, Path]] = []
        if not self.root.is_dir():
            return out
        now = time.time()
        for sub in os.scandir(self.root):
            if not sub.is_dir():
                continue
            for entry in os.scandir(sub.path):
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue  # another process evicted it meanwhile
                if entry.name.startswith(_TMP_PREFIX):
                    if now - st.st_mtime > _STALE_TMP_SECONDS:
                        _unlink(Path(entry.path))  # left by a writer that died
                    continue
                if entry.name.endswith(_SUFFIX):
                    out.append((st.st_mtime, st.st_size, Path(entry.path)))
        return out

    def size_bytes(self) -> int:
        """Total bytes of the cache files."""
        return sum(size for _, size, _ in self._entries())

    def __len__(self) -> int:
        return len(self._entries())

    def __bool__(self) -> bool:
        """A cache object is always true, even while empty (``if cache:`` means "is there one")."""
        return True

    def evict(self) -> int:
        """Delete least recently used files until the total is within the limit; returns how many."""
        entries = self._entries()
        total = sum(size for _, size, _ in entries)
        removed = 0
        for _, size, path in sorted(entries, key=lambda e: e[0]):
            if total <= self.max_bytes:
                break
            _unlink(path)
            total -= size
            removed += 1
        if removed:
            self.evicted += removed
            log.info("embedding cache: evicted %d least recently used file(s) to stay under %.2f GB",
                     removed, self.max_bytes / 1e9)
        return removed

    def clear(self) -> int:
        """Delete every cache file; returns how many."""
        entries = self._entries()
        for _, _, path in entries:
            _unlink(path)
        return len(entries)


# -- file format -----------------------------------------------------------------------------------
_DTYPE = "F32"


def _header_digest(meta: dict[str, str], dtype: str, shape: list[int]) -> str:
    """sha256 over every metadata field except the checksum itself, and the tensor's dtype/shape."""
    fields = {k: v for k, v in meta.items() if k != "header_sha256"}
    text = json.dumps([fields, dtype, shape], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()


def _encode(embedding: Embedding, *, source: str | None, window: Any) -> bytes:
    from safetensors.torch import save

    features = embedding.features.detach().to("cpu", torch.float32).contiguous()
    raw = features.numpy().tobytes()
    meta = {
        "format": FORMAT,
        "model": embedding.model,
        "weights_sha256": embedding.weights_sha256,
        "preprocessing": embedding.preprocessing,
        "input_hw": json.dumps(list(embedding.input_hw)),
        "resized_hw": json.dumps(list(embedding.resized_hw)),
        "image_digest": embedding.image_digest,
        "shape": json.dumps(list(features.shape)),
        "nbytes": str(len(raw)),
        "sha256": hashlib.sha256(raw).hexdigest(),
        "source": source or "",
        "window": json.dumps(list(window) if window is not None else None),
        "created": f"{time.time():.3f}",
    }
    meta["header_sha256"] = _header_digest(meta, _DTYPE, list(features.shape))
    return save({"features": features}, metadata=meta)


def _header(data: bytes) -> dict[str, Any]:
    if len(data) < 8:
        raise _Corrupt(f"{len(data)} bytes: shorter than a safetensors header")
    n = int.from_bytes(data[:8], "little")
    if n <= 0 or 8 + n > len(data):
        raise _Corrupt("truncated header")
    try:
        header = json.loads(data[8:8 + n])
    except ValueError as exc:
        raise _Corrupt(f"unreadable header ({exc})") from exc
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__"), dict):
        raise _Corrupt("no metadata")
    header["__header_bytes__"] = 8 + n
    return header


def _check_header(header: dict[str, Any], identity: ModelIdentity, digest: str, *,
                  size: int | None = None) -> dict[str, str]:
    """The metadata, once the header checks out: format, identity, header checksum (metadata,
    dtype, shape), tensor extent; :class:`_Corrupt` otherwise."""
    meta = header["__metadata__"]
    if meta.get("format") != FORMAT:
        raise _Corrupt(f"format {meta.get('format')!r}, expected {FORMAT!r}")
    if (meta.get("weights_sha256"), meta.get("preprocessing"), meta.get("image_digest")) != \
            (identity.weights_sha256, identity.preprocessing, digest):
        raise _Corrupt("the file belongs to another model or image")
    entry = header.get("features")
    if not isinstance(entry, dict):
        raise _Corrupt("no features tensor in the header")
    dtype, shape = entry.get("dtype"), entry.get("shape")
    if meta.get("header_sha256") != _header_digest(meta, str(dtype), list(shape or [])):
        raise _Corrupt("the header or its metadata was changed (checksum mismatch)")
    if dtype != _DTYPE:
        raise _Corrupt(f"tensor dtype {dtype}, expected {_DTYPE}")
    offsets = entry.get("data_offsets") or [0, 0]
    if size is not None and header["__header_bytes__"] + int(offsets[1]) != size:
        raise _Corrupt("the file length does not match its header (truncated or padded)")
    return meta


def _decode(data: bytes, identity: ModelIdentity, digest: str) -> Embedding:
    meta = _check_header(_header(data), identity, digest, size=len(data))
    from safetensors import SafetensorError
    from safetensors.torch import load

    try:
        features = load(data)["features"]
    except (SafetensorError, KeyError, ValueError, RuntimeError) as exc:
        raise _Corrupt(f"unreadable tensor ({exc})") from exc
    if list(features.shape) != _json(meta, "shape") or features.ndim != 4 or features.shape[0] != 1 \
            or features.dtype != torch.float32:
        raise _Corrupt(f"tensor {features.dtype} {list(features.shape)} does not match the metadata")
    raw = features.numpy().tobytes()
    if str(len(raw)) != meta.get("nbytes") or hashlib.sha256(raw).hexdigest() != meta.get("sha256"):
        raise _Corrupt("tensor bytes do not match the recorded length/sha256")
    input_hw, resized_hw = tuple(_json(meta, "input_hw")), tuple(_json(meta, "resized_hw"))
    if len(input_hw) != 2 or len(resized_hw) != 2:
        raise _Corrupt("bad sizes in metadata")
    return Embedding(features, meta.get("model", identity.name), identity.weights_sha256,
                     identity.preprocessing, (int(input_hw[0]), int(input_hw[1])),
                     (int(resized_hw[0]), int(resized_hw[1])), digest)


def _json(meta: dict[str, Any], name: str) -> Any:
    try:
        return json.loads(meta[name])
    except (KeyError, ValueError, TypeError) as exc:
        raise _Corrupt(f"bad {name} in metadata ({exc})") from exc


def _touch(path: Path) -> None:
    try:
        os.utime(path)
    except OSError:
        pass  # evicted by another process meanwhile: the hit is still good


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass
