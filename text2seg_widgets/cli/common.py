"""What the command groups share: the PROJECT argument, opening a project, clean error exits, JSON."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click

from text2seg_widgets.errors import Text2SegError

__all__ = ["project_arg", "errors", "open_project", "echo_json"]

project_arg = click.argument("project", type=click.Path(path_type=Path))


@contextmanager
def errors() -> Iterator[None]:
    """Turn our errors into a clean CLI message (exit code 1) instead of a traceback."""
    try:
        yield
    except Text2SegError as exc:
        raise click.ClickException(str(exc)) from exc


def open_project(folder: Path) -> Any:
    from text2seg_widgets.store import Project

    return Project.open(folder)


def echo_json(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))
