"""``text2seg-widgets pseudo-label``: batch pseudo-labelling of a project's images."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import click

from text2seg_widgets.cli.common import PROJECT_LOCATION, fusion_options, priority_list
from text2seg_widgets.cli.segment import parse_classes, parse_models
from text2seg_widgets.errors import Text2SegError

__all__ = ["COMMANDS", "pseudo_label"]


def _open_project(folder: str | Path, images: tuple[Path, ...]) -> tuple[Any, bool]:
    """``(project, created)``: the project in ``folder``, or a new empty one (the run adds its
    classes) when IMAGES are given. A team project (URL) must exist (`project create`)."""
    from text2seg_widgets.store import DB_NAME, Project

    if isinstance(folder, str):
        return Project.open(folder), False
    if (folder / DB_NAME).is_file():
        return Project.open(folder), False
    if not images:
        raise click.ClickException(f"{folder} is not a project (no {DB_NAME}); give IMAGES and --classes "
                                   "to create it, or point at an existing project folder")
    return Project.create(folder), True


def _discard_new_project(folder: Path, folder_existed: bool) -> None:
    """Remove a project this command created when the command failed before storing anything."""
    from text2seg_widgets.store import DB_NAME, Project

    with Project.open(folder) as project:
        if project.candidates() or any(project.processed_images(r["id"]) for r in project.runs()):
            return
    if not folder_existed:
        shutil.rmtree(folder, ignore_errors=True)
        return
    for name in (DB_NAME, f"{DB_NAME}-wal", f"{DB_NAME}-shm", "project.lock"):
        (folder / name).unlink(missing_ok=True)
    for sub in ("runs", "backups"):
        shutil.rmtree(folder / sub, ignore_errors=True)
    click.echo(f"the run failed before storing anything; the project it created in {folder} was "
               "removed", err=True)


def _failure_advice(failures: dict[int, str], log_dir: str) -> str:
    """Retry advice only where a retry can help: an image refused for its content or the settings
    (bands, window, tile size) needs a fix first."""
    fixable = [i for i, e in failures.items() if e.startswith(("InputError", "UnreviewedError"))]
    parts = [f"{len(failures)} image(s) failed; see {log_dir}/images.jsonl."]
    if fixable:
        parts.append(f"{len(fixable)} of them cannot be read with these settings or files (e.g. "
                     "--bands, --tile-size, a damaged file): fix that, then run the same command.")
    if len(fixable) < len(failures):
        parts.append(f"{len(failures) - len(fixable)} failed for other reasons: run the same command "
                     "again to retry them.")
    return " ".join(parts)


def _settings(classes, models_arg: str, opts: dict):
    from text2seg_widgets.engines import BatchSettings
    from text2seg_widgets.pipeline import PipelineConfig

    config = PipelineConfig(branches=opts["branches"], box_threshold=opts["box_threshold"],
                            text_threshold=opts["text_threshold"], min_area=opts["min_area"],
                            overlap=opts["overlap_rule"], class_priority=priority_list(opts["class_priority"]))
    return BatchSettings(classes=classes, models=parse_models(models_arg), config=config, device=opts["device"],
                         dtype=opts["dtype"], tile_size=opts["tile_size"], overlap=opts["overlap"],
                         bands=opts["bands"], stretch=opts["stretch"], prefetch=opts["prefetch"],
                         tile_batch=opts["tile_batch"], replace=opts["replace"])


@click.command("pseudo-label")
@click.argument("project", type=PROJECT_LOCATION)
@click.argument("images", nargs=-1, type=click.Path(dir_okay=False, path_type=Path))
@click.option("--classes", "classes_arg", default=None,
              help="Comma list or class file; default: the project's classes (with their prompts).")
@click.option("--background/--no-background", default=True, show_default=True,
              help="Add background prompts for the CLIP branches.")
@click.option("--branches", default="auto", show_default=True,
              help="Comma list of detector, heatmap, filter, concept; 'auto' = all the models allow.")
@click.option("--models", "models_arg", default="default", show_default=True,
              help="Preset (default, offline, tiny) or role=spec pairs, e.g. segmenter=litemedsam,detector=tiny.")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda, cuda:1, mps.")
@click.option("--dtype", default="auto", show_default=True, help="auto (bf16/fp16 on CUDA only), float32.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True)
@click.option("--workers", type=int, default=None, help="Ray: actors (model replicas); default one per GPU.")
@click.option("--ray-address", default=None, help="Ray: cluster address host:port (default: a local Ray).")
@click.option("--tile-size", default=1024, show_default=True, type=int)
@click.option("--overlap", default=128, show_default=True, type=int)
@click.option("--bands", default=None, help="Band preset (rgb, nir-r-g) or 1-based indices '4,3,2'.")
@click.option("--stretch", default="auto", show_default=True, help="auto, percentile, minmax, none.")
@click.option("--tile-batch", default=1, show_default=True, type=int,
              help="Tiles encoded together by the segmenter (use 4-8 on a GPU).")
@click.option("--prefetch", default=2, show_default=True, type=int, help="Tiles read ahead.")
@click.option("--box-threshold", default=0.35, show_default=True, type=float)
@click.option("--text-threshold", default=0.25, show_default=True, type=float)
@click.option("--min-area", default=16, show_default=True, type=int, help="Smallest candidate in pixels.")
@fusion_options
@click.option("--resume", "resume", type=int, default=None, help="Continue this run id (same settings).")
@click.option("--fresh", is_flag=True, help="Start a new run even if one with the same settings exists.")
@click.option("--replace", is_flag=True, help="Drop each image's earlier proposed candidates first.")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
# learning from the reviewer (text2seg_widgets.insights; see `text2seg-widgets review --help`)
@click.option("--prune-prompts", is_flag=True, help="Drop prompts whose candidates were only ever rejected.")
@click.option("--auto-accept-calibrated", is_flag=True,
              help="After the run, accept candidates above the project's calibrated thresholds.")
def pseudo_label(project: str | Path, images: tuple[Path, ...], classes_arg: str | None, background: bool,
                 models_arg: str, engine: str, workers: int | None, ray_address: str | None, resume: int | None,
                 fresh: bool, progress: bool, prune_prompts: bool, auto_accept_calibrated: bool, **opts) -> None:
    """Propose candidates for every image of PROJECT (or only IMAGES, which are added first) and
    store them in the project. Resumable: run the same command again after an interruption and
    it continues the same run, skipping the images already stored. Prints a JSON summary."""
    from text2seg_widgets.cli.review import auto_accept_run, review_for_run
    from text2seg_widgets.engines import make_engine
    from text2seg_widgets.engines.runs import classes_from_project

    if engine == "local" and (workers is not None or ray_address is not None):
        raise click.UsageError("--workers and --ray-address need --engine ray")
    folder_existed = isinstance(project, str) or project.exists()
    created = False
    try:
        parsed = parse_classes(classes_arg, background) if classes_arg else None  # before creating
        proj, created = _open_project(project, images)
        with proj:
            ids = [proj.add_image(path).id for path in images] if images else None
            classes = parsed if parsed is not None else classes_from_project(proj, background)
            # insights: pruned prompts and calibrated thresholds, recorded in the run manifest
            classes, review = review_for_run(proj, classes, prune=prune_prompts, calibrated=auto_accept_calibrated)
            options: dict[str, Any] = {"progress": progress}
            if engine == "ray":
                options.update(workers=workers, address=ray_address)
            settings = _settings(classes, models_arg, opts)
            settings.review = review
            runner = make_engine(engine, settings, **options)
            report = runner.run(proj, ids, resume=resume, fresh=fresh)
            auto = auto_accept_run(proj, sorted(proj.processed_images(report.run_id))) \
                if auto_accept_calibrated else None
    except (Text2SegError, click.ClickException) as exc:
        if created and isinstance(project, Path):
            _discard_new_project(project, folder_existed)
        if isinstance(exc, click.ClickException):
            raise
        raise click.ClickException(str(exc)) from exc
    summary = report.to_dict()
    summary["seconds"] = round(summary["seconds"], 3)
    if auto is not None:
        summary["auto_accepted"] = auto
    click.echo(json.dumps(summary, indent=2, default=str))
    if report.failures:
        click.echo(_failure_advice(report.failures, report.log_dir), err=True)
        sys.exit(1)


COMMANDS = [pseudo_label]
