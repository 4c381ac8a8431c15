"""The settings of a batch pseudo-labelling run, shared by the local and the Ray engine.

:class:`BatchSettings` holds everything that decides *which* candidates a run produces (classes,
models, branch thresholds, tiling, bands, stretch) and, separately, *how* it runs (device, dtype,
read-ahead, tile batching). Only the first kind enters the fingerprint (see
:func:`settings_fingerprint` and :mod:`.manifest`) that a rerun uses to find the run it
continues: moving a half-done CPU run to a GPU resumes it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.stretch import STRETCH_METHODS
from text2seg_widgets.imagery.tiling import check_tiling
from text2seg_widgets.pipeline.classes import ClassSet
from text2seg_widgets.pipeline.config import PipelineConfig

__all__ = ["BatchSettings", "settings_fingerprint"]


@dataclass
class BatchSettings:
    """What a batch run does.

    Args:
        classes: the target classes (with synonyms and optional background prompts).
        models: a preset name (``tiny``, ``offline``, ``default``) or a ``{role: spec}`` mapping,
            passed to :func:`text2seg_widgets.models.factory.load_models` in every worker.
        config: branch switches and thresholds.
        device, dtype: where the models run (``auto`` = CUDA, then MPS, then CPU; bf16/fp16
            autocast on CUDA only).
        tile_size, overlap: images larger than ``tile_size`` are cut into overlapping tiles.
        bands: band preset or 1-based indices for multi-band rasters (None = the default RGB).
        stretch: the per-scene stretch method (see :mod:`text2seg_widgets.imagery.stretch`).
        prefetch: tiles read and decoded ahead by the reader thread.
        tile_batch: tiles whose SAM image embeddings are computed in one batched forward pass
            (worth it on a GPU; 1 on the CPU gains nothing and saves memory).
        replace: drop an image's earlier *proposed* candidates when storing the new ones.
        review: what the reviewer's decisions changed for this run (insights: pruned prompts,
            calibrated thresholds used to auto-accept); recorded in the manifest's runtime part
            only when set, so it leaves fingerprints and older manifests unchanged.
    """

    classes: ClassSet
    models: str | dict[str, str] = "default"
    config: PipelineConfig = field(default_factory=PipelineConfig)
    device: str = "auto"
    dtype: str = "auto"
    tile_size: int = 1024
    overlap: int = 128
    bands: str | None = None
    stretch: str = "auto"
    prefetch: int = 2
    tile_batch: int = 1
    replace: bool = False
    review: dict[str, Any] = field(default_factory=dict)  # insights (see the docstring)

    def __post_init__(self) -> None:
        if not isinstance(self.classes, ClassSet):
            raise InputError("classes must be a ClassSet, e.g. ClassSet.parse('building,road')")
        check_tiling(self.tile_size, self.overlap)
        if self.stretch not in STRETCH_METHODS:
            raise InputError(f"unknown stretch {self.stretch!r}; use one of {', '.join(STRETCH_METHODS)}")
        if int(self.prefetch) < 1 or int(self.tile_batch) < 1:
            raise InputError("prefetch and tile_batch must be at least 1")
        if isinstance(self.models, dict) and not self.models:
            raise InputError("models mapping is empty; give a preset (tiny, offline, default) or role=spec pairs")

    def result_settings(self) -> dict[str, Any]:
        """The settings that decide the candidates (JSON-ready; what the fingerprint hashes)."""
        return {
            "classes": self.classes.to_dict(),
            "models": self.models if isinstance(self.models, str) else dict(sorted(self.models.items())),
            "pipeline": self.config.to_dict(),
            "tiling": {"tile_size": int(self.tile_size), "overlap": int(self.overlap)},
            "bands": self.bands,
            "stretch": self.stretch,
        }

    def runtime_settings(self) -> dict[str, Any]:
        """How the run executes; recorded in the manifest, not fingerprinted."""
        out = {"device": self.device, "dtype": self.dtype, "prefetch": int(self.prefetch),
               "tile_batch": int(self.tile_batch), "replace": bool(self.replace)}
        return {**out, "review": self.review} if self.review else out  # insights: only when used

    def to_dict(self) -> dict[str, Any]:
        return {**self.result_settings(), "runtime": self.runtime_settings()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "BatchSettings":
        """Rebuild settings from :meth:`to_dict` (how the Ray workers receive them)."""
        classes = dict(data["classes"])
        background = classes.pop("background", None)
        pipeline = dict(data["pipeline"])
        if isinstance(pipeline.get("branches"), list):
            pipeline["branches"] = tuple(pipeline["branches"])
        runtime = data.get("runtime", {})
        return cls(classes=ClassSet.from_names(classes, background=background or None),
                   models=data["models"], config=PipelineConfig(**pipeline),
                   tile_size=data["tiling"]["tile_size"], overlap=data["tiling"]["overlap"],
                   bands=data.get("bands"), stretch=data.get("stretch", "auto"), **runtime)


def settings_fingerprint(result_settings: dict[str, Any], weights: dict[str, Any] | None = None) -> str:
    """sha256 (first 16 hex digits) of the result settings plus the weight checksums."""
    payload = {"settings": result_settings, "weights": weights or {}}
    text = json.dumps(payload, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
