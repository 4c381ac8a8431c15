"""``text2seg-widgets eval``: compare predictions (a project or label files) with ground truth."""

from __future__ import annotations

from pathlib import Path

import click

from text2seg_widgets.errors import Text2SegError

__all__ = ["COMMANDS", "eval_command"]


@click.command("eval")
@click.option("--pred", "pred", required=True, type=click.Path(exists=True),
              help="A project folder, or a prediction label file / folder of label files (PNG/GeoTIFF).")
@click.option("--gt", "gt", required=True, type=click.Path(exists=True),
              help="Ground-truth label file or folder; files pair with images/predictions by file stem.")
@click.option("--mapping", required=True,
              help="Class mapping: a preset (loveda, potsdam, vaihingen, epfl_roads, isprs_rgb, deepglobe) "
                   "or a YAML/JSON mapping file.")
@click.option("--pred-mapping", default=None,
              help="Encoding of prediction label files: a preset or file, or 'classes' (values already "
                   "are class indices 0..C-1 of --mapping, 255 = none). Default: like --mapping; label "
                   "GeoTIFFs written by this package are read by their class names.")
@click.option("--source", type=click.Choice(["candidates", "annotations"]), default="candidates",
              show_default=True, help="For a project: score its candidates or its annotations.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(["proposed", "accepted", "rejected"]),
              help="For a project: only candidates in these review states (repeatable; default all).")
@click.option("--per-branch", is_flag=True, help="Score each branch's candidates alone, and all together.")
@click.option("--unknown", type=click.Choice(["error", "ignore"]), default="error", show_default=True,
              help="Label codes/colours the mapping does not name: fail listing them, or score them as ignore.")
@click.option("--unknown-classes", type=click.Choice(["error", "ignore"]), default="error", show_default=True,
              help="Predicted class names not in the mapping (nor its aliases): fail, or leave them out.")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False),
              help="Folder for metrics.csv and metrics.json.")
def eval_command(pred: str, gt: str, mapping: str, pred_mapping: str | None, source: str,
                 statuses: tuple[str, ...], per_branch: bool, unknown: str, unknown_classes: str,
                 out: str) -> None:
    """Per-class IoU, mIoU, overall and mean accuracy over all pixels of all images."""
    from text2seg_widgets.eval.confusion import format_table, write_csv, write_json
    from text2seg_widgets.eval.labels import load_mapping
    from text2seg_widgets.eval.semantic import evaluate

    try:
        label_mapping = load_mapping(mapping)
        results = evaluate(pred, gt, label_mapping, pred_mapping=pred_mapping, source=source,  # type: ignore[arg-type]  # click Choice values are the Literal names
                           per_branch=per_branch, statuses=statuses or None, unknown=unknown,  # type: ignore[arg-type]  # click Choice values are the Literal names
                           unknown_classes=unknown_classes)  # type: ignore[arg-type]  # click Choice values are the Literal names
    except Text2SegError as exc:
        raise click.ClickException(str(exc)) from exc
    out_dir = Path(out)
    meta = {"pred": str(pred), "gt": str(gt), "mapping": label_mapping.name, "source": source,
            "statuses": list(statuses) or None, "per_branch": per_branch,
            "ignore_index": 255, "mean_over": "classes present in the ground truth or the prediction"}
    csv_path = write_csv(results, out_dir / "metrics.csv")
    json_path = write_json(results, out_dir / "metrics.json", meta=meta)
    images = max(r.images for r in results.values())
    click.echo(f"{images} image(s), mapping {label_mapping.name}")
    click.echo(format_table(results))
    click.echo(f"saved {csv_path} and {json_path}")


COMMANDS = [eval_command]
