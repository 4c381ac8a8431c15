"""Run bookkeeping shared by the engines: which images, which run, what is done, where results go.

* :func:`select_jobs` picks the project images (all, or the ids given) and checks their files.
* :func:`ensure_classes` adds the run's classes to the project (candidates must name a class).
* :func:`open_run` continues the latest run with the same settings fingerprint (or the run given
  with ``resume``), or starts a new one; images marked processed in it are skipped.
* :func:`store_result` writes an image's candidates and marks it processed in ONE transaction, so
  a run killed at any moment leaves each image either fully stored or not at all.
* :class:`RunLog` keeps ``runs/run-<id>/manifest.json`` and ``images.jsonl`` (per image: tiles,
  candidates, seconds, the stretch used, or the error) in the project folder.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from text2seg_widgets.engines.work import ImageJob, ImageResult
from text2seg_widgets.errors import InputError
from text2seg_widgets.pipeline.classes import ClassSet
from text2seg_widgets.store import Project

__all__ = ["select_jobs", "ensure_classes", "classes_from_project", "open_run", "store_result", "RunLog",
           "RunReport", "PreparedRun", "prepare_run", "RunClaims"]

log = logging.getLogger(__name__)


@dataclass
class RunReport:
    """What a batch run did (this invocation; skipped = already processed in the run)."""

    run_id: int
    resumed: bool
    engine: str
    images_total: int
    images_skipped: int = 0
    images_done: int = 0
    failures: dict[int, str] = field(default_factory=dict)
    tiles: int = 0
    tiles_skipped: int = 0
    candidates: int = 0
    seconds: float = 0.0
    log_dir: str = ""
    #: images another process of the same run held (it stores them; they are not done twice)
    images_elsewhere: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in vars(self).items()}


def select_jobs(project: Project, image_ids: Iterable[int] | None = None) -> list[ImageJob]:
    """Jobs for ``image_ids`` (all project images when None), files checked to exist."""
    records = project.images()
    if image_ids is not None:
        wanted = [int(i) for i in image_ids]
        known = {r.id: r for r in records}
        unknown = [i for i in wanted if i not in known]
        if unknown:
            raise InputError(f"image id(s) {unknown} are not in the project; see project.images()")
        records = [known[i] for i in dict.fromkeys(wanted)]
    if not records:
        raise InputError(f"the project {project.location} has no images to pseudo-label; add some: "
                         "`text2seg-widgets pseudo-label PROJECT image1.tif image2.png ...`")
    missing = [r for r in records if not Path(r.path).is_file()]
    if missing:
        listed = ", ".join(f"{r.id}: {r.path}" for r in missing[:5])
        more = f" and {len(missing) - 5} more" if len(missing) > 5 else ""
        raise InputError(f"{len(missing)} image file(s) are missing ({listed}{more}); relink them with "
                         "project.relink(image_id, new_path) or pass only the image ids to process")
    return [ImageJob.from_record(r) for r in records]


def ensure_classes(project: Project, classes: ClassSet) -> None:
    """Add the run's classes (with their prompts) that the project does not have yet."""
    have = {c.name for c in project.classes}
    for spec in classes:
        if spec.name not in have:
            project.add_class(spec.name, prompts=spec.prompts)
            log.info("added class %r to the project", spec.name)


def classes_from_project(project: Project, background: bool = True) -> ClassSet:
    """The project's classes as a :class:`ClassSet` (prompts default to the class name)."""
    infos = project.classes
    if not infos:
        raise InputError(f"the project {project.location} has no classes; give them with --classes "
                         "'building,road' (they are added to the project)")
    return ClassSet.from_names({c.name: list(c.prompts) or [c.name] for c in infos},
                               background=True if background else None)


def _diff(a: dict[str, Any], b: dict[str, Any]) -> list[str]:
    return sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))


def open_run(project: Project, manifest: dict[str, Any], *, resume: int | None = None,
             fresh: bool = False) -> tuple[int, bool]:
    """``(run_id, resumed)``: the run to continue, or a new one started with ``manifest``."""
    runs = project.runs()
    if resume is not None:
        match = [r for r in runs if r["id"] == int(resume)]
        if not match:
            raise InputError(f"no run {resume} in this project; runs: {[r['id'] for r in runs] or 'none'}")
        old = match[0]["manifest"]
        if old.get("fingerprint") != manifest["fingerprint"]:
            changed = _diff(old.get("settings", {}), manifest["settings"]) or ["weights"]
            raise InputError(f"run {resume} was made with other settings (differences: {', '.join(changed)}); "
                             "rerun with the same classes, models, branches and tiling, or drop --resume")
        return int(resume), True
    if not fresh:  # decided in one transaction: two runs started at once join one run
        return project.join_or_start_run(manifest)
    return project.start_run(manifest), False


def store_result(project: Project, run_id: int, result: ImageResult, *, replace: bool = False) -> list[int]:
    """Candidates of one image plus its processed mark, in one transaction."""
    return project.add_candidates(result.job.image_id, result.candidates, run_id, replace=replace,
                                  mark_processed=True)


class RunLog:
    """``<project>/runs/run-<id>/``: ``manifest.json`` (the first one) and ``images.jsonl``."""

    def __init__(self, project: Project, run_id: int) -> None:
        self.folder = Path(project.folder) / "runs" / f"run-{int(run_id)}"
        self.folder.mkdir(parents=True, exist_ok=True)

    def write_manifest(self, manifest: dict[str, Any]) -> Path:
        path = self.folder / "manifest.json"
        if not path.exists():
            path.write_text(json.dumps(manifest, indent=2, sort_keys=True, default=str))
        return path

    def append(self, result: ImageResult, **extra: Any) -> None:
        with (self.folder / "images.jsonl").open("a") as fh:
            fh.write(json.dumps({**result.log_record(), **extra}, default=str) + "\n")


class RunClaims:
    """The images this process works on in a run, claimed so that concurrent processes of the same
    run (two ``pseudo-label`` commands, a notebook and a batch job) share the images and never
    segment one twice (:mod:`text2seg_widgets.store.claims`). Claims are renewed while the run
    works and released when each image is stored (and all of them by :meth:`close`)."""

    RENEW_EVERY_S = 60.0

    def __init__(self, project: Project, run_id: int) -> None:
        from text2seg_widgets.store.claims import new_holder

        self.project, self.run_id = project, int(run_id)
        self.kind = f"pseudo-label:{self.run_id}"
        self.holder = new_holder()
        self._renewed = time.monotonic()

    def take(self, job: ImageJob) -> bool:
        """Claim ``job``'s image; False when it is done in this run or another process has it."""
        taken = self.project.claims.take(job.image_id, self.kind, self.holder,
                                         unless_processed_in=self.run_id)
        if not taken:
            log.info("image %d: done or held by another process of run %d; skipped",
                     job.image_id, self.run_id)
        return taken

    def done(self, job: ImageJob) -> None:
        """The image is stored (or failed): release it, and renew the others when it is time."""
        self.project.claims.release(job.image_id, self.kind, self.holder)
        if time.monotonic() - self._renewed > self.RENEW_EVERY_S:
            self.project.claims.renew(self.holder)
            self._renewed = time.monotonic()

    def close(self) -> None:
        self.project.claims.release_all(self.holder)


@dataclass
class PreparedRun:
    """A run ready to process: its id, its log, the images still to do, and its report."""

    run_id: int
    log: RunLog
    pending: list[ImageJob]
    report: RunReport


def prepare_run(project: Project, jobs: list[ImageJob], manifest: dict[str, Any], classes: ClassSet,
                engine: str, *, resume: int | None = None, fresh: bool = False) -> PreparedRun:
    """Classes added, the run opened (continued or new), its manifest written, done images left out."""
    run_id, resumed = open_run(project, manifest, resume=resume, fresh=fresh)
    ensure_classes(project, classes)
    run_log = RunLog(project, run_id)
    run_log.write_manifest(manifest)
    done = project.processed_images(run_id)
    pending = [j for j in jobs if j.image_id not in done]
    report = RunReport(run_id, resumed, engine, len(jobs), len(jobs) - len(pending), log_dir=str(run_log.folder))
    if resumed:
        log.info("continuing run %d: %d of %d images already processed", run_id, report.images_skipped, len(jobs))
    return PreparedRun(run_id, run_log, pending, report)
