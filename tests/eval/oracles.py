"""Deterministic stand-ins for a SAM-like segmenter, for pinning the click protocol's numbers."""

from __future__ import annotations

import numpy as np
from PIL import Image

from text2seg_widgets.errors import InputError
from text2seg_widgets.eval.noc import mask_to_low_res_logits
from text2seg_widgets.models.protocols import MaskPrediction

__all__ = ["DiskOracle", "BoxOnlyOracle", "disk"]


def disk(shape: tuple[int, int], x: float, y: float, radius: float) -> np.ndarray:
    yy, xx = np.mgrid[:shape[0], :shape[1]]
    return (xx - x) ** 2 + (yy - y) ** 2 <= radius ** 2


class DiskOracle:
    """Knows the truth. Answer = (previous mask from ``mask_input`` | filled box | truth within
    ``radius`` of a positive click) minus (non-truth within ``radius`` of a negative click)."""

    name = "disk-oracle"

    def __init__(self, truth: np.ndarray, radius: float, fill_box: bool = True) -> None:
        self.truth = np.asarray(truth, dtype=bool)
        self.radius = radius
        self.fill_box = fill_box
        self.encoder_calls = 0
        self.calls: list[dict] = []

    def set_image(self, image: np.ndarray) -> None:
        assert image.shape[:2] == self.truth.shape
        self.encoder_calls += 1

    def _previous(self, mask_input: np.ndarray) -> np.ndarray:
        h, w = self.truth.shape
        size = mask_input.shape[-1]
        scale = size / max(h, w)
        crop = mask_input[0, :round(h * scale), :round(w * scale)] > 0
        return np.array(Image.fromarray(crop.astype(np.uint8)).resize((w, h), Image.NEAREST)).astype(bool)

    def predict(self, *, points=None, point_labels=None, box=None, mask_input=None, multimask=False):
        self.calls.append({"points": None if points is None else points.tolist(),
                           "labels": None if point_labels is None else point_labels.tolist(),
                           "box": None if box is None else [float(v) for v in box],
                           "mask_input": mask_input is not None})
        shape = self.truth.shape
        pred = np.zeros(shape, bool) if mask_input is None else self._previous(mask_input)
        if box is not None:
            x0, y0, x1, y1 = (int(v) for v in box)
            region = np.zeros(shape, bool)
            region[y0:y1, x0:x1] = True
            pred |= region if self.fill_box else region & self.truth
        for (x, y), label in zip(points if points is not None else [], point_labels if points is not None else []):
            area = disk(shape, x, y, self.radius)
            if label == 1:
                pred |= area & self.truth
            else:
                pred &= ~(area & ~self.truth)
        return MaskPrediction(masks=pred[None], scores=np.array([1.0]),
                              low_res_logits=mask_to_low_res_logits(pred))

    def predict_boxes(self, boxes: np.ndarray) -> MaskPrediction:
        masks = [self.predict(box=b).masks[0] for b in boxes]
        return MaskPrediction(masks=np.stack(masks), scores=np.ones(len(masks)))


class BoxOnlyOracle(DiskOracle):
    """Like LiteMedSAM: a box prompt only; points raise InputError. Optionally says so up front."""

    name = "box-only-oracle"

    def __init__(self, truth: np.ndarray, *, declare: bool = False) -> None:
        super().__init__(truth, radius=0)
        if declare:
            self.supports_points = False

    def predict(self, *, points=None, point_labels=None, box=None, mask_input=None, multimask=False):
        if points is not None:
            raise InputError("this segmenter takes box prompts only")
        return super().predict(box=box, mask_input=mask_input)
