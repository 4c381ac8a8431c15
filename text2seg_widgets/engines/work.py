"""The unit of batch work: one project image, read tile by tile, its candidates put back together.

Both engines use these pieces: :class:`ImageJob` (what to segment: a file, or a window of a big
scene), :func:`read_tiles` (the scene's single stretch applied to every tile, read lazily with
the imagery layer), :class:`TileRunner` (the pipeline on tiles, under autocast, with SAM image
embeddings optionally computed for a batch of tiles at once) and :class:`ImageAssembler` (tile
candidates -> candidates in the image's own pixel grid, merged across seams by the imagery layer).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
from rasterio.windows import Window

from text2seg_widgets.engines.batching import EmbeddingBatcher
from text2seg_widgets.engines.settings import BatchSettings
from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.instances import Piece, piece_from_tile_mask
from text2seg_widgets.imagery.scene import open_scene
from text2seg_widgets.imagery.stretch import compute_stretch
from text2seg_widgets.imagery.tiling import Tile, tile_grid
from text2seg_widgets.models.device import autocast, resolve_device, resolve_dtype
from text2seg_widgets.core import Candidate
from text2seg_widgets.pipeline.scene_runner import merge_candidates

__all__ = ["ImageJob", "TileInput", "ImageResult", "TileRunner", "ImageAssembler", "plan_tiles",
           "read_tiles", "segment_job", "MAX_NODATA_FRACTION"]

log = logging.getLogger(__name__)

#: Tiles with more nodata than this are not segmented (as in ``segment_scene``).
MAX_NODATA_FRACTION = 0.95


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
                   win)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "ImageJob":
        win = data.get("window")
        return cls(int(data["image_id"]), str(data["path"]), int(data["width"]), int(data["height"]),
                   tuple(int(v) for v in win) if win is not None and len(win) else None)  # type: ignore[arg-type]


@dataclass
class TileInput:
    """A tile ready for the models: ``rgb`` (h, w, 3) uint8, its valid-pixel mask, and where it
    lies in its image."""

    job: ImageJob
    tile: Tile
    rgb: np.ndarray
    valid: np.ndarray
    n_tiles: int
    stretch: dict[str, Any] = field(default_factory=dict)

    @property
    def mostly_nodata(self) -> bool:
        return 1.0 - float(self.valid.mean()) > MAX_NODATA_FRACTION


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
    """The tiles of ``job`` in its own pixel grid (one tile when it is no larger than a tile)."""
    return tile_grid(job.width, job.height, settings.tile_size, settings.overlap)


def read_tiles(job: ImageJob, settings: BatchSettings) -> Iterator[TileInput]:
    """Tiles of ``job`` as stretched RGB, row-major; one stretch for the whole scene file."""
    path = Path(job.path)
    if not path.is_file():
        raise InputError(f"image {job.image_id} is missing: {path} does not exist; relink it with "
                         f"project.relink({job.image_id}, new_path) or remove it from the run")
    with open_scene(path, bands=settings.bands) as scene:
        col0, row0 = (job.window[0], job.window[1]) if job.window else (0, 0)
        if col0 + job.width > scene.width or row0 + job.height > scene.height:
            raise InputError(f"{path} is {scene.width} x {scene.height} pixels now, smaller than image "
                             f"{job.image_id} of the project ({job.width} x {job.height} at {col0},{row0}); "
                             "the file changed since it was added: add it again")
        stretch = compute_stretch(scene, scene.bands, method=settings.stretch)
        tiles = plan_tiles(job, settings)
        for tile in tiles:
            win = tile.window
            window = Window(col0 + win.col_off, row0 + win.row_off, win.width, win.height)
            data = scene.read(window, scene.bands)
            valid = scene.valid_mask(window, scene.bands, data=data)
            yield TileInput(job, tile, stretch.apply(data, valid), valid, len(tiles), stretch.to_dict())


class TileRunner:
    """Runs a pipeline on tiles: inference mode (autocast on CUDA), and when ``tile_batch > 1``
    the segmenter's image embeddings for a batch of tiles in one forward pass (see
    :mod:`.batching` for what batches). ``calls`` counts pipeline runs (one per tile that is not
    mostly nodata); ``skipped`` the tiles left out."""

    def __init__(self, pipeline: Any, settings: BatchSettings) -> None:
        self.pipeline = pipeline
        self.device = resolve_device(settings.device)
        self.dtype = resolve_dtype(settings.dtype, self.device)
        self.batcher = EmbeddingBatcher.for_segmenter(pipeline.models.segmenter) \
            if settings.tile_batch > 1 else None
        self.calls = 0
        self.skipped = 0

    def run(self, items: Sequence[TileInput]) -> list[list[Candidate]]:
        """Fused candidates of each tile (tile pixel coordinates; [] for a skipped tile)."""
        todo = [k for k, item in enumerate(items) if not item.mostly_nodata]
        self.skipped += len(items) - len(todo)
        out: list[list[Candidate]] = [[] for _ in items]
        with autocast(self.device, self.dtype):
            images = [items[k].rgb for k in todo]
            embeddings = self.batcher.encode(images) if self.batcher and len(images) > 1 else None
            for n, k in enumerate(todo):
                if embeddings is not None:
                    self.batcher.install(images[n], embeddings[n])  # type: ignore[union-attr]
                out[k] = self.pipeline.run(images[n]).candidates
                self.calls += 1
        return out


class ImageAssembler:
    """Collects the tiles' candidates of one image and returns them in image pixels.

    A one-tile image keeps the pipeline's candidates as they are (nodata pixels removed). Tiles
    of a larger image become bounding-box pieces in image pixels, merged across seams and
    overlaps by :func:`text2seg_widgets.imagery.instances.merge_pieces` and turned back into
    candidates exactly as ``segment_scene`` does, so both give the same candidates."""

    def __init__(self, job: ImageJob, n_tiles: int, class_names: Sequence[str]) -> None:
        self.job, self.n_tiles, self.names = job, int(n_tiles), list(class_names)
        self.pieces: list[Piece] = []
        self.single: list[Candidate] = []
        self.done = 0
        self.started = time.perf_counter()
        self.stretch: dict[str, Any] = {}

    @property
    def complete(self) -> bool:
        return self.done == self.n_tiles

    def add(self, item: TileInput, candidates: list[Candidate]) -> None:
        self.done += 1
        self.stretch = self.stretch or item.stretch
        all_valid = bool(item.valid.all())
        if self.n_tiles == 1:
            self.single = [c if all_valid else _masked(c, item.valid) for c in candidates]
            self.single = [c for c in self.single if c.area > 0]
            return
        x, y = item.tile.offset
        for cand in candidates:
            mask = cand.mask() if all_valid else cand.mask() & item.valid
            piece = piece_from_tile_mask(mask, x, y, self.job.width, self.job.height, key=cand.class_name,
                                         score=cand.score, payload=(cand, item.tile.index))
            if piece is not None:
                self.pieces.append(piece)

    def result(self) -> ImageResult:
        if not self.complete:
            raise RuntimeError(f"image {self.job.image_id}: {self.done} of {self.n_tiles} tiles done")
        cands = self.single if self.n_tiles == 1 else \
            merge_candidates(self.pieces, self.job.width, self.job.height, self.names)
        return ImageResult(self.job, cands, self.n_tiles, time.perf_counter() - self.started, self.stretch)


def _masked(cand: Candidate, valid: np.ndarray) -> Candidate:
    return Candidate.from_mask(cand.mask() & valid, class_name=cand.class_name, score=cand.score,
                               branch=cand.branch, prompt=cand.prompt, model=cand.model, **cand.extra)


def segment_job(runner: TileRunner, job: ImageJob, settings: BatchSettings) -> ImageResult:
    """One image, start to end, in this thread (what a Ray actor does per scene)."""
    assembler: ImageAssembler | None = None
    batch: list[TileInput] = []

    def flush() -> None:
        for item, cands in zip(batch, runner.run(batch)):
            assembler.add(item, cands)  # type: ignore[union-attr]
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
