"""Prompts that work: per class and synonym (the candidate's prompt), how many of its candidates
the reviewer accepted, which prompts only produce rejections, and the class file without them.

Invariants:

- A prompt is *flagged* when it has at least ``min_decisions`` decisions and none was accepted
  (a relabel is not an acceptance: the prompt found the wrong class).
- Pruning drops flagged prompts only. Prompts never seen in a decision survive (no evidence).
  A class whose every prompt is flagged keeps its best one (highest Wilson upper bound, then the
  first listed) so that no class is left without a prompt; :class:`PruneResult` says so.
- The class file is written in the ``name: syn1, syn2`` syntax that
  :meth:`text2seg_widgets.pipeline.classes.ClassSet.parse` reads.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from text2seg_widgets.core.classfile import format_class_text
from text2seg_widgets.errors import InputError
from text2seg_widgets.insights.decisions import Decision, decisions
from text2seg_widgets.insights.wilson import wilson_interval

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["PromptStat", "PruneResult", "prompt_stats", "prune_prompts", "prune_classes", "format_class_file",
           "write_class_file"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PromptStat:
    """Decisions on the candidates one prompt produced for one class."""

    class_name: str
    prompt: str
    decisions: int
    accepted: int
    relabelled: int
    rejected: int
    low: float
    high: float
    flagged: bool

    @property
    def rate(self) -> float | None:
        return None if not self.decisions else self.accepted / self.decisions


@dataclass
class PruneResult:
    """Surviving prompts per class (in their original order), what was dropped, and notes."""

    survivors: dict[str, list[str]]
    dropped: dict[str, list[str]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def prompt_stats(rows: Iterable[Decision], *, min_decisions: int = 5,
                 confidence: float = 0.95) -> list[PromptStat]:
    """One :class:`PromptStat` per (class, prompt) with decisions, sorted by class then prompt."""
    if int(min_decisions) < 1:
        raise InputError(f"min_decisions must be at least 1, got {min_decisions}")
    counts: dict[tuple[str, str], list[int]] = {}
    for d in rows:
        c = counts.setdefault((d.class_name, d.prompt), [0, 0, 0])
        c[0 if d.accepted else 1 if d.outcome == "relabelled" else 2] += 1
    out = []
    for (cls, prompt), (acc, rel, rej) in sorted(counts.items()):
        n = acc + rel + rej
        low, high = wilson_interval(acc, n, confidence)
        out.append(PromptStat(cls, prompt, n, acc, rel, rej, low, high, n >= min_decisions and acc == 0))
    return out


def prune_prompts(project: "Project", *, min_decisions: int = 5,
                  classes: Mapping[str, Sequence[str]] | None = None) -> PruneResult:
    """The project's classes (or ``classes``: name -> prompts) with flagged prompts dropped."""
    if classes is None:
        classes = {c.name: list(c.prompts) or [c.name] for c in project.classes}
    stats = {(s.class_name, s.prompt): s for s in prompt_stats(decisions(project), min_decisions=min_decisions)}
    return prune_classes(classes, stats.values())


def prune_classes(classes: Mapping[str, Sequence[str]], stats: Iterable[PromptStat]) -> PruneResult:
    """Apply prompt statistics to a class table (see the module doc for the rules)."""
    table = {(s.class_name, s.prompt): s for s in stats}
    result = PruneResult(survivors={})
    for name, prompts in classes.items():
        prompts = list(prompts) or [name]
        keep = [p for p in prompts if not (table.get((name, p)) and table[(name, p)].flagged)]
        dropped = [p for p in prompts if p not in keep]
        if not keep:
            best = max(prompts, key=lambda p: (table[(name, p)].high, -prompts.index(p)))
            keep, dropped = [best], [p for p in prompts if p != best]
            result.notes.append(f"every prompt of {name!r} only produced rejections; kept {best!r} so the "
                                "class still has a prompt: rewrite its prompts")
        result.survivors[name] = keep
        if dropped:
            result.dropped[name] = dropped
            log.info("class %r: dropping prompt(s) %s", name, dropped)
    return result


def format_class_file(survivors: Mapping[str, Sequence[str]]) -> str:
    """``name: syn1, syn2`` lines (the class-file syntax, quoted where a prompt holds a separator;
    :func:`text2seg_widgets.core.classfile.format_class_text`), one class a line."""
    return format_class_text(survivors)


def write_class_file(path: str | Path, survivors: Mapping[str, Sequence[str]]) -> Path:
    """Write the class file (``name: syn1, syn2`` lines); returns its path."""
    path = Path(path)
    if not path.parent.is_dir():
        raise InputError(f"cannot write the class file {path}: the folder {path.parent} does not "
                         "exist; create it or give another path")
    if path.is_dir():
        raise InputError(f"{path} is a folder; give a file name for the class file")
    path.write_text(format_class_file(survivors), encoding="utf-8")
    return path
