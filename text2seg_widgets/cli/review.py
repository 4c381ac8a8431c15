"""``text2seg-widgets review ...``: what the reviewer's decisions say (acceptance statistics),
calibrated thresholds and accepting above them, prompt pruning, and the review queue."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from text2seg_widgets.errors import Text2SegError

__all__ = ["COMMANDS", "review_group"]

_project_arg = click.argument("project", type=click.Path(path_type=Path))


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except Text2SegError as exc:
        raise click.ClickException(str(exc)) from exc


def _open(folder: Path) -> Any:
    from text2seg_widgets.store import Project

    return Project.open(folder)


def _echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


@click.group("review")
def review_group() -> None:
    """Learn from the reviewer's decisions: statistics, calibration, pruning, queue."""


@review_group.command("stats")
@_project_arg
@click.option("--by", default="class,branch,prompt,score_bin", show_default=True,
              help="Comma list of class, branch, prompt, score_bin.")
@click.option("--bins", default=10, show_default=True, type=int, help="Score bins over [0, 1].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats_command(project: Path, by: str, bins: int, as_json: bool) -> None:
    """Acceptance rate per class x branch x prompt x score bin, with 95 % Wilson intervals."""
    from text2seg_widgets.insights import acceptance_table, decisions, format_acceptance

    keys = [k.strip() for k in by.split(",") if k.strip()]
    with _errors(), _open(project) as p:
        rows = acceptance_table(decisions(p), by=keys, bins=bins)
    if as_json:
        _echo_json([r.to_dict() for r in rows])
    elif not rows:
        click.echo("no decisions yet: accept or reject some candidates first")
    else:
        click.echo(format_acceptance(rows))


COMMANDS = [review_group]
