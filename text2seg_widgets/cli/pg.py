"""``text2seg-widgets pg start|stop|status``: a local PostgreSQL server to try a team project on
one machine (see the README's "team project" section)."""

from __future__ import annotations

from pathlib import Path

import click

from text2seg_widgets.cli.common import errors

__all__ = ["COMMANDS"]

_FOLDER = click.option("--folder", type=click.Path(file_okay=False, path_type=Path), default=None,
                       help="Where the server keeps its data (default: $TEXT2SEG_HOME/pg, else "
                            "~/.local/share/text2seg-widgets/pg; as root /var/tmp/text2seg-widgets-pg).")


@click.group("pg")
def pg_group() -> None:
    """A local PostgreSQL server for trying team projects (Debian's postgresql package)."""


@pg_group.command("start")
@_FOLDER
@click.option("--port", type=int, default=None, help="TCP port on 127.0.0.1 (default: a free one, "
                                                    "kept for later starts).")
def start_command(folder: Path | None, port: int | None) -> None:
    """Create (first time) and start the server; prints the URL to give `project create`."""
    from text2seg_widgets.store.localpg import LocalCluster, default_folder

    with errors():
        cluster = LocalCluster.at(folder or default_folder())
        if port is not None:
            cluster.port = port
        cluster.init()
        if cluster.running():
            click.echo(f"already running: {cluster.url('DBNAME')}")
            return
        cluster.start()
    click.echo(f"PostgreSQL running on 127.0.0.1:{cluster.port} (data in {cluster.data}); create a "
               f"team project with:\n  text2seg-widgets project create {cluster.url('myproject')} "
               "--classes building,road")


@pg_group.command("stop")
@_FOLDER
def stop_command(folder: Path | None) -> None:
    """Stop the local server (its data stays)."""
    from text2seg_widgets.store.localpg import LocalCluster, default_folder

    with errors():
        cluster = LocalCluster.at(folder or default_folder())
        cluster.stop()
    click.echo("stopped")


@pg_group.command("status")
@_FOLDER
def status_command(folder: Path | None) -> None:
    """Say whether the local server runs, and its URL."""
    from text2seg_widgets.store.localpg import LocalCluster, default_folder

    with errors():
        cluster = LocalCluster.at(folder or default_folder())
        running = cluster.data.is_dir() and cluster.running()
    click.echo(f"running: {cluster.url('DBNAME')}" if running else "not running")


COMMANDS = [pg_group]
