"""What the command groups share: the PROJECT argument, opening a project, clean error exits, JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from text2seg_widgets.errors import Text2SegError

__all__ = ["project_arg", "errors", "open_project", "echo_json", "fusion_options", "priority_list",
           "ProjectLocation", "PROJECT_LOCATION"]


class ProjectLocation(click.ParamType):
    """A project: a folder (one person, SQLite) or a ``postgresql://`` URL (a team project)."""

    name = "project"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> str | Path:
        text = str(value)
        if text.startswith(("postgresql://", "postgres://", "postgresql+psycopg://")):
            return text
        return Path(text)


PROJECT_LOCATION = ProjectLocation()
project_arg = click.argument("project", type=PROJECT_LOCATION)

#: the fusion rules (text2seg_widgets.pipeline.fusion.OVERLAP_RULES; not imported here so that
#: `--help` does not load the pipeline)
_OVERLAP_RULES = ("score", "smaller-on-top", "priority")


def fusion_options(command: Any) -> Any:
    """``--overlap-rule`` and ``--class-priority``: which class a pixel takes where masks of
    different classes overlap (the pipeline's fusion rule)."""
    command = click.option(
        "--class-priority", default="",
        help="With --overlap-rule priority: class names, top first, e.g. 'car,building'.")(command)
    return click.option(
        "--overlap-rule", type=click.Choice(_OVERLAP_RULES), default="smaller-on-top",
        show_default=True,
        help="Where masks of different classes overlap: the higher score wins (score), the smaller "
             "mask is drawn on top (smaller-on-top), or --class-priority decides (priority).")(command)


@contextmanager
def errors() -> Iterator[None]:
    """Turn our errors into a clean CLI message (exit code 1) instead of a traceback."""
    try:
        yield
    except Text2SegError as exc:
        raise click.ClickException(str(exc)) from exc


def open_project(location: str | Path) -> Any:
    from text2seg_widgets.store import Project

    return Project.open(location)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def priority_list(text: str) -> tuple[str, ...]:
    """``--class-priority 'car, building'`` -> ``("car", "building")``."""
    return tuple(c.strip() for c in text.split(",") if c.strip())
