"""The bundle of model adapters that a pipeline run uses; any member may be absent."""

from __future__ import annotations

from dataclasses import dataclass, fields

from text2seg_widgets.errors import InputError
from text2seg_widgets.models.protocols import (
    ClipScorer,
    ConceptSegmenter,
    MaskGenerator,
    PromptableSegmenter,
    TextBoxDetector,
)

__all__ = ["ModelSet", "BRANCH_ROLES"]

#: text-prompt branch -> the ModelSet roles it needs; the ONE table of branch requirements (the
#: pipeline, the weight factory and the Annotator ask :meth:`ModelSet.missing_roles`). The
#: heatmap branch also needs its segmenter to take point prompts.
BRANCH_ROLES: dict[str, tuple[str, ...]] = {
    "detector": ("detector", "segmenter"),
    "heatmap": ("clip", "segmenter"),
    "filter": ("mask_generator", "clip"),
    "concept": ("concept",),
}


@dataclass
class ModelSet:
    """Adapters by role. ``segmenter`` serves the detector and heatmap branches and interactive
    refinement; ``mask_generator`` the filter branch (with ``clip``); ``concept`` the SAM 3 branch."""

    segmenter: PromptableSegmenter | None = None
    mask_generator: MaskGenerator | None = None
    detector: TextBoxDetector | None = None
    clip: ClipScorer | None = None
    concept: ConceptSegmenter | None = None

    def missing_roles(self, branch: str) -> list[str]:
        """The roles ``branch`` still needs here (empty: it can run). A box-only segmenter
        (LiteMedSAM) counts as a missing ``segmenter`` for the heatmap branch's point prompts."""
        if branch not in BRANCH_ROLES:
            raise InputError(f"unknown branch {branch!r}; use some of {', '.join(BRANCH_ROLES)}")
        missing = [role for role in BRANCH_ROLES[branch] if getattr(self, role) is None]
        if branch == "heatmap" and self.segmenter is not None and not self.segmenter.supports_points:
            missing.append("segmenter")
        return list(dict.fromkeys(missing))

    def names(self) -> dict[str, str]:
        """Model name per role, for manifests and candidate records."""
        return {f.name: getattr(getattr(self, f.name), "name", "") for f in fields(self)
                if getattr(self, f.name) is not None}
