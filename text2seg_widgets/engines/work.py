"""The unit of batch work: one project image, read tile by tile, its candidates put back together.

The tile loop itself is :mod:`text2seg_widgets.pipeline.tiles` (the same one ``segment`` uses, so
both give identical candidates). This module adapts it to project images: :class:`ImageJob`
(what to segment: a file, or a window of a big scene), :func:`read_tiles` (the job's tiles through
``Scene.to_rgb`` with one stretch per scene file), :class:`TileRunner` (the loop's
:func:`~text2seg_widgets.pipeline.tiles.run_tiles` with the engine's device, dtype and, when
``tile_batch > 1``, the segmenter's batched encoder as the loop's embedding hook) and
:class:`ImageAssembler` (tile results -> candidates in the image's own pixel grid).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

from text2seg_widgets.core import Candidate
from text2seg_widgets.engines.batching import EmbeddingBatcher
from text2seg_widgets.engines.settings import BatchSettings
from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.tiling import Tile
from text2seg_widgets.models.device import resolve_device, resolve_dtype
from text2seg_widgets.pipeline.tiles import (MAX_NODATA_FRACTION, TileAssembler, TileInput, TileResult, open_tiles,
                                             run_tiles, scene_grid)

__all__ = ["ImageJob", "TileInput", "TileResult", "ImageResult", "TileRunner", "ImageAssembler", "plan_tiles",
           "read_tiles", "segment_job", "MAX_NODATA_FRACTION"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ImageJob:
    """One project image: its id, file, size and (for a part of a big scene) its window."""

    image_id: int
    path: str
    width: int
    height: int
    window: tuple[int, int, int, int] | None = None

    @classmethod
    def from_record(cls, record: Any) -> "ImageJob":
        """From a :class:`text2seg_widgets.store.ImageRecord`."""
        win = tuple(int(v) for v in record.window) if record.window else None
        return cls(int(record.id), str(record.path), int(record.width), int(record.height),
                   win)  # type: ignore[arg-type]  # a 4-tuple read from the store

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImageJob":
        win = data.get("window")
        return cls(int(data["image_id"]), str(data["path"]), int(data["width"]), int(data["height"]),
                   tuple(int(v) for v in win) if win is not None and len(win) else None)  # type: ignore[arg-type]  # a 4-tuple from the job dict


@dataclass
class ImageResult:
    """The outcome for one image: its candidates (image pixels), or the error that stopped it."""

    job: ImageJob
    candidates: list[Candidate] = field(default_factory=list)
    tiles: int = 0
    seconds: float = 0.0
    stretch: dict[str, Any] = field(default_factory=dict)
    error: str | None = None
    attempts: int = 1

    def log_record(self) -> dict[str, Any]:
        """The line of the run log (``images.jsonl``) for this image."""
        return {"image_id": self.job.image_id, "path": self.job.path, "tiles": self.tiles,
                "candidates": len(self.candidates), "seconds": round(self.seconds, 3),
                "stretch": self.stretch, "error": self.error, "attempts": self.attempts}


def plan_tiles(job: ImageJob, settings: BatchSettings) -> list[Tile]:
    """The tiles of ``job`` in its own pixel grid (one tile when it is no larger than a tile): the
    grid :func:`read_tiles` works through (:func:`~text2seg_widgets.pipeline.tiles.scene_grid`)."""
    return scene_grid(job.width, job.height, settings.tile_size, settings.overlap)


def read_tiles(job: ImageJob, settings: BatchSettings) -> Iterator[TileInput]:
    """Tiles of ``job`` (``key`` = the job) as the models see them, row-major, read by the one
    tile loop: through ``Scene.to_rgb``, one stretch for the whole scene file."""
    path = Path(job.path)
    if not path.is_file():
        raise InputError(f"image {job.image_id} is missing: {path} does not exist; relink it with "
                         f"project.relink({job.image_id}, new_path) or remove it from the run")
    window = job.window or (0, 0, job.width, job.height)
    window = (window[0], window[1], job.width, job.height)
    try:
        plan = open_tiles(path, window=window, tile_size=settings.tile_size, overlap=settings.overlap,
                          bands=settings.bands, stretch=settings.stretch)
    except InputError as exc:
        if "lies outside" not in str(exc):
            raise
        raise InputError(f"{path} is smaller now than image {job.image_id} of the project ({job.width} x "
                         f"{job.height} at {window[0]},{window[1]}); the file changed since it was added: "
                         "add it again") from exc
    with plan:
        yield from plan.read(key=job)


class TileRunner:
    """Runs the pipeline on tiles with the engine's device and dtype (inference mode, autocast on
    CUDA); when ``tile_batch > 1`` the segmenter's image embeddings for a batch of tiles come from
    one forward pass (:mod:`.batching`, plugged into the loop's embedding hook). ``calls`` counts
    pipeline runs (one per tile that is not mostly nodata); ``skipped`` the tiles left out."""

    def __init__(self, pipeline: Any, settings: BatchSettings) -> None:
        self.pipeline = pipeline
        self.device = resolve_device(settings.device)
        self.dtype = resolve_dtype(settings.dtype, self.device)
        # persistent embedding cache (EMBED helper, models/embedding_cache.py): when one is configured the
        # batcher serves every batch, even of one tile, reading the cache and writing what it encodes,
        # so pseudo-label fills it for the Annotator and later runs at no extra cost
        self.batcher = EmbeddingBatcher.from_env(pipeline.models.segmenter, batched=settings.tile_batch > 1)
        self.calls = 0
        self.skipped = 0

    def run(self, items: Sequence[TileInput]) -> list[TileResult]:
        """One result per tile (its candidates in tile pixels; skipped tiles have none)."""
        batcher = self.batcher
        encoder = batcher if batcher is not None and (len(items) > 1 or batcher.cache is not None) else None
        results = run_tiles(self.pipeline, items, encoder=encoder, max_nodata_fraction=MAX_NODATA_FRACTION,
                            device=self.device, dtype=self.dtype)
        skipped = sum(r.skipped for r in results)
        self.skipped += skipped
        self.calls += len(results) - skipped
        return results


class ImageAssembler:
    """Collects the tile results of one image and returns its candidates in image pixels, merged
    across seams and overlaps by the tile loop's :class:`~text2seg_widgets.pipeline.tiles.TileAssembler`
    exactly as ``segment`` does, so both give the same candidates."""

    def __init__(self, job: ImageJob, n_tiles: int, class_names: Sequence[str]) -> None:
        self.job = job
        self.merger = TileAssembler(job.width, job.height, class_names, n_tiles=n_tiles)
        self.started = time.perf_counter()
        self.stretch: dict[str, Any] = {}

    @property
    def n_tiles(self) -> int:
        return int(self.merger.n_tiles or 0)

    @property
    def complete(self) -> bool:
        return self.merger.complete

    def add(self, result: TileResult) -> None:
        self.stretch = self.stretch or result.input.stretch
        self.merger.add(result)

    def result(self) -> ImageResult:
        if not self.complete:
            raise RuntimeError(f"image {self.job.image_id}: {self.merger.done} of {self.n_tiles} tiles done")
        return ImageResult(self.job, self.merger.candidates(), self.n_tiles, time.perf_counter() - self.started,
                           self.stretch)


def segment_job(runner: TileRunner, job: ImageJob, settings: BatchSettings) -> ImageResult:
    """One image, start to end, in this thread (what a Ray actor does per scene)."""
    assembler: ImageAssembler | None = None
    batch: list[TileInput] = []

    def flush() -> None:
        for result in runner.run(batch):
            assembler.add(result)  # type: ignore[union-attr]  # set by open() before add() runs
        batch.clear()

    for item in read_tiles(job, settings):
        assembler = assembler or ImageAssembler(job, item.n_tiles, settings.classes.names)
        batch.append(item)
        if len(batch) >= settings.tile_batch:
            flush()
    if batch:
        flush()
    assert assembler is not None
    return assembler.result()
