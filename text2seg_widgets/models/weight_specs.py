"""Weight spec types: where one set of weights comes from (URL, hub repo, installed package or
local path) and what it is (family, architecture, file or folder). Plain frozen data, validated on
construction; the registry and the fetch/verify operations are in :mod:`.weights`, which
re-exports everything here.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Any, Union

from text2seg_widgets.errors import InputError

__all__ = [
    "FAMILIES",
    "KINDS",
    "HubSource",
    "LocalSource",
    "PackageSource",
    "Source",
    "UrlSource",
    "WeightSpec",
    "spec_from_dict",
]

FAMILIES = ("sam", "litemedsam", "grounding-dino", "clip", "sam3")
KINDS = ("file", "folder")
_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_SHA_RE = re.compile(r"^[0-9a-f]{64}$")
_GLOB_CHARS = set("*?[")


def _check_sha(sha256: str | None) -> None:
    if sha256 is not None and not _SHA_RE.match(sha256):
        raise InputError(f"sha256 must be 64 lowercase hex digits or None, got {sha256!r}.")


@dataclass(frozen=True)
class UrlSource:
    """A file at an ``http(s)://`` or ``file://`` URL. ``sha256=None`` means verify by size only."""

    url: str
    sha256: str | None = None
    size: int | None = None
    filename: str = ""

    def __post_init__(self) -> None:
        scheme = self.url.split(":", 1)[0].lower()
        if scheme not in ("http", "https", "file"):
            raise InputError(f"URL source {self.url!r} must start with http://, https:// or file://.")
        _check_sha(self.sha256)
        if not self.filename:
            name = self.url.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
            object.__setattr__(self, "filename", name or "weights.bin")


@dataclass(frozen=True)
class HubSource:
    """A Hugging Face Hub repo at a pinned ``revision``.

    ``files``: for a ``file`` spec exactly one path in the repo; for a ``folder`` spec the
    ``allow_patterns`` of the snapshot (empty: the whole repo). ``required``: files that must be
    present for the folder to count as fetched (default: the entries of ``files`` without glob
    characters). ``sha256``/``size`` describe the single file of a ``file`` spec, when known.
    """

    repo_id: str
    revision: str = "main"
    files: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    gated: bool = False
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        if not re.match(r"^[\w.-]+/[\w.-]+$", self.repo_id):
            raise InputError(f"Hub repo_id must look like 'owner/name', got {self.repo_id!r}.")
        _check_sha(self.sha256)
        object.__setattr__(self, "files", tuple(self.files))
        required = tuple(self.required) or tuple(f for f in self.files if not _GLOB_CHARS & set(f))
        object.__setattr__(self, "required", required)


@dataclass(frozen=True)
class PackageSource:
    """A file shipped inside an installed Python package (found without importing it)."""

    package: str
    resource: str
    pip_name: str = ""
    sha256: str | None = None
    size: int | None = None

    def __post_init__(self) -> None:
        _check_sha(self.sha256)


@dataclass(frozen=True)
class LocalSource:
    """A file or folder that already sits at ``path`` (``~`` is expanded); nothing to fetch."""

    path: str


Source = Union[UrlSource, HubSource, PackageSource, LocalSource]


@dataclass(frozen=True)
class WeightSpec:
    """One named set of weights. ``arch``: the SAM model type (``vit_b``...) or the open_clip
    architecture name (``ViT-B-16``...), else ``""``; ``kind``: ``"file"`` or ``"folder"``."""

    name: str
    family: str
    arch: str
    kind: str
    source: Source
    description: str = ""
    licence: str = ""
    notes: str = ""

    def __post_init__(self) -> None:
        if not _NAME_RE.match(self.name):
            raise InputError(f"Weight spec name {self.name!r} must be lowercase letters, digits, '.', '_' or '-'.")
        if self.family not in FAMILIES:
            raise InputError(f"Spec {self.name!r}: family {self.family!r} is not one of {', '.join(FAMILIES)}.")
        if self.kind not in KINDS:
            raise InputError(f"Spec {self.name!r}: kind {self.kind!r} must be 'file' or 'folder'.")
        if not isinstance(self.source, (UrlSource, HubSource, PackageSource, LocalSource)):
            raise InputError(f"Spec {self.name!r}: source must be a Url/Hub/Package/LocalSource.")
        if isinstance(self.source, UrlSource) and self.kind != "file":
            raise InputError(f"Spec {self.name!r}: a URL source downloads one file, so kind must be 'file'.")
        if isinstance(self.source, HubSource) and self.kind == "file" and len(self.source.files) != 1:
            raise InputError(f"Spec {self.name!r}: a hub 'file' spec names exactly one file in `files`.")

    @property
    def source_type(self) -> str:
        """``"url"``, ``"hub"``, ``"package"`` or ``"local"``."""
        return {UrlSource: "url", HubSource: "hub", PackageSource: "package",
                LocalSource: "local"}[type(self.source)]

    @property
    def sha256(self) -> str | None:
        """The recorded sha256 of a single-file spec, if any."""
        return getattr(self.source, "sha256", None) if self.kind == "file" else None

    @property
    def size(self) -> int | None:
        """The recorded byte size of a single-file spec, if any."""
        return getattr(self.source, "size", None) if self.kind == "file" else None

    def to_dict(self) -> dict[str, Any]:
        """A plain mapping that :func:`spec_from_dict` turns back into this spec."""
        data = asdict(self)
        data["source"] = {k: (list(v) if isinstance(v, tuple) else v)
                          for k, v in asdict(self.source).items()}
        return data



def spec_from_dict(data: dict[str, Any]) -> WeightSpec:
    """Build a spec from a mapping: the :class:`WeightSpec` fields, with ``source`` a mapping whose
    keys pick its type: ``url`` (UrlSource), ``repo_id`` (HubSource), ``package`` (PackageSource)
    or ``path`` (LocalSource)."""
    if not isinstance(data, dict) or not isinstance(data.get("source"), dict):
        raise InputError(f"A weight spec must be a mapping with a 'source' mapping, got {data!r}.")
    source_data = dict(data["source"])
    for key, cls in (("url", UrlSource), ("repo_id", HubSource), ("package", PackageSource),
                     ("path", LocalSource)):
        if key in source_data:
            break
    else:
        raise InputError(f"Spec {data.get('name')!r}: its source needs one of url, repo_id, package or path.")
    for key in ("files", "required"):
        if key in source_data:
            source_data[key] = tuple(source_data[key])
    try:
        source = cls(**source_data)
        fields = {k: v for k, v in data.items() if k != "source"}
        fields.setdefault("arch", "")
        return WeightSpec(source=source, **fields)
    except TypeError as exc:
        raise InputError(f"Spec {data.get('name')!r} has unknown or missing fields: {exc}.") from exc
