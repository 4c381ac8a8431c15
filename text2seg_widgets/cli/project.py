"""``text2seg-widgets project ...``: create a project, add images, show statistics, export,
import COCO, relink moved images."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from text2seg_widgets.cli.common import echo_json as _echo_json
from text2seg_widgets.cli.common import errors as _errors
from text2seg_widgets.cli.common import open_project as _open
from text2seg_widgets.cli.common import PROJECT_LOCATION
from text2seg_widgets.cli.common import project_arg as _project_arg
from text2seg_widgets.errors import InputError

__all__ = ["COMMANDS", "project_group"]

_IMAGE_SUFFIXES = {".tif", ".tiff", ".png", ".jpg", ".jpeg", ".jp2", ".img", ".vrt"}





@click.group("project")
def project_group() -> None:
    """Annotation projects: a folder (one SQLite database) or a team project (postgresql:// URL)."""


@project_group.command("create")
@_project_arg
@click.option("--classes", required=True,
              help="Class names ('building,road,water'), classes with synonyms ('urban: "
                   "building, houses; water: lake') or a class file (classes.txt / .yaml, one "
                   "'name: synonym, synonym' per line). Synonyms become the class's prompts.")
def create_command(project: str | Path, classes: str) -> None:
    """Create a new project (a folder, or a team project at a postgresql:// URL) with its classes."""
    from text2seg_widgets.pipeline.classes import ClassSet
    from text2seg_widgets.store import Project

    with _errors():
        class_set = ClassSet.from_arg(classes)
        specs = [{"name": c.name, "prompts": list(c.prompts)} for c in class_set]
        with Project.create(project, classes=specs) as p:
            click.echo(f"created {p.location} with classes: " + "; ".join(
                f"{c.name} ({', '.join(c.prompts)})" for c in p.classes))
        if class_set.background is not None:
            click.echo("note: the 'background' entry is not a project class; pass its prompts "
                       "to segment/pseudo-label runs (their --background option)")


def _expand(paths: tuple[Path, ...]) -> list[Path]:
    out: list[Path] = []
    for path in paths:
        if path.is_dir():
            out += sorted(f for f in path.iterdir() if f.suffix.lower() in _IMAGE_SUFFIXES)
        else:
            out.append(path)
    return out


@project_group.command("add-images")
@_project_arg
@click.argument("images", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--tile", type=int, default=None,
              help="Add big images as tiles of this many pixels (windows) instead of whole.")
@click.option("--strict", is_flag=True,
              help="All or nothing: if any file is empty, truncated or not an image, add none.")
@click.option("--allow-duplicates", is_flag=True,
              help="Add files whose bytes the project already holds under another path.")
def add_images_command(project: str | Path, images: tuple[Path, ...], tile: int | None,
                       strict: bool, allow_duplicates: bool) -> None:
    """Add image files (or every image in given folders). Bad files (empty, truncated, not an
    image) are reported one by one with their reason; the good ones are added. A copy of an image
    the project holds (same sha256) is skipped with a warning."""
    with _errors(), _open(project) as p:
        batch = p.add_images_checked(_expand(images), strict=strict, tile=tile,
                                     allow_duplicates=allow_duplicates)
        for bad in batch.failed:
            click.echo(f"not added: {bad.path}: {bad.reason}", err=True)
        for twin in batch.duplicates:
            click.echo(f"skipped duplicate: {twin.path} has the same content as image "
                       f"{twin.image_id} ({twin.existing_path}); --allow-duplicates adds it anyway",
                       err=True)
        click.echo(f"{len(batch.added)} image record(s) in {project} now total "
                   f"{len(p.images())}" + (f"; {len(batch.failed)} file(s) not added (see "
                                            "above)" if batch.failed else ""))


@project_group.command("stats")
@_project_arg
@click.option("--json", "as_json", is_flag=True, help="Print the full statistics as JSON.")
def stats_command(project: str | Path, as_json: bool) -> None:
    """Review statistics: images by state, candidates per class/branch, agreement."""
    with _errors(), _open(project) as p:
        stats = p.stats()
    if as_json:
        _echo_json(stats)
        return
    click.echo("images: " + ", ".join(f"{k} {v}" for k, v in stats["images"]["by_state"].items()))
    click.echo(f"annotations: {stats['annotations']['total']} "
               f"({', '.join(f'{k} {v}' for k, v in stats['annotations']['by_class'].items())})")
    for key in ("by_class", "by_branch"):
        for name, c in stats["candidates"][key].items():
            click.echo(f"candidates {key[3:]} {name}: accepted {c['accepted']}, rejected "
                       f"{c['rejected']}, proposed {c['proposed']}")
    overall = stats["agreement"]["overall"]
    if overall["count"]:
        click.echo(f"agreement (IoU accepted vs candidate): mean {overall['mean']:.3f} over "
                   f"{overall['count']}")
    _echo_effort(stats["effort"])
    _echo_agreement(stats["consensus"], stats["honeypots"])


def _echo_agreement(consensus: dict[str, Any], honeypots: dict[str, Any]) -> None:
    """Agreement between annotators per class, and each annotator's honeypot accuracy."""
    def fmt(row: dict[str, Any]) -> str:
        f1 = "-" if row["f1"] is None else f"{row['f1']:.2f}"
        iou = "-" if row["pixel_iou"] is None else f"{row['pixel_iou']:.2f}"
        return f"F1 {f1}, pixel IoU {iou} ({row['images']} image(s))"

    if consensus["images"]:
        click.echo(f"agreement between annotators on {consensus['images']} consensus image(s) "
                   f"(instances matched at IoU >= {consensus['match_iou']}):")
        for name, row in consensus["by_class"].items():
            click.echo(f"  {name}: {fmt(row)}")
        for pair, row in consensus["by_pair"].items():
            click.echo(f"  {pair.replace('|', ' vs ')}: {fmt(row)}")
    for name, row in honeypots["by_annotator"].items():
        click.echo(f"honeypot accuracy of {name}: {fmt(row)}")


def _echo_effort(rows: list[dict[str, Any]]) -> None:
    """The effort table: per class, how accepted objects were made and what they cost."""
    def fmt(value: float | None, unit: str) -> str:
        return "-" if value is None else f"{value:.1f}{unit}"

    click.echo("effort per class: accepted unchanged / corrected / drawn, median seconds and "
               "actions per object")
    for r in rows:
        click.echo(f"  {r['class_name']}: {r['accepted_unchanged']} / {r['corrected']} / "
                   f"{r['drawn']}, {fmt(r['median_seconds_per_object'], ' s')}, "
                   f"{fmt(r['median_actions_per_object'], ' actions')}")


def _exporter(fmt: str) -> Callable[..., Any]:
    from text2seg_widgets import export

    table: dict[str, Callable[..., Any]] = {"coco": export.export_coco, "semantic": export.export_semantic,
            "chips": export.export_chips, "vectors": export.export_vectors,
            "yolo-seg": export.export_yolo_seg, "stats": export.export_review_stats}
    return table[fmt]


@project_group.command("export")
@_project_arg
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["coco", "semantic", "chips", "vectors",
                                                    "yolo-seg", "stats"]),
              default="coco", show_default=True)
@click.option("--overwrite", is_flag=True, help="Replace a previous export at OUT.")
@click.option("--state", "--states", "states", multiple=True,
              help="Export images in these review states: repeat the option or give a comma "
                   "list, e.g. --states 'done,in progress' (default: done, i.e. fully reviewed; "
                   "'all' for every image; 'approved': done and approved by a reviewer, in a "
                   "team project). The manifest lists each image left out and why.")
@click.option("--polygons", is_flag=True, help="COCO: polygons instead of RLE (RLE for holes).")
@click.option("--candidates", is_flag=True, help="COCO: also write unreviewed candidates.")
@click.option("--images", "images", type=click.Choice(["copy", "link", "none"]), default="copy",
              show_default=True,
              help="COCO, semantic, yolo-seg: copy the images into OUT/images (windows of big scenes "
                   "written as files, GeoTIFF kept georeferenced), symlink whole files, or leave "
                   "them out (COCO file_name relative to OUT).")
@click.option("--unlabelled", type=click.Choice(["ignore", "background"]), default="ignore",
              show_default=True,
              help="Semantic, chips: pixels no annotation covers are 255 (ignore), or 0 "
                   "(background) in images marked done (the annotator saw the whole image).")
@click.option("--size", type=int, default=512, show_default=True, help="Chips: chip size.")
@click.option("--stride", type=int, default=None, help="Chips: step (default: the size).")
@click.option("--split-by", type=click.Choice(["image", "block"]), default="image",
              show_default=True, help="Chips: split unit.")
@click.option("--seed", type=int, default=0, show_default=True, help="Chips, yolo-seg: split seed.")
def export_command(project: str | Path, out: Path, fmt: str, overwrite: bool, states: tuple[str, ...],
                   polygons: bool, candidates: bool, images: str, unlabelled: str, size: int,
                   stride: int | None, split_by: str, seed: int) -> None:
    """Export the project to OUT (a folder, written atomically)."""
    kwargs: dict[str, Any] = {"overwrite": overwrite}
    if fmt != "stats":
        wanted = [s.strip() for item in states for s in item.split(",") if s.strip()]
        if "all" in wanted:
            kwargs["states"] = None
        elif wanted:
            kwargs["states"] = wanted
    if fmt == "coco":
        kwargs |= {"polygons": polygons, "include_candidates": candidates, "images": images}
    if fmt == "semantic":
        kwargs |= {"images": images, "unlabelled": unlabelled}
    if fmt == "yolo-seg":
        kwargs |= {"images": images, "seed": seed}
    if fmt == "chips":
        kwargs |= {"size": size, "stride": stride, "split_by": split_by, "seed": seed,
                   "unlabelled": unlabelled}
    with _errors(), _open(project) as p:
        result = _exporter(fmt)(p, out, **kwargs)
    counts = result.get("counts", result.get("images")) if isinstance(result, dict) else result
    click.echo(f"{fmt} export written to {out}: {json.dumps(counts)}")


@project_group.command("import-coco")
@_project_arg
@click.argument("coco_file", type=click.Path(path_type=Path))
@click.option("--as", "as_", type=click.Choice(["annotations", "candidates"]),
              default="annotations", show_default=True)
@click.option("--image-root", type=click.Path(path_type=Path), default=None,
              help="Folder the COCO file_name paths are relative to (default: the file's).")
@click.option("--add-classes", is_flag=True, help="Add COCO categories missing in the project.")
def import_coco_command(project: str | Path, coco_file: Path, as_: str, image_root: Path | None,
                        add_classes: bool) -> None:
    """Import a COCO instances file as annotations or as candidates to review."""
    from text2seg_widgets.export import import_coco

    with _errors(), _open(project) as p:
        counts = import_coco(p, coco_file, as_=as_, image_root=image_root,
                             add_classes=add_classes)
    click.echo(f"imported {counts['imported']} {as_} on {counts['images']} image(s); "
               f"{counts['skipped_no_mask']} without a mask skipped")


@project_group.command("relink")
@_project_arg
@click.argument("image_id", type=int, required=False)
@click.argument("new_path", type=click.Path(path_type=Path), required=False)
@click.option("--search", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Relink every missing image to a file of the same name under this folder.")
@click.option("--no-check", is_flag=True, help="Accept a file whose bytes differ.")
def relink_command(project: str | Path, image_id: int | None, new_path: Path | None,
                   search: Path | None, no_check: bool) -> None:
    """Point moved images at their new place (one by id, or all found under --search)."""
    with _errors(), _open(project) as p:
        if image_id is not None and new_path is not None:
            p.relink(image_id, new_path, check=not no_check)
            click.echo(f"image {image_id} -> {new_path}")
            return
        missing = p.missing_images()
        if search is None:
            for rec in missing:
                click.echo(f"missing: image {rec.id} {rec.path}")
            click.echo(f"{len(missing)} missing image(s); relink with IMAGE_ID NEW_PATH or "
                       "--search FOLDER")
            return
        found = {f.name: f for f in search.rglob("*") if f.is_file()}
        for rec in missing:
            candidate = found.get(Path(rec.path).name)
            if candidate is not None:
                p.relink(rec.id, candidate, check=not no_check)
                click.echo(f"image {rec.id} -> {candidate}")
        click.echo(f"{len(p.missing_images())} image(s) still missing")


@project_group.command("backup")
@_project_arg
@click.option("--dest", type=click.Path(path_type=Path), default=None,
              help="Backup file or folder (default: PROJECT/backups/backup-<time>.sqlite).")
@click.option("--keep-auto", type=int, default=None,
              help="Also set how many automatic backups are kept (0 turns them off).")
def backup_command(project: str | Path, dest: Path | None, keep_auto: int | None) -> None:
    """Back up the project database (safe while it is open elsewhere)."""
    with _errors(), _open(project) as p:
        if keep_auto is not None:
            p.keep_backups = keep_auto
        path = p.backup(dest)
        click.echo(f"backup written to {path} ({len(p.backups())} backup(s) in "
                   f"{p.backups_folder}; automatic ones kept: {p.keep_backups})")


@project_group.group("classes")
def classes_group() -> None:
    """List, rename or remove the project's classes (e.g. a badly named class from a COCO import)."""


@classes_group.command("list")
@_project_arg
def classes_list_command(project: str | Path) -> None:
    """Each class: id, name, colour and prompts."""
    with _errors(), _open(project) as p:
        for c in p.classes:
            click.echo(f"{c.id}\t{c.name!r}\t{c.color}\t{', '.join(c.prompts)}")


@classes_group.command("rename")
@_project_arg
@click.argument("old")
@click.argument("new")
def classes_rename_command(project: str | Path, old: str, new: str) -> None:
    """Rename class OLD (its name or id) to NEW; annotations keep their class. Undoable."""
    with _errors(), _open(project) as p:
        key: str | int = int(old) if old.isdigit() and not any(c.name == old for c in p.classes) else old
        info = p.update_class(key, name=new)
    click.echo(f"class {old!r} is now {info.name!r}")


@classes_group.command("remove")
@_project_arg
@click.argument("name")
@click.option("--cascade", is_flag=True, help="Also delete the annotations of this class.")
def classes_remove_command(project: str | Path, name: str, cascade: bool) -> None:
    """Remove class NAME (or id) and its unreviewed candidates; an automatic backup is taken first.
    Refused while annotations use it, unless --cascade."""
    with _errors(), _open(project) as p:
        key: str | int = int(name) if name.isdigit() and not any(c.name == name for c in p.classes) else name
        try:
            p.remove_class(key, cascade=cascade)
        except InputError as exc:
            raise InputError(str(exc).replace("pass cascade=True", "pass --cascade")) from exc
    click.echo(f"class {name!r} removed")


@project_group.command("restore")
@_project_arg
@click.argument("backup", type=click.Path(dir_okay=False, path_type=Path), required=False)
@click.option("--list", "list_only", is_flag=True,
              help="Only list the backups and the databases earlier restores set aside.")
@click.option("--force", is_flag=True, help="Restore a backup of another project.")
@click.option("--yes", is_flag=True,
              help="Restore even though the backup holds less work than the project.")
def restore_command(project: str | Path, backup: Path | None, list_only: bool, force: bool,
                    yes: bool) -> None:
    """Replace the project database with BACKUP (default: the newest one in PROJECT/backups).
    Refused while the project is open anywhere; the current database is always kept aside."""
    from text2seg_widgets.store.backup import list_backups, list_set_aside, restore_backup

    if isinstance(project, str):
        raise click.ClickException(
            "a team project is not restored in place: copy the backup into a new database with "
            "`text2seg-widgets project copy BACKUP.sqlite postgresql://.../NEW_DB` (with the same "
            "--image-root), check it, then point the team at it")
    if list_only:
        for path in list_backups(project):
            click.echo(f"backup: {path}")
        for path in list_set_aside(project):
            click.echo(f"set aside by a restore: {path}")
        return
    with _errors():
        result = restore_backup(project, backup, force=force, yes=yes)
    click.echo(f"restored {project} from {result.backup} ({result.changes()}); the previous "
               f"database was kept as {result.set_aside}")


@project_group.group("members")
def members_group() -> None:
    """People of a team project and their roles (annotator, reviewer, manager)."""


@members_group.command("list")
@_project_arg
def members_list_command(project: str | Path) -> None:
    """List the members and their roles (none: everyone may do everything)."""
    with _errors(), _open(project) as p:
        members = p.members()
    if not members:
        click.echo("no members: roles are not checked in this project")
    for name, role in members.items():
        click.echo(f"{name}: {role}")


@members_group.command("add")
@_project_arg
@click.argument("name")
@click.option("--role", type=click.Choice(["annotator", "reviewer", "manager"]),
              default="annotator", show_default=True)
def members_add_command(project: str | Path, name: str, role: str) -> None:
    """Add NAME (their login or TEXT2SEG_USER) with a role, or change their role. The first
    member must be a manager; after that only managers add people."""
    with _errors(), _open(project) as p:
        p.set_member(name, role)
    click.echo(f"{name}: {role}")


@members_group.command("remove")
@_project_arg
@click.argument("name")
def members_remove_command(project: str | Path, name: str) -> None:
    """Remove NAME from the project (their work stays; their leases end)."""
    with _errors(), _open(project) as p:
        p.remove_member(name)
    click.echo(f"removed {name}")


@project_group.command("assign")
@_project_arg
@click.option("--annotators", required=True, help="Comma list of members, e.g. anna,ben,carl.")
@click.option("--overlap", type=float, default=0.0, show_default=True,
              help="Share of the images labelled independently by two annotators (consensus), "
                   "to measure agreement, e.g. 0.1.")
@click.option("--honeypots", type=int, default=0, show_default=True,
              help="Finished images with imported ground truth mixed into each annotator's work.")
def assign_command(project: str | Path, annotators: str, overlap: float, honeypots: int) -> None:
    """Spread the images that need work and are assigned to nobody over ANNOTATORS, balanced.
    Images nobody is assigned stay in a pool that Next hands out (with a lease)."""
    names = [a.strip() for a in annotators.split(",") if a.strip()]
    with _errors(), _open(project) as p:
        spread = p.assign(names, overlap=overlap, honeypots=honeypots)
    for name, ids in spread.items():
        click.echo(f"{name}: {len(ids)} new image(s)")


@project_group.command("next")
@_project_arg
def next_command(project: str | Path) -> None:
    """Lease and print your next image (id, file, and the reviewer's note if it came back)."""
    with _errors(), _open(project) as p:
        rec = p.next_assigned()
    if rec is None:
        click.echo("no work left for you")
        return
    note = f"  returned: {rec.review_note}" if rec.review == "returned" else ""
    click.echo(f"{rec.id}\t{rec.path}{note}")


@project_group.command("review")
@_project_arg
@click.argument("image_id", type=int, required=False)
@click.option("--approve", "verdict", flag_value="approve", help="Approve IMAGE_ID.")
@click.option("--return", "verdict", flag_value="return",
              help="Return IMAGE_ID to its annotator (with --comment).")
@click.option("--comment", default="", help="What to fix (required with --return).")
@click.option("--merge", "verdict", flag_value="merge",
              help="A consensus image: merge the annotators' masks into it.")
@click.option("--pick", default=None, help="A consensus image: take this annotator's masks.")
def review_command(project: str | Path, image_id: int | None, verdict: str | None,
                   comment: str, pick: str | None) -> None:
    """Without IMAGE_ID: list the images waiting for review (and consensus images ready to
    resolve). With it: --approve or --return; for a consensus image --merge or --pick NAME."""
    with _errors(), _open(project) as p:
        if image_id is None:
            queue = p.review_queue()
            for rec in queue:
                click.echo(f"{rec.id}\t{rec.name}\tfinished by {rec.state_user} at {rec.state_at}")
            ready = p.agreement_measures.to_resolve()
            for image_id, names in ready.items():
                click.echo(f"{image_id}\tconsensus ready to resolve: {', '.join(names)}")
            if not queue and not ready:
                click.echo("nothing waits for review")
            return
        if pick is not None or verdict == "merge":
            n = p.resolve_consensus(image_id, pick=pick)
            click.echo(f"image {image_id}: {n} mask(s) from "
                       f"{pick if pick else 'every annotator (merged)'}; done and approved")
            return
        if verdict is None:
            raise click.UsageError("give --approve, --return, --merge or --pick NAME")
        if verdict == "approve":
            p.approve_image(image_id, comment)
        else:
            p.return_image(image_id, comment)
    click.echo(f"image {image_id}: {'approved' if verdict == 'approve' else 'returned'}")


@project_group.command("copy")
@click.argument("source", type=PROJECT_LOCATION)
@click.argument("destination", type=PROJECT_LOCATION)
@click.option("--source-image-root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where SOURCE's relative image paths start, when it is a team project or a "
                   "backup of one and its root differs from --image-root on this machine.")
def copy_command(source: str | Path, destination: str | Path,
                 source_image_root: Path | None) -> None:
    """Copy a whole project (classes, images, candidates, annotations, history, runs, effort)
    between SQLite and PostgreSQL, either way: SOURCE a folder, a postgresql:// URL or a backup
    file; DESTINATION a new folder or the URL of a new (or empty) database. Image paths are
    re-rooted (the destination's root is --image-root / TEXT2SEG_IMAGE_ROOT for team projects)."""
    from text2seg_widgets.store.projectcopy import copy_project

    with _errors():
        report = copy_project(source, destination, source_image_root=source_image_root)
    click.echo(report.summary())


COMMANDS = [project_group]
