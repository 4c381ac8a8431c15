"""``text2seg-widgets weights list|fetch|verify|path``: inspect, download and check model weights."""

from __future__ import annotations

from pathlib import Path

import click

from text2seg_widgets.errors import Text2SegError
from text2seg_widgets.models import weights as registry

__all__ = ["COMMANDS", "weights_group"]

_cache_option = click.option(
    "--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="Weight cache root (default: $TEXT2SEG_CACHE or ~/.cache/text2seg-widgets).")


def _human(nbytes: int | None) -> str:
    if nbytes is None:
        return "?"
    size = float(nbytes)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"  # pragma: no cover - loop always returns


def _on_disk_size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and ".cache" not in p.parts)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


@click.group("weights")
def weights_group() -> None:
    """Model weights: list the specs, fetch them (the only command that downloads), verify them."""


@weights_group.command("list")
@_cache_option
def list_command(cache_dir: Path | None) -> None:
    """Show every weight spec: name, family, cached or not, path and size."""
    try:
        specs = registry.list_specs()
    except Text2SegError as exc:
        raise _fail(exc) from exc
    rows = [("NAME", "FAMILY", "CACHED", "SIZE", "PATH")]
    for spec in specs:
        path = registry.expected_path(spec, cache_dir=cache_dir)
        present = registry.is_cached(spec, cache_dir=cache_dir)
        size = _on_disk_size(path) if present else spec.size
        rows.append((spec.name, spec.family, "yes" if present else "no",
                     _human(size) + ("" if present else " (expected)" if size else ""), str(path)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    for row in rows:
        click.echo("  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4])


@weights_group.command("fetch")
@click.argument("name")
@_cache_option
@click.option("--force", is_flag=True, help="Download again even if the weights are present.")
@click.option("--offline", is_flag=True, default=None,
              help="Never use the network (also set by TEXT2SEG_OFFLINE=1 or HF_HUB_OFFLINE=1).")
@click.option("--quiet", "-q", is_flag=True, help="No progress bar.")
def fetch_command(name: str, cache_dir: Path | None, force: bool, offline: bool | None, quiet: bool) -> None:
    """Download the weights NAME into the cache (resuming a partial download) and verify them."""
    try:
        path = registry.fetch(name, cache_dir=cache_dir, force=force, offline=offline or None,
                              progress=not quiet)
    except (Text2SegError, OSError) as exc:  # OSError: e.g. a cache folder that is not writable
        raise _fail(exc) from exc
    click.echo(f"{name}: {path}")


@weights_group.command("verify")
@click.argument("name", required=False)
@_cache_option
def verify_command(name: str | None, cache_dir: Path | None) -> None:
    """Check NAME (or every cached spec) against its recorded size and sha256.

    Exits non-zero when NAME is missing or when any checked weights do not match.
    """
    try:
        specs = [registry.get_spec(name)] if name else registry.list_specs()
        results = [registry.verify(spec, cache_dir=cache_dir) for spec in specs]
    except Text2SegError as exc:
        raise _fail(exc) from exc
    failed = False
    for result in results:
        if not result.exists:
            if name:
                raise click.ClickException(result.message)
            click.echo(f"{result.name}: not cached")
            continue
        failed |= not result.ok
        click.echo(f"{result.name}: {'ok' if result.ok else 'FAILED'} ({result.message}) {result.path}")
    if failed:
        raise click.ClickException("some weights failed verification (see above)")


@weights_group.command("path")
@click.argument("name")
@_cache_option
def path_command(name: str, cache_dir: Path | None) -> None:
    """Print the local path of NAME; fails (with the fetch command) when it is not present."""
    try:
        click.echo(str(registry.local_path(name, cache_dir=cache_dir)))
    except Text2SegError as exc:
        raise _fail(exc) from exc


COMMANDS = [weights_group]
