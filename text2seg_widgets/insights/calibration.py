"""Calibrated score thresholds: per class and branch, the lowest score above which the reviewer
accepted at least ``target_precision`` of the candidates, with enough decisions behind it.

Fitting (:func:`fit_thresholds`), for each (class, branch) group of decisions:

- fewer than ``min_decisions`` decisions in the group -> no threshold, status ``too few``
  ("too few decisions (n)");
- otherwise each distinct decision score ``t`` is a candidate cut; ``precision(t)`` is the
  accepted share of the decisions scoring ``>= t`` and only cuts with at least ``min_decisions``
  decisions at or above them count. The threshold is the *lowest* such ``t`` with
  ``precision(t) >= target_precision``; its precision, count and Wilson interval are reported.
  When no cut reaches the target the status is ``unreachable`` and there is no threshold.

Thresholds live in ``<project>/calibration.json`` (:func:`save_calibration`, written atomically:
a temporary file in the same folder, then ``os.replace``), read back by :func:`load_calibration`.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.insights.decisions import Decision, decisions
from text2seg_widgets.insights.wilson import wilson_interval

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["Threshold", "fit_thresholds", "calibrate", "save_calibration", "load_calibration",
           "CALIBRATION_FILE", "Key"]

#: The file inside the project folder that holds the thresholds.
CALIBRATION_FILE = "calibration.json"
#: (class name, branch)
Key = tuple[str, str]


@dataclass(frozen=True)
class Threshold:
    """The calibrated threshold of one (class, branch), or why there is none.

    ``status``: ``ok`` (``threshold`` set), ``too few`` or ``unreachable`` (``threshold`` None).
    ``precision``/``low``/``high``/``above``: accepted share, its Wilson interval and the number
    of decisions at or above the threshold (for ``unreachable``: those of the best cut found).
    """

    class_name: str
    branch: str
    threshold: float | None
    precision: float | None
    low: float | None
    high: float | None
    above: int
    decisions: int
    target_precision: float
    min_decisions: int
    status: str

    @property
    def message(self) -> str:
        if self.status == "too few":
            return f"too few decisions ({self.decisions})"
        if self.status == "unreachable":
            best = "" if self.precision is None else f"; best precision {self.precision:.2f}"
            return f"no threshold reaches precision {self.target_precision:.2f}{best}"
        return (f"score >= {self.threshold:.3f}: precision {self.precision:.2f} "
                f"[{self.low:.2f}, {self.high:.2f}] over {self.above} decisions")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _fit_group(key: Key, rows: list[Decision], target: float, min_decisions: int,
               confidence: float) -> Threshold:
    def threshold(**found: Any) -> Threshold:
        return Threshold(class_name=key[0], branch=key[1], decisions=len(rows), target_precision=target,
                         min_decisions=min_decisions, **found)

    if len(rows) < min_decisions:
        return threshold(threshold=None, precision=None, low=None, high=None, above=0, status="too few")
    rows = sorted(rows, key=lambda d: -d.score)
    best: tuple[float, int, int, float] | None = None  # (precision, k, n, score) of the best valid cut
    found: tuple[int, int, float] | None = None
    k = 0
    for i, d in enumerate(rows):
        k += d.accepted
        n = i + 1
        if i + 1 < len(rows) and rows[i + 1].score == d.score:
            continue  # a cut takes every decision with the same score
        if n < min_decisions:
            continue
        if best is None or k / n > best[0]:
            best = (k / n, k, n, d.score)
        if k / n >= target:
            found = (k, n, d.score)  # lower scores come later: the last hit is the lowest cut
    if found is None:
        if best is None:  # every cut had fewer than min_decisions decisions
            return threshold(threshold=None, precision=None, low=None, high=None, above=0, status="too few")
        prec, kb, nb, _ = best
        low, high = wilson_interval(kb, nb, confidence)
        return threshold(threshold=None, precision=prec, low=low, high=high, above=nb, status="unreachable")
    k, n, score = found
    low, high = wilson_interval(k, n, confidence)
    return threshold(threshold=float(score), precision=k / n, low=low, high=high, above=n, status="ok")


def fit_thresholds(rows: Iterable[Decision], *, target_precision: float = 0.95, min_decisions: int = 20,
                   confidence: float = 0.95) -> dict[Key, Threshold]:
    """A :class:`Threshold` for every (class, branch) that has decisions (see the module doc)."""
    if not 0.0 < target_precision <= 1.0:
        raise InputError(f"target_precision must be in (0, 1], got {target_precision}")
    if int(min_decisions) < 1:
        raise InputError(f"min_decisions must be at least 1, got {min_decisions}")
    groups: dict[Key, list[Decision]] = {}
    for d in rows:
        groups.setdefault((d.class_name, d.branch), []).append(d)
    return {key: _fit_group(key, groups[key], float(target_precision), int(min_decisions), confidence)
            for key in sorted(groups)}


def calibrate(project: "Project", *, target_precision: float = 0.95, min_decisions: int = 20,
              confidence: float = 0.95) -> dict[Key, Threshold]:
    """Thresholds fitted from every decision in ``project`` (not saved; see :func:`save_calibration`)."""
    return fit_thresholds(decisions(project), target_precision=target_precision, min_decisions=min_decisions,
                          confidence=confidence)


def _folder(project_or_folder: Any) -> Path:
    return Path(getattr(project_or_folder, "folder", project_or_folder))


def save_calibration(project_or_folder: Any, thresholds: Mapping[Key, Threshold]) -> Path:
    """Write ``calibration.json`` into the project folder atomically; returns its path."""
    folder = _folder(project_or_folder)
    path = folder / CALIBRATION_FILE
    payload = {"version": 1, "fitted_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
               "thresholds": [t.to_dict() for _, t in sorted(thresholds.items())]}
    fd, tmp = tempfile.mkstemp(prefix=".calibration-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=2)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_calibration(project_or_folder: Any) -> dict[Key, Threshold]:
    """The thresholds saved in the project folder ({} when none were saved)."""
    path = _folder(project_or_folder) / CALIBRATION_FILE
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        items = [Threshold(**t) for t in data["thresholds"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path} is not a calibration file this version can read ({exc}); delete it and "
                         "run `text2seg-widgets review calibrate PROJECT` again") from exc
    return {(t.class_name, t.branch): t for t in items}
