"""The default engine: every image of a project through the pipeline in this process.

>>> settings = BatchSettings(ClassSet.parse("building,road"), models="tiny")   # doctest: +SKIP
>>> report = LocalEngine(settings).run(Project.open("my-project"))            # doctest: +SKIP

Models are loaded once per engine. A reader thread (:class:`.prefetch.TilePrefetcher`) opens,
reads and stretches the next tiles while the current one runs through the models; tiles go
through the pipeline in inference mode (autocast on CUDA), ``tile_batch`` at a time when the
segmenter can encode a batch (:mod:`.batching`). Each finished image is stored with its
processed mark in one transaction (:func:`.runs.store_result`), so the run is resumable: started
again with the same settings it continues the same run and skips every image already stored.

An image that cannot be read is recorded as failed (``RunReport.failures`` and the run log) and
the run goes on; it is retried by the next run. Errors inside the models stop the run (they are
rarely specific to one image); what was stored stays stored.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any, Iterable

from tqdm import tqdm

from text2seg_widgets.engines.manifest import build_manifest
from text2seg_widgets.engines.prefetch import JobFailed, TilePrefetcher
from text2seg_widgets.engines.runs import (PreparedRun, RunClaims, RunReport, prepare_run, select_jobs,
                                           store_result)
from text2seg_widgets.engines.settings import BatchSettings
from text2seg_widgets.engines.work import ImageAssembler, ImageResult, TileInput, TileRunner, plan_tiles
from text2seg_widgets.models.modelset import ModelSet
from text2seg_widgets.store import Project

__all__ = ["LocalEngine"]

log = logging.getLogger(__name__)


class LocalEngine:
    """Batch pseudo-labelling in this process.

    Args:
        settings: what to run (classes, models, thresholds, tiling...).
        models: an already loaded :class:`ModelSet` (else loaded from ``settings.models`` on
            first use, once).
        progress: show a tqdm bar (tiles, with images done and the ETA) on stderr.
    """

    name = "local"

    def __init__(self, settings: BatchSettings, models: ModelSet | None = None, *, progress: bool = True) -> None:
        self.settings = settings
        self._models = models
        self._runner: TileRunner | None = None
        self.progress = progress

    @property
    def runner(self) -> TileRunner:
        """The pipeline (and its models), built on first use and kept."""
        if self._runner is None:
            from text2seg_widgets.pipeline.pipeline import Text2SegPipeline

            s = self.settings
            if self._models is None:
                from text2seg_widgets.models.factory import load_models

                self._models = load_models(s.models, device=s.device, dtype=s.dtype)
            self._runner = TileRunner(Text2SegPipeline(self._models, s.classes, s.config), s)
        return self._runner

    def manifest(self) -> dict[str, Any]:
        runner = self.runner
        return build_manifest(self.settings, runner.pipeline.models, engine=self.name, device=str(runner.device),
                              dtype=None if runner.dtype is None else str(runner.dtype),
                              branches=runner.pipeline.branches)

    def run(self, project: Project, image_ids: Iterable[int] | None = None, *, resume: int | None = None,
            fresh: bool = False) -> RunReport:
        """Pseudo-label ``image_ids`` (default: every project image) into ``project``.

        ``resume``: continue that run (its settings must match); ``fresh``: start a new run even
        if one with the same settings exists (its images are then processed again)."""
        start = time.perf_counter()
        jobs = select_jobs(project, image_ids)
        run = prepare_run(project, jobs, self.manifest(), self.settings.classes, self.name, resume=resume,
                          fresh=fresh)
        if run.pending:
            self._process(project, run)
        project.finish_run(run.run_id)
        run.report.seconds = time.perf_counter() - start
        return run.report

    def _process(self, project: Project, run: PreparedRun) -> None:
        runner, s = self.runner, self.settings
        jobs, run_id, run_log, report = run.pending, run.run_id, run.log, run.report
        total_tiles = sum(len(plan_tiles(j, s)) for j in jobs)
        bar = tqdm(total=total_tiles, unit="tile", file=sys.stderr, disable=not self.progress,
                   desc=f"run {run_id}", dynamic_ncols=True)
        open_images: dict[int, ImageAssembler] = {}
        calls_before, skipped_before = runner.calls, runner.skipped
        claims = RunClaims(project, run_id)

        def finish(result: ImageResult) -> None:
            claims.done(result.job)
            if result.error is None:
                store_result(project, run_id, result, replace=s.replace)
                report.images_done += 1
                report.candidates += len(result.candidates)
            else:
                open_images.pop(result.job.image_id, None)  # tiles read before the error
                report.failures[result.job.image_id] = result.error
            run_log.append(result, run_id=run_id)
            bar.set_postfix_str(f"images {report.images_done + len(report.failures)}/{len(jobs)}")

        try:
            with TilePrefetcher(jobs, s, depth=max(s.prefetch, 2 * s.tile_batch), claim=claims.take) as reader:
                for batch in _batches(reader, s.tile_batch, finish):
                    for result in runner.run(batch):
                        job = result.input.key
                        assembler = open_images.setdefault(
                            job.image_id, ImageAssembler(job, result.input.n_tiles, s.classes.names))
                        assembler.add(result)
                        bar.update(1)
                        if assembler.complete:
                            finish(open_images.pop(job.image_id).result())
            report.images_elsewhere += len(reader.passed_over)
        finally:
            claims.close()
            bar.close()
            report.tiles += runner.calls - calls_before + runner.skipped - skipped_before
            report.tiles_skipped += runner.skipped - skipped_before


def _batches(reader: TilePrefetcher, size: int, on_failed: Any) -> Any:
    """Lists of up to ``size`` tiles: the next tile, plus whatever else the reader has ready."""
    for first in reader:
        if isinstance(first, JobFailed):
            on_failed(ImageResult(first.job, error=first.error))
            continue
        batch: list[TileInput] = [first]
        while len(batch) < size:
            nxt = reader.get_nowait()
            if nxt is None:
                break
            if isinstance(nxt, JobFailed):
                on_failed(ImageResult(nxt.job, error=nxt.error))
                continue
            batch.append(nxt)
        yield batch
