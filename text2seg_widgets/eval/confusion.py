"""One confusion matrix over all pixels of all images, and the metrics derived from it.

Conventions (they decide the numbers, so they are written down):

- Ground truth and predictions are integer label maps holding class indices ``0..C-1`` in the
  order of ``class_names``. ``255`` (:data:`IGNORE_INDEX`) in the ground truth marks pixels that
  are not scored at all (no-data, eroded boundaries).
- ``255`` in a *prediction* means "no prediction here" (no candidate covered the pixel). Such a
  pixel is not dropped: it is a miss for its ground-truth class (a false negative) and a false
  positive for no class. The matrix therefore has ``C`` rows (ground truth) and ``C + 1`` columns
  (prediction, the last one being "unpredicted").
- The matrix is accumulated over every pixel of every image (dataset-level IoU, as in mmseg and
  the LoveDA/ISPRS benchmarks), never averaged per image.
- ``IoU_c = TP_c / (GT_c + Pred_c - TP_c)``. A class absent from both the ground truth and the
  prediction has IoU ``NaN`` and is left out of the mean. A class that is predicted but absent
  from the ground truth has IoU 0 and *does* enter the mean (its false positives are penalised).
- ``mIoU`` is the mean of the non-NaN per-class IoUs.
- Overall accuracy is ``sum(TP) / (number of scored pixels)``. Per-class accuracy is the recall
  ``TP_c / GT_c`` (``NaN`` when the class is absent from the ground truth); mean accuracy is the
  mean of the non-NaN per-class accuracies.
"""

from __future__ import annotations

import csv
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from text2seg_widgets.errors import InputError

__all__ = [
    "IGNORE_INDEX",
    "ConfusionMatrix",
    "EvalResult",
    "format_table",
    "write_csv",
    "write_json",
]

logger = logging.getLogger(__name__)

#: Ground-truth value for "not scored"; in predictions it means "no prediction".
IGNORE_INDEX = 255


class ConfusionMatrix:
    """Accumulates a ``(C, C + 1)`` pixel confusion matrix: rows ground truth, columns prediction.

    >>> cm = ConfusionMatrix(["a", "b"])
    >>> cm.update(np.array([[0, 1]]), np.array([[0, 0]]))
    >>> cm.result().iou.tolist()
    [0.5, 0.0]
    """

    def __init__(self, class_names: Sequence[str], ignore_index: int = IGNORE_INDEX) -> None:
        names = [str(n) for n in class_names]
        if not names:
            raise InputError("class_names is empty: give at least one class to evaluate")
        if len(set(names)) != len(names):
            raise InputError(f"class names must be unique, got {names}")
        if 0 <= ignore_index < len(names):
            raise InputError(f"ignore_index {ignore_index} collides with a class index; "
                             f"use a value >= {len(names)} (255 is the convention)")
        self.class_names = names
        self.ignore_index = int(ignore_index)
        self.matrix = np.zeros((len(names), len(names) + 1), dtype=np.int64)
        self.images = 0

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def update(self, gt: np.ndarray, pred: np.ndarray, *, name: str = "") -> None:
        """Add one image. ``gt`` and ``pred`` are (H, W) integer label maps of the same size."""
        gt = np.asarray(gt)
        pred = np.asarray(pred)
        where = f" for {name}" if name else ""
        if gt.shape != pred.shape:
            raise InputError(f"prediction size {_size(pred)} differs from ground-truth size "
                             f"{_size(gt)}{where}; both must be label maps of the same image")
        n = self.num_classes
        gt = gt.astype(np.int64, copy=False).ravel()
        pred = pred.astype(np.int64, copy=False).ravel()
        bad_gt = (gt != self.ignore_index) & ((gt < 0) | (gt >= n))
        if bad_gt.any():
            raise InputError(f"ground truth{where} holds values {_values(gt[bad_gt])} that are neither "
                             f"a class index 0..{n - 1} nor the ignore index {self.ignore_index}; "
                             "decode labels with text2seg_widgets.eval.labels first")
        bad_pred = (pred != self.ignore_index) & ((pred < 0) | (pred >= n))
        if bad_pred.any():
            raise InputError(f"prediction{where} holds values {_values(pred[bad_pred])} that are neither "
                             f"a class index 0..{n - 1} nor {self.ignore_index} (no prediction)")
        keep = gt != self.ignore_index
        gt = gt[keep]
        pred = np.where(pred[keep] == self.ignore_index, n, pred[keep])
        counts = np.bincount(gt * (n + 1) + pred, minlength=n * (n + 1))
        self.matrix += counts.reshape(n, n + 1)
        self.images += 1

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix over the same classes (e.g. from another worker) into this one."""
        if other.class_names != self.class_names:
            raise InputError(f"cannot merge matrices over different classes: {self.class_names} "
                             f"vs {other.class_names}")
        self.matrix += other.matrix
        self.images += other.images
        return self

    def result(self) -> "EvalResult":
        return EvalResult.from_matrix(self.class_names, self.matrix, images=self.images)


@dataclass
class EvalResult:
    """Metrics of one confusion matrix; see the module docs for the exact definitions."""

    class_names: list[str]
    matrix: np.ndarray
    iou: np.ndarray
    accuracy: np.ndarray
    gt_pixels: np.ndarray
    pred_pixels: np.ndarray
    tp: np.ndarray
    miou: float
    overall_accuracy: float
    mean_accuracy: float
    images: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_matrix(cls, class_names: Sequence[str], matrix: np.ndarray, *, images: int = 0) -> "EvalResult":
        matrix = np.asarray(matrix, dtype=np.int64)
        n = len(class_names)
        if matrix.shape != (n, n + 1):
            raise InputError(f"matrix must have shape ({n}, {n + 1}), got {matrix.shape}")
        tp = np.diag(matrix[:, :n]).astype(np.int64)
        gt_pixels = matrix.sum(axis=1)
        pred_pixels = matrix[:, :n].sum(axis=0)
        union = gt_pixels + pred_pixels - tp
        with np.errstate(invalid="ignore", divide="ignore"):
            iou = np.where(union > 0, tp / np.maximum(union, 1), np.nan)
            accuracy = np.where(gt_pixels > 0, tp / np.maximum(gt_pixels, 1), np.nan)
        total = int(gt_pixels.sum())
        return cls(class_names=list(class_names), matrix=matrix, iou=iou.astype(float),
                   accuracy=accuracy.astype(float), gt_pixels=gt_pixels, pred_pixels=pred_pixels,
                   tp=tp, miou=_nanmean(iou), overall_accuracy=(tp.sum() / total) if total else math.nan,
                   mean_accuracy=_nanmean(accuracy), images=images)

    @property
    def unpredicted_pixels(self) -> int:
        """Scored pixels that no prediction covered (the last matrix column)."""
        return int(self.matrix[:, -1].sum())

    def per_class(self) -> list[dict[str, Any]]:
        return [{"class": name, "iou": _num(self.iou[i]), "accuracy": _num(self.accuracy[i]),
                 "gt_pixels": int(self.gt_pixels[i]), "pred_pixels": int(self.pred_pixels[i]),
                 "tp": int(self.tp[i])} for i, name in enumerate(self.class_names)]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: NaN becomes ``None``."""
        return {"classes": list(self.class_names), "per_class": self.per_class(),
                "miou": _num(self.miou), "overall_accuracy": _num(self.overall_accuracy),
                "mean_accuracy": _num(self.mean_accuracy), "images": self.images,
                "unpredicted_pixels": self.unpredicted_pixels,
                "confusion_matrix": {"rows": "ground truth", "columns": [*self.class_names, "<none>"],
                                     "counts": self.matrix.tolist()},
                **({"extra": self.extra} if self.extra else {})}


def _nanmean(values: np.ndarray) -> float:
    values = np.asarray(values, dtype=float)
    finite = values[~np.isnan(values)]
    return float(finite.mean()) if finite.size else math.nan


def _num(value: float) -> float | None:
    value = float(value)
    return None if math.isnan(value) else value


def _size(a: np.ndarray) -> str:
    return f"{a.shape[1]}x{a.shape[0]} (width x height)" if a.ndim >= 2 else str(a.shape)


def _values(values: np.ndarray, limit: int = 10) -> str:
    uniq, counts = np.unique(values, return_counts=True)
    shown = ", ".join(f"{int(v)} ({int(c)} px)" for v, c in zip(uniq[:limit], counts[:limit]))
    return shown + (f" and {uniq.size - limit} more" if uniq.size > limit else "")


def _as_results(results: "EvalResult | Mapping[str, EvalResult]") -> dict[str, EvalResult]:
    if isinstance(results, EvalResult):
        return {"prediction": results}
    if not results:
        raise InputError("no evaluation results to format")
    return dict(results)


def _fmt(value: float) -> str:
    return "-" if value is None or math.isnan(value) else f"{100 * value:.2f}"


def format_table(results: "EvalResult | Mapping[str, EvalResult]") -> str:
    """A plain-text table: one row per class, one IoU column per result (e.g. per branch), then
    mIoU, overall accuracy and mean accuracy rows. Values are percentages; ``-`` is NaN."""
    named = _as_results(results)
    classes = next(iter(named.values())).class_names
    if any(r.class_names != classes for r in named.values()):
        raise InputError("results to put in one table must share the same classes")
    rows = [[name, *(_fmt(r.iou[i]) for r in named.values())] for i, name in enumerate(classes)]
    rows.append(["mIoU", *(_fmt(r.miou) for r in named.values())])
    rows.append(["overall acc", *(_fmt(r.overall_accuracy) for r in named.values())])
    rows.append(["mean acc", *(_fmt(r.mean_accuracy) for r in named.values())])
    header = ["class (IoU %)", *named.keys()]
    widths = [max(len(str(row[c])) for row in [header, *rows]) for c in range(len(header))]

    def line(cells: Sequence[str]) -> str:
        return "  ".join(str(v).ljust(widths[0]) if i == 0 else str(v).rjust(widths[i])
                         for i, v in enumerate(cells))

    rule = "-" * len(line(header))
    body = [line(r) for r in rows[:len(classes)]]
    summary = [line(r) for r in rows[len(classes):]]
    return "\n".join([line(header), rule, *body, rule, *summary])


def write_csv(results: "EvalResult | Mapping[str, EvalResult]", path: str | Path) -> Path:
    """One row per (result, class) plus a ``<mean>`` row per result with mIoU and accuracies."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fields = ["source", "class", "iou", "accuracy", "gt_pixels", "pred_pixels", "tp"]
    with path.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for source, result in _as_results(results).items():
            for row in result.per_class():
                writer.writerow({"source": source, **{k: ("" if v is None else v) for k, v in row.items()}})
            writer.writerow({"source": source, "class": "<mean>", "iou": _csv(result.miou),
                             "accuracy": _csv(result.mean_accuracy),
                             "gt_pixels": int(result.gt_pixels.sum()),
                             "pred_pixels": int(result.pred_pixels.sum()), "tp": int(result.tp.sum())})
            writer.writerow({"source": source, "class": "<overall>", "iou": "",
                             "accuracy": _csv(result.overall_accuracy), "gt_pixels": "", "pred_pixels": "",
                             "tp": ""})
    logger.info("wrote %s", path)
    return path


def _csv(value: float) -> Any:
    return "" if math.isnan(value) else value


def write_json(results: "EvalResult | Mapping[str, EvalResult]", path: str | Path,
               meta: Mapping[str, Any] | None = None) -> Path:
    """``{"results": {source: EvalResult.to_dict()}, "meta": {...}}``; NaN is written as null."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"results": {k: v.to_dict() for k, v in _as_results(results).items()},
               "meta": dict(meta or {})}
    path.write_text(json.dumps(payload, indent=2))
    logger.info("wrote %s", path)
    return path
