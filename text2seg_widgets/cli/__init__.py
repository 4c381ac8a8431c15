"""The ``text2seg-widgets`` command line. Only this package configures logging output.

Each command group lives in its own module here and is registered on :data:`main`; nothing in
the library imports this package.
"""

from __future__ import annotations

import logging

import click

from text2seg_widgets import __version__

__all__ = ["main"]


@click.group()
@click.version_option(__version__, prog_name="text2seg-widgets")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Text-prompted pseudo-labels for remote-sensing segmentation."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _register() -> None:
    import importlib

    for module in ("segment", "weights", "project", "batch", "evaluate", "review", "embed"):
        try:
            mod = importlib.import_module(f"text2seg_widgets.cli.{module}")
        except ModuleNotFoundError as exc:
            if exc.name == f"text2seg_widgets.cli.{module}":
                continue  # that command group is not part of this build yet
            raise
        for command in getattr(mod, "COMMANDS", ()):
            main.add_command(command)


_register()
