"""The bundle of model adapters that a pipeline run uses; any member may be absent."""

from __future__ import annotations

from dataclasses import dataclass, fields

from text2seg_widgets.models.protocols import (
    ClipScorer,
    ConceptSegmenter,
    MaskGenerator,
    PromptableSegmenter,
    TextBoxDetector,
)

__all__ = ["ModelSet"]


@dataclass
class ModelSet:
    """Adapters by role. ``segmenter`` serves the detector and heatmap branches and interactive
    refinement; ``mask_generator`` the filter branch (with ``clip``); ``concept`` the SAM 3 branch."""

    segmenter: PromptableSegmenter | None = None
    mask_generator: MaskGenerator | None = None
    detector: TextBoxDetector | None = None
    clip: ClipScorer | None = None
    concept: ConceptSegmenter | None = None

    def names(self) -> dict[str, str]:
        """Model name per role, for manifests and candidate records."""
        return {f.name: getattr(getattr(self, f.name), "name", "") for f in fields(self)
                if getattr(self, f.name) is not None}
