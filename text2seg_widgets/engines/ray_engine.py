"""``--engine ray``: the same batch work on Ray Data, one model replica per actor.

The driver (this process) picks the images and the run exactly like the local engine, then
hands Ray Data one row per image (scene-level parallelism). An actor pool runs
:class:`SceneWorker`: each actor loads the models once (one replica per GPU, or per
``cpus_per_worker`` CPUs) and segments whole scenes with the local engine's tile code, retrying
a failed scene ``max_retries`` times before returning the error as its result. Results stream
back to the driver, which is the single writer of the project database (SQLite has one writer):
each scene's candidates and its processed mark are stored in one transaction, so the run is
resumable exactly like a local one (and a run may be resumed by either engine).

``address=None`` starts (or joins the already started) local Ray instance; ``"host:port"`` or
``"ray://host:port"`` joins a cluster, after a quick check that the address answers. On a
cluster every worker must be able to read the image paths (shared storage).

On a machine with few CPUs an actor that claims whole CPUs starves the tasks that feed it and
the run hangs; the default ``cpus_per_worker`` leaves one CPU free ((CPUs - 1) / workers, at
least 0.25).
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, Iterable

import numpy as np
from tqdm import tqdm

from text2seg_widgets.engines.manifest import build_manifest, described_models
from text2seg_widgets.engines.ray_cluster import check_address, init_local, worker_resources
from text2seg_widgets.engines.runs import (PreparedRun, RunClaims, RunReport, prepare_run, select_jobs,
                                           store_result)
from text2seg_widgets.engines.settings import BatchSettings
from text2seg_widgets.engines.work import ImageJob, ImageResult, plan_tiles
from text2seg_widgets.errors import InputError, require
from text2seg_widgets.core import Candidate
from text2seg_widgets.store import Project

__all__ = ["RayEngine", "SceneWorker", "check_address", "worker_resources", "init_local"]

log = logging.getLogger(__name__)


class SceneWorker:
    """The Ray Data callable class: models loaded once per actor, one scene per row."""

    def __init__(self, settings: dict[str, Any], max_retries: int = 2, threads: int | None = None) -> None:
        import torch

        from text2seg_widgets.engines.work import TileRunner
        from text2seg_widgets.models.factory import load_models
        from text2seg_widgets.pipeline.pipeline import Text2SegPipeline

        if threads:
            torch.set_num_threads(int(threads))
        self.settings = BatchSettings.from_dict(settings)
        s = self.settings
        models = load_models(s.models, device=s.device, dtype=s.dtype)
        self.runner = TileRunner(Text2SegPipeline(models, s.classes, s.config), s)
        self.max_retries = int(max_retries)

    def _segment(self, job: ImageJob) -> ImageResult:
        from text2seg_widgets.engines.work import segment_job

        error = ""
        for attempt in range(1, self.max_retries + 2):
            try:
                result = segment_job(self.runner, job, self.settings)
                result.attempts = attempt
                return result
            except Exception as exc:  # noqa: BLE001 - recorded, and the scene is retried
                error = f"{type(exc).__name__}: {exc}"
                log.warning("image %d failed (attempt %d of %d): %s", job.image_id, attempt,
                            self.max_retries + 1, error)
        return ImageResult(job, error=error, attempts=self.max_retries + 1)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        results = [self._segment(ImageJob.from_dict(json.loads(str(text)))) for text in batch["job"]]
        return {"result": np.array([json.dumps(_result_to_dict(r)) for r in results], dtype=object)}


def _result_to_dict(result: ImageResult) -> dict[str, Any]:
    return {"job": result.job.to_dict(), "candidates": [c.to_dict() for c in result.candidates],
            "tiles": result.tiles, "seconds": result.seconds, "stretch": result.stretch,
            "error": result.error, "attempts": result.attempts}


def _result_from_dict(data: dict[str, Any]) -> ImageResult:
    return ImageResult(ImageJob.from_dict(data["job"]), [Candidate.from_dict(c) for c in data["candidates"]],
                       int(data["tiles"]), float(data["seconds"]), data["stretch"], data["error"],
                       int(data["attempts"]))


class RayEngine:
    """Batch pseudo-labelling on Ray Data (see the module docs).

    Args:
        settings: what to run.
        workers: actors (model replicas); default one per GPU, else one per 4 CPUs.
        address: a Ray cluster (``host:port``, ``ray://host:port``, ``auto``); None = local.
        cpus_per_worker, gpus_per_worker: override the actor resources.
        max_retries: extra attempts for a scene that raised before it is recorded as failed.
        progress: show a tqdm bar on stderr.
    """

    name = "ray"

    def __init__(self, settings: BatchSettings, *, workers: int | None = None, address: str | None = None,
                 cpus_per_worker: float | None = None, gpus_per_worker: float | None = None,
                 max_retries: int = 2, progress: bool = True, connect_timeout: float = 3.0) -> None:
        if workers is not None and int(workers) < 1:
            raise InputError(f"workers must be at least 1, got {workers}")
        if max_retries < 0:
            raise InputError("max_retries must be 0 or more")
        self.settings = settings
        self.workers, self.address = workers, address
        self.cpus_per_worker, self.gpus_per_worker = cpus_per_worker, gpus_per_worker
        self.max_retries, self.progress, self.connect_timeout = int(max_retries), progress, connect_timeout

    def connect(self) -> Any:
        """``ray`` initialised: the cluster at ``address``, else the running or a new local instance."""
        ray = require("ray", "ray")
        if self.address:
            check_address(self.address, self.connect_timeout)
        if ray.is_initialized():
            return ray
        if self.address:
            try:
                ray.init(address=self.address, logging_level=logging.WARNING)
            except (ConnectionError, RuntimeError) as exc:
                raise InputError(f"could not join the Ray cluster at {self.address}: {exc}") from exc
        else:
            init_local(ray)
        return ray

    def manifest(self, resources: tuple[int, float, float]) -> dict[str, Any]:
        from text2seg_widgets.pipeline.pipeline import Text2SegPipeline

        s = self.settings
        described = described_models(s.models)
        branches = Text2SegPipeline(described, s.classes, s.config).branches  # fails early on bad branches
        workers, cpus, gpus = resources
        return build_manifest(s, described, engine=self.name, device=s.device, dtype=s.dtype, branches=branches,
                              extra={"ray": {"address": self.address or "local", "workers": workers,
                                             "cpus_per_worker": cpus, "gpus_per_worker": gpus,
                                             "max_retries": self.max_retries}})

    def run(self, project: Project, image_ids: Iterable[int] | None = None, *, resume: int | None = None,
            fresh: bool = False) -> RunReport:
        """Pseudo-label ``image_ids`` (default: all) into ``project``; see :meth:`LocalEngine.run`."""
        start = time.perf_counter()
        jobs = select_jobs(project, image_ids)
        ray = self.connect()
        cluster = ray.cluster_resources()
        resources = worker_resources(float(cluster.get("CPU", 1)), float(cluster.get("GPU", 0)),
                                     self.settings.device, self.workers, self.cpus_per_worker)
        if self.gpus_per_worker is not None:
            resources = (resources[0], resources[1], float(self.gpus_per_worker))
        run = prepare_run(project, jobs, self.manifest(resources), self.settings.classes, self.name,
                          resume=resume, fresh=fresh)
        if run.pending:
            self._process(ray, project, run, resources)
        project.finish_run(run.run_id)
        run.report.seconds = time.perf_counter() - start
        return run.report

    def _dataset(self, ray: Any, jobs: list[ImageJob], resources: tuple[int, float, float]) -> Any:
        workers, cpus, gpus = resources
        rows = [{"job": json.dumps(j.to_dict())} for j in jobs]
        ray.data.DataContext.get_current().enable_progress_bars = False  # ours counts tiles and images
        ds = ray.data.from_items(rows, override_num_blocks=len(rows))
        threads = max(1, int(round(cpus))) if gpus == 0 else None
        return ds.map_batches(SceneWorker, batch_size=1, concurrency=min(workers, len(jobs)),
                              num_cpus=cpus, num_gpus=gpus or None, batch_format="numpy",
                              fn_constructor_kwargs={"settings": self.settings.to_dict(),
                                                     "max_retries": self.max_retries, "threads": threads})

    def _process(self, ray: Any, project: Project, run: PreparedRun, resources: tuple[int, float, float]) -> None:
        s = self.settings
        run_id, report = run.run_id, run.report
        claims = RunClaims(project, run_id)  # claimed up front: the dataset is fixed once built
        jobs = [j for j in run.pending if claims.take(j)]
        report.images_elsewhere += len(run.pending) - len(jobs)
        if not jobs:
            claims.close()
            return
        bar = tqdm(total=sum(len(plan_tiles(j, s)) for j in jobs), unit="tile", file=sys.stderr,
                   disable=not self.progress, desc=f"run {run_id} (ray x{resources[0]})", dynamic_ncols=True)
        try:
            for row in self._dataset(ray, jobs, resources).iter_rows():
                result = _result_from_dict(json.loads(str(row["result"])))
                if result.error is None:
                    store_result(project, run_id, result, replace=s.replace)
                    report.images_done += 1
                    report.candidates += len(result.candidates)
                    report.tiles += result.tiles
                else:
                    report.failures[result.job.image_id] = result.error
                run.log.append(result, run_id=run_id)
                claims.done(result.job)
                bar.update(len(plan_tiles(result.job, s)))
                bar.set_postfix_str(f"images {report.images_done + len(report.failures)}/{len(jobs)}")
        finally:
            claims.close()
            bar.close()
