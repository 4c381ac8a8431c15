"""``text2seg-widgets review ...``: what the reviewer's decisions say (acceptance statistics),
calibrated thresholds and accepting above them, prompt pruning, and the review queue."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from text2seg_widgets.cli.common import echo_json as _echo_json
from text2seg_widgets.cli.common import errors as _errors
from text2seg_widgets.cli.common import open_project as _open
from text2seg_widgets.cli.common import project_arg as _project_arg

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["COMMANDS", "review_group"]






@click.group("review")
def review_group() -> None:
    """Learn from the reviewer's decisions: statistics, calibration, pruning, queue."""


@review_group.command("stats")
@_project_arg
@click.option("--by", default="class,branch,prompt,score_bin", show_default=True,
              help="Comma list of class, branch, prompt, score_bin.")
@click.option("--bins", default=10, show_default=True, type=int, help="Score bins over [0, 1].")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def stats_command(project: str | Path, by: str, bins: int, as_json: bool) -> None:
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


@review_group.command("calibrate")
@_project_arg
@click.option("--target", default=0.95, show_default=True, type=float, help="Target precision.")
@click.option("--min-decisions", default=20, show_default=True, type=int,
              help="Decisions a (class, branch) and a threshold need behind them.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def calibrate_command(project: str | Path, target: float, min_decisions: int, as_json: bool) -> None:
    """Fit per class and branch the lowest score threshold reaching the target precision and
    save the thresholds in the project (calibration.json)."""
    from text2seg_widgets.insights import calibrate, save_calibration

    with _errors(), _open(project) as p:
        thresholds = calibrate(p, target_precision=target, min_decisions=min_decisions)
        path = save_calibration(p, thresholds)
    if as_json:
        _echo_json({"path": str(path), "thresholds": [t.to_dict() for t in thresholds.values()]})
        return
    if not thresholds:
        click.echo("no decisions yet: accept or reject some candidates first")
    for t in thresholds.values():
        click.echo(f"{t.class_name} / {t.branch}: {t.message}")
    click.echo(f"saved {path}")


@review_group.command("accept-calibrated")
@_project_arg
@click.option("--image", "image_key", default=None, help="Only this image (id, file name or stem).")
@click.option("--yes", is_flag=True, help="Accept without asking (after printing the preview).")
@click.option("--dry-run", is_flag=True, help="Only print what would be accepted.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def accept_calibrated_command(project: str | Path, image_key: str | None, yes: bool, dry_run: bool,
                              as_json: bool) -> None:
    """Accept every proposed candidate above its calibrated threshold (one undoable action),
    after showing how many and their estimated precision."""
    from text2seg_widgets.insights import accept_above_calibrated, preview_accept_calibrated

    with _errors(), _open(project) as p:
        image_id = _image_id(p, image_key)
        plan = preview_accept_calibrated(p, image_id)
        click.echo(json.dumps(plan.to_dict(), indent=2) if as_json else plan.summary())
        if dry_run or not plan.count:
            return
        if not yes and not click.confirm("accept them?", default=False):
            click.echo("nothing accepted")
            return
        done = accept_above_calibrated(p, image_id)
        click.echo(f"accepted {done.count} candidate(s) (undo with project.undo())")


def _image_id(project: "Project", key: str | None) -> int | None:
    """An image id from an id, file name or stem (None stays None: the whole project)."""
    if key is None:
        return None
    finder = getattr(project, "find_image", None)
    if finder is not None:
        return int(finder(int(key) if key.isdigit() else key).id)
    return int(project.image(int(key)).id) if key.isdigit() else _by_name(project, key)


def _by_name(project: "Project", key: str) -> int:
    for rec in project.images():
        if Path(rec.path).name == key or Path(rec.path).stem == key:
            return int(rec.id)
    raise click.ClickException(f"no image named {key!r} in the project")


@review_group.command("prune")
@_project_arg
@click.option("--min-decisions", default=5, show_default=True, type=int,
              help="Decisions a prompt needs before it can be flagged.")
@click.option("--write-classes", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the class file with the surviving prompts ('name: syn1, syn2').")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def prune_command(project: str | Path, min_decisions: int, write_classes: Path | None, as_json: bool) -> None:
    """Per prompt (synonym): how many of its candidates were accepted; flag prompts that only
    produced rejections and (optionally) write the class file without them."""
    from text2seg_widgets.insights import decisions, prompt_stats, prune_prompts, write_class_file

    with _errors(), _open(project) as p:
        stats = prompt_stats(decisions(p), min_decisions=min_decisions)
        result = prune_prompts(p, min_decisions=min_decisions)
        path = write_class_file(write_classes, result.survivors) if write_classes else None
    if as_json:
        _echo_json({"prompts": [{**vars(s), "rate": s.rate} for s in stats], "survivors": result.survivors,
                    "dropped": result.dropped, "notes": result.notes,
                    "class_file": None if path is None else str(path)})
        return
    for s in stats:
        flag = "  <- only rejections" if s.flagged else ""
        click.echo(f"{s.class_name} / {s.prompt!r}: accepted {s.accepted} of {s.decisions} "
                   f"(95% CI {s.low:.2f}-{s.high:.2f}){flag}")
    for name, dropped in result.dropped.items():
        click.echo(f"drop from {name}: {', '.join(dropped)}")
    for note in result.notes:
        click.echo(f"note: {note}")
    if path is not None:
        click.echo(f"wrote {path}")


@review_group.command("queue")
@_project_arg
@click.option("--top", default=20, show_default=True, type=int, help="How many items to show.")
@click.option("--min-decisions", default=20, show_default=True, type=int,
              help="Decisions a (class, branch) needs before it stops counting as 'few'.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of lines.")
def queue_command(project: str | Path, top: int, min_decisions: int, as_json: bool) -> None:
    """The proposed candidates most worth a human look, most doubtful first, with the reasons."""
    from text2seg_widgets.insights import review_queue

    with _errors(), _open(project) as p:
        items = review_queue(p, limit=top, min_decisions=min_decisions)
    if as_json:
        _echo_json([{"candidate_id": q.candidate_id, "image_id": q.image_id, "priority": q.priority,
                     "reasons": list(q.reasons)} for q in items])
        return
    if not items:
        click.echo("nothing to review: no proposed candidate left")
    for rank, q in enumerate(items, 1):
        click.echo(f"{rank:3d}. candidate {q.candidate_id} on image {q.image_id}  priority {q.priority:.2f}")
        for reason in q.reasons:
            click.echo(f"       - {reason}")


# ---------------------------------------------------------------- used by `pseudo-label` (cli/batch.py)
def review_for_run(project: "Project", classes: Any, *, prune: bool, calibrated: bool) -> tuple[Any, dict[str, Any]]:
    """The run's classes (flagged prompts dropped when ``prune``) and what to record in its
    manifest: ``pruned_prompts`` and/or the calibrated ``thresholds`` the run will auto-accept with."""
    from text2seg_widgets.insights import load_calibration, prune_prompts
    from text2seg_widgets.pipeline.classes import ClassSet

    record: dict[str, Any] = {}
    if prune:
        table = {spec.name: list(spec.prompts) for spec in classes}
        result = prune_prompts(project, classes=table)
        background = classes.background.prompts if classes.background is not None else None
        classes = ClassSet.from_names(result.survivors, background=background)
        record["pruned_prompts"] = {"dropped": result.dropped, "notes": result.notes}
    if calibrated:
        thresholds = load_calibration(project)
        if not thresholds:
            raise click.ClickException("--auto-accept-calibrated needs calibrated thresholds; run "
                                       "`text2seg-widgets review calibrate PROJECT` first")
        record["calibration"] = [t.to_dict() for t in thresholds.values() if t.status == "ok"]
    return classes, record


def auto_accept_run(project: "Project", image_ids: list[int]) -> dict[str, Any]:
    """Accept above the calibrated thresholds on each image (one undoable action per image)."""
    from text2seg_widgets.insights import accept_above_calibrated

    plans = [accept_above_calibrated(project, image_id) for image_id in image_ids]
    count = sum(p.count for p in plans)
    wrong = sum(p.expected_wrong for p in plans)
    return {"accepted": count, "images": len(image_ids),
            "estimated_precision": None if not count else round(1.0 - wrong / count, 4)}


COMMANDS = [review_group]
