""""Accept all above the calibrated threshold": a preview that says how many candidates would be
accepted and with what estimated precision, and the action itself (one undoable step).

Invariants: only ``proposed`` candidates of a (class, branch) with an ``ok`` threshold and a score
``>= threshold`` are in a plan. The plan's estimated precision is the count-weighted mean of its
groups' calibrated precisions (the share of reviewed candidates at or above the threshold that
the reviewer accepted), so ``expected_wrong = count * (1 - estimated_precision)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.insights.calibration import Key, Threshold, load_calibration

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["GroupPlan", "AcceptPlan", "preview_accept_calibrated", "accept_above_calibrated"]


@dataclass(frozen=True)
class GroupPlan:
    """What the plan accepts from one (class, branch)."""

    class_name: str
    branch: str
    threshold: float
    precision: float
    count: int


@dataclass(frozen=True)
class AcceptPlan:
    """The candidates an accept-above-calibrated would accept, and what to expect of them."""

    image_id: int | None
    candidate_ids: tuple[int, ...]
    groups: tuple[GroupPlan, ...]
    not_calibrated: tuple[str, ...]
    annotation_ids: tuple[int, ...] = ()
    done: bool = False

    @property
    def count(self) -> int:
        return len(self.candidate_ids)

    @property
    def estimated_precision(self) -> float | None:
        if not self.count:
            return None
        return sum(g.precision * g.count for g in self.groups) / self.count

    @property
    def expected_wrong(self) -> float:
        precision = self.estimated_precision
        return 0.0 if precision is None else self.count * (1.0 - precision)

    def summary(self) -> str:
        where = "the whole project" if self.image_id is None else f"image {self.image_id}"
        verb = "accepted" if self.done else "would accept"
        if not self.count:
            head = f"nothing to accept on {where}: no proposed candidate scores above a calibrated threshold"
        else:
            head = (f"{verb} {self.count} candidate(s) on {where}, estimated precision "
                    f"{self.estimated_precision:.3f} (about {self.expected_wrong:.1f} wrong)")
        lines = [head] + [f"  {g.class_name} / {g.branch}: {g.count} at score >= {g.threshold:.3f} "
                          f"(precision {g.precision:.2f})" for g in self.groups]
        lines += [f"  not calibrated: {m}" for m in self.not_calibrated]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"image_id": self.image_id, "count": self.count, "estimated_precision": self.estimated_precision,
                "expected_wrong": self.expected_wrong, "candidate_ids": list(self.candidate_ids),
                "groups": [vars(g) for g in self.groups], "not_calibrated": list(self.not_calibrated),
                "annotation_ids": list(self.annotation_ids), "done": self.done}


def _thresholds(project: "Project", thresholds: Mapping[Key, Threshold] | None) -> Mapping[Key, Threshold]:
    found = load_calibration(project) if thresholds is None else thresholds
    if not found:
        raise InputError("no calibrated thresholds in this project yet; fit them with "
                         "`text2seg-widgets review calibrate PROJECT` (or insights.calibrate + save_calibration)")
    return found


def preview_accept_calibrated(project: "Project", image_id: int | None = None, *,
                              thresholds: Mapping[Key, Threshold] | None = None) -> AcceptPlan:
    """The plan for ``image_id`` (None: the whole project); changes nothing.

    ``thresholds``: default the ones saved in the project (:func:`~.calibration.load_calibration`)."""
    table = _thresholds(project, thresholds)
    if image_id is not None:
        project.image(int(image_id))  # InputError for an unknown image
    chosen: dict[Key, list[tuple[float, int]]] = {}
    missing: dict[Key, int] = {}
    for rec in project.candidates(image_id=image_id, status="proposed"):
        key = (rec.class_name, str(rec.candidate.branch))
        t = table.get(key)
        if t is None or t.status != "ok" or t.threshold is None:
            missing[key] = missing.get(key, 0) + 1
        elif rec.candidate.score >= t.threshold:
            chosen.setdefault(key, []).append((rec.candidate.score, rec.id))
    groups, ids = [], []
    for key in sorted(chosen):
        t = table[key]
        items = sorted(chosen[key], key=lambda s: (-s[0], s[1]))
        ids += [cid for _, cid in items]
        groups.append(GroupPlan(key[0], key[1], float(t.threshold),  # type: ignore[arg-type]  # ok thresholds carry threshold and precision
                                float(t.precision), len(items)))  # type: ignore[arg-type]  # ok thresholds carry threshold and precision
    notes = []
    for key in sorted(missing):
        t = table.get(key)
        why = "never calibrated" if t is None else t.message
        notes.append(f"{key[0]} / {key[1]}: {missing[key]} proposed, {why}")
    return AcceptPlan(None if image_id is None else int(image_id), tuple(ids), tuple(groups), tuple(notes))


def accept_above_calibrated(project: "Project", image_id: int | None = None, *,
                            thresholds: Mapping[Key, Threshold] | None = None, dry_run: bool = False,
                            user: str | None = None) -> AcceptPlan:
    """Accept the plan's candidates as ONE undoable action (``dry_run``: only the preview)."""
    plan = preview_accept_calibrated(project, image_id, thresholds=thresholds)
    if dry_run or not plan.count:
        return plan
    where = "project" if image_id is None else f"image {image_id}"
    description = (f"accept {plan.count} candidates above calibrated thresholds on {where} "
                   f"(est. precision {plan.estimated_precision:.2f})")
    ann_ids = project.accept_many(plan.candidate_ids, description=description, user=user)
    return replace(plan, annotation_ids=tuple(ann_ids), done=True)
