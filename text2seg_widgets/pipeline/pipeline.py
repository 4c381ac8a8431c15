"""The Text2Seg pipeline on one in-memory image: branches, then fusion."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import numpy as np

from text2seg_widgets.errors import InputError
from text2seg_widgets.models.modelset import ModelSet
from text2seg_widgets.pipeline.branches import BRANCH_FUNCTIONS, BranchContext
from text2seg_widgets.core import Candidate
from text2seg_widgets.pipeline.classes import ClassSet
from text2seg_widgets.pipeline.config import ALL_BRANCHES, PipelineConfig
from text2seg_widgets.pipeline.fusion import fuse
from text2seg_widgets.pipeline.image_input import as_rgb_uint8

__all__ = ["Text2SegPipeline", "PipelineResult"]

log = logging.getLogger(__name__)


@dataclass
class PipelineResult:
    """Fused candidates (image pixel coordinates), the class-index label map (0 = background,
    i = ``classes.names[i - 1]``), per-class score maps, the raw per-branch candidates and timings."""

    candidates: list[Candidate]
    label_map: np.ndarray
    score_maps: np.ndarray
    by_branch: dict[str, list[Candidate]] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)


class Text2SegPipeline:
    """Runs the enabled branches on an image and fuses their candidates.

    Text features are computed once per pipeline (that is, per class set) on first use; the image
    encoders run at most once per image because the segmenter caches its embedding and each
    other model is called once per image with all prompts.
    """

    def __init__(self, models: ModelSet, classes: ClassSet, config: PipelineConfig | None = None):
        self.models = models
        self.classes = classes
        self.config = config or PipelineConfig()
        self.branches = self._select_branches()
        self._ctx = BranchContext(models, classes, self.config, prompt_rows=classes.prompt_table())

    def _select_branches(self) -> tuple[str, ...]:
        wanted = ALL_BRANCHES if self.config.branches == "auto" else tuple(self.config.branches)
        chosen = []
        for name in wanted:
            missing = self.models.missing_roles(name)
            if name == "heatmap" and missing == ["segmenter"] and self.models.segmenter is not None:
                missing = ["point-prompt segmenter (a SAM checkpoint; LiteMedSAM takes boxes only)"]
            if not missing:
                chosen.append(name)
            elif self.config.branches != "auto":
                raise InputError(f"branch {name!r} needs the {' and '.join(missing)} model(s), which are not "
                                 "loaded; load them (see `text2seg-widgets weights list`) or drop the branch")
        if not chosen:
            raise InputError("no branch can run with the loaded models; load at least a segmenter with a "
                             "detector or CLIP, or a SAM 3 concept model")
        return tuple(chosen)

    @property
    def text_features(self) -> np.ndarray | None:
        """(P, D) features of every prompt, computed on first need and kept."""
        if self._ctx.text_features is None and self.models.clip is not None and (
                {"heatmap", "filter"} & set(self.branches)):
            prompts = [p for _, p in self._ctx.prompt_rows]
            self._ctx.text_features = np.asarray(self.models.clip.encode_text(prompts), dtype=np.float64)
        return self._ctx.text_features

    def run(self, image: np.ndarray) -> PipelineResult:
        """All enabled branches on one image, then :func:`~text2seg_widgets.pipeline.fusion.fuse`."""
        rgb = as_rgb_uint8(image)
        _ = self.text_features
        by_branch: dict[str, list[Candidate]] = {}
        seconds: dict[str, float] = {}
        for name in self.branches:
            start = time.perf_counter()
            by_branch[name] = BRANCH_FUNCTIONS[name](rgb, self._ctx)
            seconds[name] = time.perf_counter() - start
            log.info("%s branch: %d candidates in %.2fs", name, len(by_branch[name]), seconds[name])
        start = time.perf_counter()
        cfg = self.config
        fused = fuse([c for cands in by_branch.values() for c in cands], self.classes.names,
                     rgb.shape[0], rgb.shape[1], min_area=cfg.min_area, dedupe_iou=cfg.dedupe_iou,
                     min_votes=cfg.min_votes, background_score=cfg.background_score, overlap=cfg.overlap,
                     priority=cfg.class_priority)
        seconds["fusion"] = time.perf_counter() - start
        return PipelineResult(fused.candidates, fused.label_map, fused.score_maps, by_branch, seconds)
