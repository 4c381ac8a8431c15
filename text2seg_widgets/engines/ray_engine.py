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
import math
import socket
import sys
import time
from typing import Any, Iterable

import numpy as np
from tqdm import tqdm

from text2seg_widgets.engines.manifest import build_manifest, described_models
from text2seg_widgets.engines.runs import PreparedRun, RunReport, prepare_run, select_jobs, store_result
from text2seg_widgets.engines.settings import BatchSettings
from text2seg_widgets.engines.work import ImageJob, ImageResult, plan_tiles
from text2seg_widgets.errors import InputError, require
from text2seg_widgets.core import Candidate
from text2seg_widgets.store import Project

__all__ = ["RayEngine", "SceneWorker", "check_address", "worker_resources", "init_local"]

log = logging.getLogger(__name__)


def check_address(address: str, timeout: float = 3.0) -> None:
    """Raise :class:`InputError` quickly when a ``host:port`` Ray address does not answer
    (``ray.init`` itself would retry for a minute). ``auto`` is left to Ray."""
    if address == "auto":
        return
    target = address.split("://", 1)[-1]
    host, sep, port = target.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise InputError(f"Ray address {address!r} is not host:port (e.g. 10.0.0.5:6379 or "
                         "ray://10.0.0.5:10001); leave --ray-address out to run locally")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout):
            pass
    except OSError as exc:
        raise InputError(f"the Ray cluster at {address} does not answer ({exc}); start it with "
                         "`ray start --head` on that machine, check the address and port, or leave "
                         "--ray-address out to run on this machine") from exc


def worker_resources(total_cpus: float, total_gpus: float, device: str, workers: int | None,
                     cpus_per_worker: float | None = None) -> tuple[int, float, float]:
    """``(workers, cpus, gpus)`` per actor: one actor per GPU when the run uses GPUs, else
    ``workers`` actors sharing all CPUs but one (at least 0.25 CPU each)."""
    use_gpu = device.startswith("cuda") or (device == "auto" and total_gpus >= 1)
    if use_gpu:
        if total_gpus < 1:
            raise InputError(f"device {device!r} asks for a GPU but the Ray cluster has none; use --device cpu")
        n = int(workers or total_gpus)
        return n, float(cpus_per_worker or 1.0), 1.0
    n = int(workers or max(1, int(total_cpus // 4)))
    if n < 1:
        raise InputError(f"workers must be at least 1, got {workers}")
    cpus = cpus_per_worker or max(0.25, math.floor(4 * max(total_cpus - 1, 1) / n) / 4)
    return n, float(cpus), 0.0


def init_local(ray: Any, attempts: int = 2, **options: Any) -> None:
    """``ray.init(**options)`` on this machine; a start that times out (an overloaded machine: Ray
    waits a fixed 30 s for its own processes) is tried once more."""
    for attempt in range(1, attempts + 1):
        try:
            ray.init(logging_level=logging.WARNING, include_dashboard=False, **options)
            return
        except Exception as exc:  # noqa: BLE001 - Ray raises a bare Exception for this
            if "timed out during startup" not in str(exc) or attempt == attempts:
                raise
            log.warning("local Ray did not start in time (%s); trying again", exc)
            ray.shutdown()


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
        jobs, run_id, report = run.pending, run.run_id, run.report
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
                bar.update(len(plan_tiles(result.job, s)))
                bar.set_postfix_str(f"images {report.images_done + len(report.failures)}/{len(jobs)}")
        finally:
            bar.close()
