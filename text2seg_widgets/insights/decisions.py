"""Reviewer decisions as one table: what the human said about each reviewed candidate.

A :class:`Decision` is derived from the public store API only (``candidates(status=...)`` and
``annotations()`` with their ``candidate_id``); nothing here writes to the project.

Invariants:

- Only reviewed candidates (``accepted`` or ``rejected``) are decisions; ``proposed`` ones are not.
- ``outcome`` is ``"accepted"`` (kept as proposed), ``"corrected"`` (kept, its mask edited: the
  annotation's ``origin`` is ``corrected``, or its mask differs from the candidate's, which
  also covers stores without ``origin``),
  ``"relabelled"`` (kept as another class) or ``"rejected"``. An accepted candidate whose
  annotation was later deleted is stored as rejected by the store, and so is one here.
- ``accepted`` is True for ``accepted`` and ``corrected``: the proposal was right about the class.
  A relabel counts as *not* accepted for its (class, branch, prompt): the proposal named the
  wrong class, which is what calibration and prompt pruning must learn from.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["Decision", "decisions", "OUTCOMES"]

#: Possible outcomes of a reviewed candidate.
OUTCOMES = ("accepted", "corrected", "relabelled", "rejected")


@dataclass(frozen=True)
class Decision:
    """One reviewed candidate: its class, branch, prompt and score, and the reviewer's outcome."""

    candidate_id: int
    image_id: int
    class_name: str
    branch: str
    prompt: str
    score: float
    outcome: str
    final_class: str | None = None
    edit_actions: int = 0

    @property
    def accepted(self) -> bool:
        """The proposal was kept with its own class (as proposed or with a corrected mask)."""
        return self.outcome in ("accepted", "corrected")


def _outcome(record: Any, annotation: Any | None) -> tuple[str, str | None, int]:
    """(outcome, final class, edit actions) of a reviewed candidate record."""
    if record.status == "rejected" or annotation is None:
        return "rejected", None, 0
    actions = int(getattr(annotation, "edit_actions", 0) or 0)
    if annotation.class_name != record.class_name:
        return "relabelled", annotation.class_name, actions
    origin = getattr(annotation, "origin", None)
    edited = origin == "corrected" or annotation.rle.get("counts") != record.candidate.rle.get("counts")
    return ("corrected" if edited else "accepted"), annotation.class_name, actions


def decisions(project: "Project", *, image_ids: Iterable[int] | None = None) -> list[Decision]:
    """Every reviewed candidate of ``project`` (optionally only on ``image_ids``), by candidate id."""
    wanted = None if image_ids is None else {int(i) for i in image_ids}
    by_candidate = {a.candidate_id: a for a in project.annotations() if a.candidate_id is not None}
    out: list[Decision] = []
    for status in ("accepted", "rejected"):
        for rec in project.candidates(status=status):
            if wanted is not None and rec.image_id not in wanted:
                continue
            outcome, final, actions = _outcome(rec, by_candidate.get(rec.id))
            cand = rec.candidate
            out.append(Decision(candidate_id=rec.id, image_id=rec.image_id, class_name=rec.class_name,
                                branch=str(cand.branch), prompt=cand.prompt or rec.class_name,
                                score=float(cand.score), outcome=outcome, final_class=final,
                                edit_actions=actions))
    out.sort(key=lambda d: d.candidate_id)
    return out
