"""Settings of a pipeline run: which branches, and each branch's thresholds."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from text2seg_widgets.errors import InputError
from text2seg_widgets.pipeline.fusion import DEFAULT_OVERLAP, OVERLAP_RULES

__all__ = ["PipelineConfig", "ALL_BRANCHES"]

#: The pseudo-labelling branches, in the order they run.
ALL_BRANCHES = ("detector", "heatmap", "filter", "concept")


@dataclass
class PipelineConfig:
    """Branch switches and thresholds.

    ``branches="auto"`` runs every branch whose models are present; an explicit tuple runs exactly
    those and fails early, naming the missing model, when one cannot run.
    """

    branches: tuple[str, ...] | str = "auto"
    # detector: Grounding DINO boxes -> SAM
    box_threshold: float = 0.35
    text_threshold: float = 0.25
    # heatmap: CLIP Surgery map -> points -> SAM
    heatmap_positive_points: int = 3
    heatmap_negative_points: int = 3
    heatmap_min_share: float = 0.02  # a class must win at least this share of patches to be prompted
    # filter: SAM automatic masks -> CLIP crop scores
    filter_min_probability: float = 0.5  # softmax over classes + background, relative
    filter_min_similarity: float = 0.2  # cosine similarity of the winning prompt, absolute
    filter_temperature: float = 100.0  # CLIP's logit scale
    # filter: automatic mask generation (FastMaskGenerator); None = the generator's own setting,
    # whose default depends on the device (CPU: 16 x 16 grid, no crop layers; CUDA: 32 x 32, one layer)
    amg_points_per_side: int | None = None
    amg_crop_layers: int | None = None
    amg_max_masks: int | None = None  # keep only the best masks (predicted IoU) before upsampling
    # concept: SAM 3
    concept_threshold: float = 0.5
    # fusion
    overlap: str = DEFAULT_OVERLAP  # which class a pixel takes where masks overlap (pipeline.fusion)
    class_priority: tuple[str, ...] = ()  # for overlap="priority": class names, top first
    min_area: int = 16
    dedupe_iou: float = 0.5
    min_votes: int = 1
    background_score: float = 0.0
    extra: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if isinstance(self.branches, str) and self.branches != "auto":
            self.branches = tuple(b.strip() for b in self.branches.split(",") if b.strip())
        if self.branches != "auto":
            unknown = [b for b in self.branches if b not in ALL_BRANCHES]
            if unknown or not self.branches:
                raise InputError(f"unknown branch(es) {unknown or self.branches}; choose from {', '.join(ALL_BRANCHES)}")
        for name in ("box_threshold", "text_threshold", "filter_min_probability", "concept_threshold",
                     "dedupe_iou", "heatmap_min_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise InputError(f"{name} must be between 0 and 1, got {value}")
        if self.min_votes < 1:
            raise InputError("min_votes must be at least 1")
        if self.overlap not in OVERLAP_RULES:
            raise InputError(f"unknown overlap rule {self.overlap!r}; use one of {', '.join(OVERLAP_RULES)}")
        if isinstance(self.class_priority, str):
            self.class_priority = tuple(c.strip() for c in self.class_priority.split(",") if c.strip())
        self.class_priority = tuple(self.class_priority)
        if self.overlap == "priority" and not self.class_priority:
            raise InputError("the priority overlap rule needs a class priority: class names, top first "
                             "(CLI: --class-priority 'car,building'; Python: class_priority=('car', 'building'))")
        for name, low in (("amg_points_per_side", 1), ("amg_crop_layers", 0), ("amg_max_masks", 1)):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or value < low):
                raise InputError(f"{name} must be an integer >= {low} (or None for the generator's default), got {value!r}")

    def amg_overrides(self) -> dict:
        """The automatic-mask settings this run sets (field name of ``AmgSettings`` -> value)."""
        pairs = {"points_per_side": self.amg_points_per_side, "crop_n_layers": self.amg_crop_layers,
                 "max_masks": self.amg_max_masks}
        return {k: v for k, v in pairs.items() if v is not None}

    def to_dict(self) -> dict:
        data = asdict(self)
        data["branches"] = list(self.branches) if self.branches != "auto" else "auto"
        return data
