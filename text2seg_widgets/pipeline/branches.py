"""The four pseudo-labelling branches. Each takes the image and a :class:`BranchContext` and
returns :class:`Candidate` records; none of them encodes the image itself more than the model
adapters allow (the segmenter caches its embedding, CLIP Surgery maps all classes in one pass)."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass, field

import numpy as np

from text2seg_widgets.models.clip import heatmap_points
from text2seg_widgets.models.modelset import ModelSet
from text2seg_widgets.core import Candidate, crop_to_mask
from text2seg_widgets.pipeline.classes import ClassSet
from text2seg_widgets.pipeline.config import PipelineConfig

__all__ = ["BranchContext", "run_detector", "run_heatmap", "run_filter", "run_concept", "BRANCH_FUNCTIONS",
           "masked_crop"]

log = logging.getLogger(__name__)


@dataclass
class BranchContext:
    """What every branch needs: the models, the classes, the settings and the text features.

    ``text_features`` holds one L2-normalised row per prompt of ``classes.prompt_table()``; it is
    computed once per class set by the pipeline and shared by the heatmap and filter branches.
    """

    models: ModelSet
    classes: ClassSet
    config: PipelineConfig
    text_features: np.ndarray | None = None
    prompt_rows: list[tuple[int, str]] = field(default_factory=list)

    def class_features(self) -> tuple[np.ndarray, list[int]]:
        """One feature per class (mean of its prompts, renormalised), background last if present.

        Returns the (K, D) array and the class index of each row (-1 for background)."""
        assert self.text_features is not None
        owners = sorted({i for i, _ in self.prompt_rows if i >= 0}) + (
            [-1] if any(i < 0 for i, _ in self.prompt_rows) else [])
        rows = []
        for owner in owners:
            sel = [k for k, (i, _) in enumerate(self.prompt_rows) if i == owner]
            mean = self.text_features[sel].mean(axis=0)
            rows.append(mean / max(np.linalg.norm(mean), 1e-12))
        return np.stack(rows), owners


def _model_name(model: object) -> str:
    return str(getattr(model, "name", type(model).__name__))


def run_detector(image: np.ndarray, ctx: BranchContext) -> list[Candidate]:
    """Grounding DINO finds boxes for every prompt in one pass; SAM turns each box into a mask."""
    det, seg = ctx.models.detector, ctx.models.segmenter
    assert det is not None and seg is not None
    rows = ctx.classes.prompt_table()
    prompt_owner = {p.lower(): i for i, p in rows if i >= 0}
    found = det.detect(image, [p for i, p in rows if i >= 0], box_threshold=ctx.config.box_threshold,
                       text_threshold=ctx.config.text_threshold)
    if len(found) == 0:
        return []
    seg.set_image(image)
    pred = seg.predict_boxes(np.asarray(found.boxes, dtype=np.float64))
    out = []
    model = f"{_model_name(det)}+{_model_name(seg)}"
    for k, phrase in enumerate(found.phrases):
        owner = prompt_owner.get(phrase.lower())
        if owner is None:
            log.debug("detector phrase %r matches no class prompt; dropped", phrase)
            continue
        out.append(Candidate.from_mask(pred.masks[k], class_name=ctx.classes.names[owner],
                                       score=float(found.scores[k]), branch="detector", prompt=phrase,
                                       model=model, box=[float(v) for v in found.boxes[k]]))
    return out


def _upsample_nearest(grid: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a (gh, gw) grid to (height, width), cell centres preserved."""
    gh, gw = grid.shape
    rows = np.minimum((np.arange(height) + 0.5) * gh / height, gh - 1).astype(int)
    cols = np.minimum((np.arange(width) + 0.5) * gw / width, gw - 1).astype(int)
    return grid[rows[:, None], cols[None, :]]


def run_heatmap(image: np.ndarray, ctx: BranchContext) -> list[Candidate]:
    """CLIP Surgery similarity per class -> the most and least similar patches as positive and
    negative points -> one SAM mask per class.

    A class is prompted only where it wins: it must be the arg-max (over classes and background)
    of at least ``heatmap_min_share`` of the patches. The score is the mean, over the mask, of the
    per-patch softmax probability of that class (temperature ``filter_temperature``)."""
    clip, seg = ctx.models.clip, ctx.models.segmenter
    assert clip is not None and seg is not None
    feats, owners = ctx.class_features()
    sim = np.asarray(clip.similarity_map(image, feats), dtype=np.float64)  # (K, gh, gw)
    h, w = image.shape[:2]
    winner = sim.argmax(axis=0)
    logits = sim * ctx.config.filter_temperature
    probs = np.exp(logits - logits.max(axis=0, keepdims=True))
    probs /= probs.sum(axis=0, keepdims=True)
    seg.set_image(image)
    out = []
    for k, owner in enumerate(owners):
        if owner < 0 or (winner == k).mean() < ctx.config.heatmap_min_share:
            continue
        points, labels = heatmap_points(sim[k], (h, w), ctx.config.heatmap_positive_points,
                                        ctx.config.heatmap_negative_points)
        pred = seg.predict(points=points, point_labels=labels, multimask=False)
        mask = pred.masks[0]
        if not mask.any():
            continue
        score = float(_upsample_nearest(probs[k], h, w)[mask].mean())
        spec = ctx.classes.classes[owner]
        out.append(Candidate.from_mask(mask, class_name=spec.name, score=score, branch="heatmap",
                                       prompt=", ".join(spec.prompts),
                                       model=f"{_model_name(clip)}+{_model_name(seg)}"))
    return out


def masked_crop(image: np.ndarray, mask: np.ndarray, pad: int = 4) -> np.ndarray:
    """The mask's bounding-box crop with pixels outside the mask set to the crop's mean colour."""
    crop_mask, x0, y0 = crop_to_mask(mask, pad=pad)
    y1, x1 = y0 + crop_mask.shape[0], x0 + crop_mask.shape[1]
    crop = image[y0:y1, x0:x1].copy()
    inside = mask[y0:y1, x0:x1]
    if (~inside).any():
        crop[~inside] = crop[inside].mean(axis=0).astype(np.uint8)
    return crop


CROP_BATCH = 32  # masked crops built and scored per CLIP call: bounds the memory of the crops


def _generate(gen: object, image: np.ndarray, config: PipelineConfig) -> list:
    """The generator's masks, with the run's grid density / crop layers / mask cap when the
    generator takes settings (:class:`~text2seg_widgets.models.fast_amg.FastMaskGenerator`)."""
    overrides = config.amg_overrides()
    settings = getattr(gen, "settings", None)
    if overrides and settings is not None and dataclasses.is_dataclass(settings):
        return gen.generate(image, settings=dataclasses.replace(settings, **overrides))  # type: ignore[attr-defined, type-var]  # duck-typed: FastMaskGenerator takes settings
    return gen.generate(image)  # type: ignore[attr-defined]  # duck-typed mask generator


def _crop_features(clip: object, image: np.ndarray, masks: list) -> np.ndarray:
    """(M, D) CLIP features of every mask's masked crop, in batches of :data:`CROP_BATCH`."""
    out = []
    for start in range(0, len(masks), CROP_BATCH):
        crops = [masked_crop(image, m.mask) for m in masks[start:start + CROP_BATCH]]
        out.append(np.asarray(clip.encode_crops(crops), dtype=np.float64))  # type: ignore[attr-defined]  # duck-typed CLIP scorer
    return np.concatenate(out)


def run_filter(image: np.ndarray, ctx: BranchContext) -> list[Candidate]:
    """SAM automatic masks, each scored by CLIP against every class prompt and background.

    A mask is kept when its best prompt belongs to a class (not background), that class's softmax
    probability over all prompts' classes reaches ``filter_min_probability``, AND the cosine
    similarity of the best prompt reaches ``filter_min_similarity``. The absolute similarity test
    is what lets the branch return nothing when nothing matches."""
    gen, clip = ctx.models.mask_generator, ctx.models.clip
    assert gen is not None and clip is not None and ctx.text_features is not None
    masks = [m for m in _generate(gen, image, ctx.config) if m.mask.any()]
    if not masks:
        return []
    feats = _crop_features(clip, image, masks)
    cos = feats @ ctx.text_features.T  # (M, P)
    owners = np.array([i for i, _ in ctx.prompt_rows])
    groups = sorted(set(owners.tolist()))
    # per-class score = best prompt of that class; softmax across classes (and background)
    class_cos = np.stack([cos[:, owners == g].max(axis=1) for g in groups], axis=1)
    logits = class_cos * ctx.config.filter_temperature
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    out = []
    model = f"{_model_name(gen)}+{_model_name(clip)}"
    for m_idx, auto in enumerate(masks):
        g = int(probs[m_idx].argmax())
        owner = groups[g]
        if owner < 0 or probs[m_idx, g] < ctx.config.filter_min_probability:
            continue
        if class_cos[m_idx, g] < ctx.config.filter_min_similarity:
            continue
        prompt_idx = [k for k in range(len(owners)) if owners[k] == owner]
        best = prompt_idx[int(cos[m_idx, prompt_idx].argmax())]
        out.append(Candidate.from_mask(auto.mask, class_name=ctx.classes.names[owner],
                                       score=float(probs[m_idx, g]), branch="filter",
                                       prompt=ctx.prompt_rows[best][1], model=model,
                                       similarity=float(class_cos[m_idx, g]), mask_quality=float(auto.score)))
    return out


def run_concept(image: np.ndarray, ctx: BranchContext) -> list[Candidate]:
    """SAM 3: every prompt of every class in one call; each instance becomes a candidate."""
    concept = ctx.models.concept
    assert concept is not None
    rows = [(i, p) for i, p in ctx.classes.prompt_table() if i >= 0]
    results = concept.segment(image, [p for _, p in rows], threshold=ctx.config.concept_threshold)
    out = []
    for (owner, prompt), res in zip(rows, results):
        for k in range(len(res.scores)):
            if not res.masks[k].any():
                continue
            out.append(Candidate.from_mask(res.masks[k], class_name=ctx.classes.names[owner],
                                           score=float(res.scores[k]), branch="concept", prompt=prompt,
                                           model=_model_name(concept)))
    return out


#: branch name -> its function (the roles each needs: ``models.modelset.BRANCH_ROLES``)
BRANCH_FUNCTIONS = {"detector": run_detector, "heatmap": run_heatmap, "filter": run_filter,
                    "concept": run_concept}
