"""The ``text2seg-widgets`` command line. Only this package configures logging output.

Each command group lives in its own module here and is registered on :data:`main`; nothing in
the library imports this package.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import click

from text2seg_widgets import __version__

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="text2seg-widgets")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
@click.option("--user", default=None, envvar="TEXT2SEG_USER",
              help="Who this command's writes are recorded as (default: TEXT2SEG_USER, else the "
                   "login name).")
@click.option("--image-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              envvar="TEXT2SEG_IMAGE_ROOT",
              help="Team projects: the folder on this machine where the project's relative image "
                   "paths start (default: TEXT2SEG_IMAGE_ROOT).")
def main(verbose: int, user: str | None, image_root: Path | None) -> None:
    """Text-prompted pseudo-labels for remote-sensing segmentation.

    PROJECT is a folder (one person, SQLite) or a postgresql://USER@HOST:PORT/DB URL (a team
    project; credentials from the URL, PGPASSFILE or the PG* environment)."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    # the store reads these when a project is opened (Project.open/create in every command)
    if user:
        os.environ["TEXT2SEG_USER"] = user
    if image_root is not None:
        os.environ["TEXT2SEG_IMAGE_ROOT"] = str(image_root)


def _register() -> None:
    import importlib

    for module in ("segment", "weights", "project", "batch", "evaluate", "review", "embed", "pg"):
        try:
            mod = importlib.import_module(f"text2seg_widgets.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"text2seg_widgets.cli.{module}":
                continue  # that command group is not part of this build yet
            raise
        for command in getattr(mod, "COMMANDS", ()):
            main.add_command(command)


_register()
