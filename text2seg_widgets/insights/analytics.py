"""Acceptance rates of the reviewer's decisions, grouped, with counts and Wilson intervals.

:func:`acceptance_table` groups :class:`~.decisions.Decision` rows by any of ``class``,
``branch``, ``prompt`` and ``score_bin`` (default: all four) and returns one
:class:`AcceptanceRow` per non-empty group, sorted by the group key. Score bins are half-open
``[lo, hi)`` of width ``1 / bins`` except the last, which includes 1.0; scores outside [0, 1]
are clipped into the first or last bin.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from text2seg_widgets.errors import InputError
from text2seg_widgets.insights.decisions import Decision
from text2seg_widgets.insights.wilson import wilson_interval

__all__ = ["AcceptanceRow", "acceptance_table", "score_bin", "format_acceptance", "GROUP_KEYS"]

#: The keys decisions can be grouped by.
GROUP_KEYS = ("class", "branch", "prompt", "score_bin")


@dataclass(frozen=True)
class AcceptanceRow:
    """One group: its key values (``None`` where not grouped by), counts, rate and interval."""

    class_name: str | None
    branch: str | None
    prompt: str | None
    score_bin: tuple[float, float] | None
    decisions: int
    accepted: int
    corrected: int
    relabelled: int
    rejected: int
    rate: float
    low: float
    high: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["score_bin"] = list(self.score_bin) if self.score_bin is not None else None
        return data


def score_bin(score: float, bins: int) -> tuple[float, float]:
    """The ``[lo, hi)`` bin of ``score`` among ``bins`` equal bins of [0, 1] (rounded to 6 digits)."""
    index = min(max(int(float(score) * bins), 0), bins - 1)
    return round(index / bins, 6), round((index + 1) / bins, 6)


def _key(d: Decision, by: Sequence[str], bins: int) -> tuple[Any, ...]:
    values = {"class": d.class_name, "branch": d.branch, "prompt": d.prompt,
              "score_bin": score_bin(d.score, bins) if "score_bin" in by else None}
    return tuple(values[k] if k in by else None for k in GROUP_KEYS)


def acceptance_table(decisions: Iterable[Decision], *, by: Sequence[str] = GROUP_KEYS, bins: int = 10,
                     confidence: float = 0.95) -> list[AcceptanceRow]:
    """Acceptance per group of ``by``; ``rate = (accepted + corrected) / decisions``."""
    unknown = [k for k in by if k not in GROUP_KEYS]
    if unknown:
        raise InputError(f"cannot group by {unknown}; use any of {', '.join(GROUP_KEYS)}")
    if int(bins) < 1:
        raise InputError(f"bins must be at least 1, got {bins}")
    groups: dict[tuple[Any, ...], dict[str, int]] = {}
    for d in decisions:
        counts = groups.setdefault(_key(d, by, bins), dict.fromkeys(
            ("accepted", "corrected", "relabelled", "rejected"), 0))
        counts[d.outcome] += 1
    rows = []
    for key in sorted(groups, key=lambda k: tuple("" if v is None else v for v in k)):
        c = groups[key]
        n = sum(c.values())
        k = c["accepted"] + c["corrected"]
        low, high = wilson_interval(k, n, confidence)
        rows.append(AcceptanceRow(key[0], key[1], key[2], key[3], n, c["accepted"], c["corrected"],
                                  c["relabelled"], c["rejected"], k / n, low, high))
    return rows


def format_acceptance(rows: Sequence[AcceptanceRow]) -> str:
    """A plain-text table of the rows (for the CLI)."""
    header = ("class", "branch", "prompt", "score", "n", "acc", "corr", "relab", "rej", "rate", "95% CI")
    lines = [header]
    for r in rows:
        score = "all" if r.score_bin is None else f"{r.score_bin[0]:.2f}-{r.score_bin[1]:.2f}"
        lines.append((r.class_name or "*", r.branch or "*", r.prompt or "*", score, str(r.decisions),
                      str(r.accepted), str(r.corrected), str(r.relabelled), str(r.rejected),
                      f"{r.rate:.2f}", f"[{r.low:.2f}, {r.high:.2f}]"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip() for line in lines)
