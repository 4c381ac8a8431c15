"""A reader thread that opens, reads and stretches the next tiles while the models compute.

Raster reads and decoding (rasterio/GDAL, PNG/JPEG decoders) release the GIL, so one background
thread keeps the next ``depth`` tiles ready while the current one runs through the models.
Items come out in job order; a job that cannot be read yields one :class:`JobFailed` instead of
its tiles, and the reader moves on to the next job. With ``claim``, each job is claimed just before
it is read, and one that cannot be claimed is passed over (``passed_over``).
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

from text2seg_widgets.core.workers import Worker
from text2seg_widgets.engines.settings import BatchSettings
from text2seg_widgets.engines.work import ImageJob, TileInput, read_tiles

__all__ = ["TilePrefetcher", "JobFailed"]

log = logging.getLogger(__name__)

_END = object()


@dataclass
class JobFailed:
    """A job whose tiles could not be read, with the reason."""

    job: ImageJob
    error: str


class TilePrefetcher:
    """Iterate over :class:`TileInput` (and :class:`JobFailed`) items read ahead in a thread.

    Use as a context manager (or call :meth:`close`) so an interrupted consumer stops the reader.
    The reader is a :class:`~text2seg_widgets.core.workers.Worker` (non-daemon, joined by ``close``).
    """

    def __init__(self, jobs: Iterable[ImageJob], settings: BatchSettings, depth: int | None = None,
                 claim: Callable[[ImageJob], bool] | None = None) -> None:
        self.jobs = list(jobs)
        self.settings = settings
        self.claim = claim
        #: jobs passed over because ``claim`` said no (another process has them, or they are done)
        self.passed_over: list[ImageJob] = []
        self._queue: queue.Queue = queue.Queue(maxsize=max(1, int(depth or settings.prefetch)))
        self._worker = Worker(self._produce, name="text2seg-tile-reader")
        self._worker.start()

    def _put(self, item: object) -> bool:
        while not self._worker.stopping:
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, stop: threading.Event) -> None:
        try:
            for job in self.jobs:
                if self.claim is not None and not self.claim(job):
                    self.passed_over.append(job)
                    continue
                try:
                    for item in read_tiles(job, self.settings):
                        if not self._put(item):
                            return
                except Exception as exc:  # noqa: BLE001 - one bad image must not stop the run
                    log.warning("image %d (%s) could not be read: %s", job.image_id, job.path, exc)
                    if not self._put(JobFailed(job, f"{type(exc).__name__}: {exc}")):
                        return
        finally:
            self._put(_END)

    def __iter__(self) -> Iterator[TileInput | JobFailed]:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            yield item

    def get_nowait(self) -> TileInput | JobFailed | None:
        """The next item if one is ready now (None if not, or at the end: the end stays queued)."""
        try:
            item = self._queue.get_nowait()
        except queue.Empty:
            return None
        if item is _END:
            self._queue.put(_END)
            return None
        return item

    def close(self) -> None:
        self._worker.stop()
        while self._worker.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._worker.join()

    def __enter__(self) -> "TilePrefetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
