"""The one tile loop: read -> tiles with halo -> pipeline -> candidates merged across seams.

Every path that segments pixels goes through this module, so they all see the same pixels and
return the same candidates: ``text2seg-widgets segment`` (the CLI wires the file writers of
:mod:`text2seg_widgets.export` to :class:`TileResult`), both batch engines
(:mod:`text2seg_widgets.engines.work`, local and Ray) and the Annotator's prompt runs.

Reading. :func:`open_tiles` opens a raster lazily as a :class:`~text2seg_widgets.imagery.scene.Scene`,
computes ONE stretch for the scene (or takes the one given), lays a grid of overlapping tiles
over ``window`` (default: the whole scene) and reads each tile through ``Scene.to_rgb``, so a
paletted image is expanded through its colour table on every path. :func:`array_tiles` does the
same for pixels already in memory.

Running. :func:`run_tiles` runs the pipeline on a list of tiles (skipping mostly-nodata tiles)
under :func:`~text2seg_widgets.models.device.autocast`; :func:`encode_tiles` is the single place
where a batch of tiles is encoded (see "Embedding hook" below). :func:`segment_tiles` ties both
together and yields one :class:`TileResult` per tile in row-major order.

Merging. :class:`TileAssembler` turns the tiles' candidates into bounding-box pieces in the output
grid and merges duplicates from overlaps and objects cut by seams
(:func:`text2seg_widgets.imagery.instances.merge_pieces`); :func:`merge_candidates` gives the
final candidates (COCO RLE in output pixels, ``extra["tiles"]`` and ``extra["merged_from"]``).

In-memory entry point (the Annotator's prompt runs)::

    segment_array(pipeline, rgb, *, window=None, tile_size=None, overlap=128) -> list[Candidate]

``rgb`` is the whole image, ``(H, W, 3)`` uint8 (other numeric arrays go through
:func:`~text2seg_widgets.pipeline.image_input.as_rgb_uint8`, one stretch for the whole array);
``window`` is ``(col_off, row_off, width, height)`` of the part to segment (None: everything);
``tile_size=None`` runs the window as one tile. The candidates come back in the pixel grid of the
WHOLE ``rgb`` (``size == [H, W]``), ready to store.

Embedding hook (for the embedding batching and the persistent cache). :func:`encode_tiles` is
called once per batch with the RGB arrays the models are about to see, before the pipeline runs
on any of them. It asks its ``encoder`` (a :class:`TileEncoder`: ``encode(images) -> one
embedding per image`` and ``install(image, embedding)``) for the embeddings, then
:func:`run_tiles` installs each one right before its tile runs, so the segmenter's own
``set_image`` finds the image already encoded. An encoder that reads and writes an embedding cache
plugs in here without any change to the loop (engines pass theirs as ``encoder=``).
"""

from __future__ import annotations

import logging
import os
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Callable, Iterator, Protocol, Sequence

import numpy as np
from affine import Affine
from rasterio.windows import Window
from rasterio.windows import transform as window_transform

from text2seg_widgets.core import Candidate, rle_bbox
from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.instances import (Piece, crop_to_scene_rle, decode_crop, merge_pieces,
                                                piece_from_tile_mask, union_rle)
from text2seg_widgets.imagery.labels import NODATA
from text2seg_widgets.imagery.scene import Scene, open_scene
from text2seg_widgets.imagery.stretch import STRETCH_METHODS, Stretch, compute_stretch, load_stretch
from text2seg_widgets.imagery.tiling import Tile, check_tiling, gsd_factor, resize_nearest, source_tiling, tile_grid
from text2seg_widgets.pipeline.image_input import MIN_SIDE, as_rgb_uint8

__all__ = ["TileInput", "TileResult", "TilePlan", "TileEncoder", "TileAssembler", "open_tiles", "array_tiles",
           "encode_tiles", "run_tiles", "scene_grid", "segment_tiles", "segment_array", "merge_candidates",
           "MAX_NODATA_FRACTION", "NODATA", "StretchLike", "resolve_stretch"]

log = logging.getLogger(__name__)

#: Tiles with more nodata than this fraction are not segmented (their labels are all NODATA).
MAX_NODATA_FRACTION = 0.95

StretchLike = Stretch | dict | str | os.PathLike | None


@dataclass
class TileInput:
    """A tile ready for the models.

    ``rgb`` (h, w, 3) uint8 and ``valid`` (h, w) bool are at source resolution; ``model_rgb`` is
    what the models see (the same array unless a target GSD resamples the tile). ``key`` is the
    caller's tag (the engines put their image job there)."""

    tile: Tile
    rgb: np.ndarray
    valid: np.ndarray
    n_tiles: int
    model_rgb: np.ndarray | None = None
    stretch: dict[str, Any] = field(default_factory=dict)
    key: Any = None

    @property
    def image(self) -> np.ndarray:
        """The pixels the models see."""
        return self.rgb if self.model_rgb is None else self.model_rgb

    def mostly_nodata(self, max_fraction: float = MAX_NODATA_FRACTION) -> bool:
        return 1.0 - float(self.valid.mean()) > max_fraction


@dataclass
class TileResult:
    """The pipeline's answer for one tile.

    ``candidates`` are the pipeline's fused candidates in model pixels of the tile (empty when
    skipped); ``labels`` (h, w) uint8 class indices at source resolution with :data:`NODATA` on
    invalid pixels (all NODATA when skipped); ``scores`` the per-class score maps at source
    resolution (None when skipped)."""

    input: TileInput
    candidates: list[Candidate]
    labels: np.ndarray
    scores: np.ndarray | None
    skipped: bool

    @property
    def tile(self) -> Tile:
        return self.input.tile


class TileEncoder(Protocol):
    """Encodes a batch of tiles and hands one embedding at a time to the segmenter."""

    def encode(self, images: Sequence[np.ndarray]) -> Sequence[Any]: ...

    def install(self, image: np.ndarray, embedding: Any) -> None: ...


class _Pipeline(Protocol):  # the part of Text2SegPipeline the loop uses
    classes: Any

    def run(self, image: np.ndarray) -> Any: ...


# -- reading -------------------------------------------------------------------------------------
def resolve_stretch(scene: Scene, stretch: StretchLike) -> Stretch:
    """The scene's one stretch: computed (None or a method name), or given (a Stretch, its dict,
    or a ``stretch.json`` path) and checked against the scene's bands."""
    if stretch is None:
        return compute_stretch(scene, scene.bands)
    if isinstance(stretch, str) and stretch in STRETCH_METHODS:
        return compute_stretch(scene, scene.bands, method=stretch)
    if isinstance(stretch, dict):
        stretch = Stretch.from_dict(stretch)
    elif isinstance(stretch, (str, os.PathLike)):
        stretch = load_stretch(stretch)
    if not isinstance(stretch, Stretch):
        raise InputError(f"stretch must be None, a method ({', '.join(STRETCH_METHODS)}), a Stretch, a dict "
                         f"or a stretch.json path; got {type(stretch).__name__}")
    if list(stretch.bands) != list(scene.bands):
        raise InputError(f"the stretch is for bands {stretch.bands} but the run uses bands {list(scene.bands)}; "
                         "compute a new stretch or choose the same bands")
    return stretch


class TilePlan(AbstractContextManager):
    """An opened source and its tile grid. ``width``/``height`` are the window's; ``tiles`` are in
    the window's pixel grid; :meth:`read` yields the tiles as :class:`TileInput` in row-major order.
    Close it (or use ``with``) to release the file."""

    def __init__(self, width: int, height: int, tiles: list[Tile], reader: Callable[[Window], tuple],
                 *, name: str = "", crs: Any = None, transform: Affine | None = None,
                 stretch: Stretch | None = None, factor: float = 1.0, origin: tuple[int, int] = (0, 0),
                 close: Callable[[], None] | None = None) -> None:
        self.width, self.height, self.tiles = int(width), int(height), tiles
        self.name, self.crs, self.transform = name, crs, transform or Affine.identity()
        self.stretch, self.factor, self.origin = stretch, float(factor), origin
        self._reader, self._close = reader, close

    def read(self, key: Any = None) -> Iterator[TileInput]:
        stretch = self.stretch.to_dict() if self.stretch is not None else {}
        x0, y0 = self.origin
        for tile in self.tiles:
            win = tile.window
            model_rgb, rgb, valid = self._reader(Window(x0 + win.col_off, y0 + win.row_off, win.width, win.height))
            yield TileInput(tile, rgb, valid, len(self.tiles), None if model_rgb is rgb else model_rgb,
                            stretch, key)

    def close(self) -> None:
        if self._close is not None:
            self._close()
            self._close = None

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _check_window(window: Sequence[int] | None, width: int, height: int, what: str) -> tuple[int, int, int, int]:
    if window is None:
        return 0, 0, width, height
    try:
        col, row, w, h = (int(v) for v in window)
    except (TypeError, ValueError):
        raise InputError(f"a window is (col_off, row_off, width, height), got {window!r}") from None
    if col < 0 or row < 0 or w < 1 or h < 1 or col + w > width or row + h > height:
        raise InputError(f"window {window!r} lies outside {what} ({width} x {height} pixels); the file may "
                         "have changed since the window was chosen: choose the window again")
    return col, row, w, h


def _scene_reader(scene: Scene, stretch: Stretch, factor: float) -> Callable[[Window], tuple]:
    """``window -> (model rgb, source rgb, source valid)``: source pixels through the one project
    pixel reader (``Scene.pixels``; :func:`open_tiles` made ``stretch`` the scene's), resampled
    ones through ``Scene.to_rgb``."""
    own = None if scene.palette is not None else stretch  # a paletted image shows its colour table

    def read(window: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rgb, valid = scene.pixels(window)
        if factor == 1.0:
            return rgb, rgb, valid
        h, w = valid.shape
        shape = (max(MIN_SIDE, round(h * factor)), max(MIN_SIDE, round(w * factor)))
        model_data = scene.read(window, scene.bands, out_shape=shape)
        model_valid = scene.valid_mask(window, scene.bands, out_shape=shape)
        return scene.to_rgb(model_data, model_valid, own), rgb, valid

    return read


def open_tiles(path: str | os.PathLike, *, window: Sequence[int] | None = None, tile_size: int = 1024,
               overlap: int = 128, bands: str | int | Sequence[int] | None = None, stretch: StretchLike = None,
               gsd: float | None = None) -> TilePlan:
    """Open ``path`` and plan its tiles (module docs). ``window``: ``(col, row, width, height)`` of
    the scene to tile (None: all of it); ``gsd``: resample tiles to this ground sampling distance
    (``tile_size``/``overlap`` are then model pixels; results come back on the source grid)."""
    check_tiling(tile_size, overlap)
    if tile_size < MIN_SIDE:
        raise InputError(f"tile_size {tile_size} is below the {MIN_SIDE}-pixel minimum the models accept")
    scene = open_scene(path, bands=bands)
    try:
        col, row, width, height = _check_window(window, scene.width, scene.height, str(scene.path))
        if min(width, height) < MIN_SIDE:
            raise InputError(f"{scene.path.name} is {width} x {height} pixels; segmentation needs at least "
                             f"{MIN_SIDE} pixels on each side: crop or pad the image to a usable shape")
        if gsd is not None and not scene.is_georeferenced:
            raise InputError(f"gsd={gsd} needs a georeferenced scene, and {scene.path.name} has no CRS; "
                             "leave gsd unset for plain images")
        factor = gsd_factor(scene.res[0], gsd)
        st = resolve_stretch(scene, stretch)
        scene.stretch = st
        tiles = scene_grid(width, height, tile_size, overlap, factor)
        transform = window_transform(Window(col, row, width, height), scene.transform)
    except BaseException:
        scene.close()
        raise
    return TilePlan(width, height, tiles, _scene_reader(scene, st, factor), name=scene.path.name, crs=scene.crs,
                    transform=transform, stretch=st, factor=factor, origin=(col, row), close=scene.close)


def scene_grid(width: int, height: int, tile_size: int, overlap: int, factor: float = 1.0) -> list[Tile]:
    """The tiles of a ``width`` x ``height`` scene (or window) in source pixels: ``tile_size`` and
    ``overlap`` are model pixels, ``factor`` the resampling to model pixels (1.0: none). The ONE
    grid of a scene: the work (:func:`open_tiles`) and the progress totals of the batch engines
    (``engines.work.plan_tiles``) both come from here."""
    return tile_grid(width, height, *source_tiling(tile_size, overlap, factor))


def array_tiles(rgb: np.ndarray, *, window: Sequence[int] | None = None, tile_size: int | None = None,
                overlap: int = 128) -> TilePlan:
    """Plan the tiles of in-memory pixels (``(H, W, 3)`` uint8; others are converted with one
    stretch for the whole array). ``tile_size=None``: the window is one tile."""
    image = as_rgb_uint8(rgb)
    h, w = image.shape[:2]
    col, row, width, height = _check_window(window, w, h, "the image")
    if min(width, height) < MIN_SIDE:
        raise InputError(f"the window is {width} x {height} pixels; the models need at least {MIN_SIDE} a side")
    size = max(width, height) if tile_size is None else int(tile_size)
    tiles = tile_grid(width, height, size, overlap if tile_size is not None else 0)

    def read(win: Window) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c, r, ww, hh = int(win.col_off), int(win.row_off), int(win.width), int(win.height)
        part = np.ascontiguousarray(image[r:r + hh, c:c + ww])
        return part, part, np.ones(part.shape[:2], bool)

    return TilePlan(width, height, tiles, read, origin=(col, row))


# -- running -------------------------------------------------------------------------------------
def encode_tiles(encoder: TileEncoder | None, images: Sequence[np.ndarray]) -> list[Any] | None:
    """THE place where a batch of tiles is encoded (the embedding hook, see the module docs):
    one embedding per image from ``encoder``, or None when there is no encoder (the segmenter then
    encodes each tile itself inside the pipeline)."""
    if encoder is None or not images:
        return None
    return list(encoder.encode(images))


def _labels_at_source(result: Any, valid: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels = np.asarray(result.label_map, np.uint8)
    scores = np.asarray(result.score_maps)
    if labels.shape != valid.shape:  # the tile was resampled to a target GSD
        labels, scores = resize_nearest(labels, valid.shape), resize_nearest(scores, valid.shape)
    labels = labels.copy()
    labels[~valid] = NODATA
    return labels, scores


def run_tiles(pipeline: _Pipeline, items: Sequence[TileInput], *, encoder: TileEncoder | None = None,
              max_nodata_fraction: float = MAX_NODATA_FRACTION, device: Any = None,
              dtype: Any = None) -> list[TileResult]:
    """The pipeline on each tile that is not mostly nodata, in inference mode (autocast on CUDA
    when ``dtype`` asks for it); one :class:`TileResult` per item, in order."""
    from text2seg_widgets.models.device import autocast, resolve_device, resolve_dtype

    dev = resolve_device(device)
    todo = [k for k, item in enumerate(items) if not item.mostly_nodata(max_nodata_fraction)]
    out: list[TileResult] = [TileResult(item, [], np.full(item.valid.shape, NODATA, np.uint8), None, True)
                             for item in items]
    with autocast(dev, resolve_dtype(dtype, dev)):
        images = [items[k].image for k in todo]
        embeddings = encode_tiles(encoder, images)
        for n, k in enumerate(todo):
            if embeddings is not None:
                encoder.install(images[n], embeddings[n])  # type: ignore[union-attr]  # encoder is the batcher whenever embeddings exist
            result = pipeline.run(images[n])
            labels, scores = _labels_at_source(result, items[k].valid)
            out[k] = TileResult(items[k], list(result.candidates), labels, scores, False)
    return out


def _batched(items: Iterator[TileInput], size: int) -> Iterator[list[TileInput]]:
    batch: list[TileInput] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def segment_tiles(pipeline: _Pipeline, plan: TilePlan, *, batch: int = 1, encoder: TileEncoder | None = None,
                  max_nodata_fraction: float = MAX_NODATA_FRACTION, device: Any = None,
                  dtype: Any = None) -> Iterator[TileResult]:
    """Every tile of ``plan`` through :func:`run_tiles`, ``batch`` tiles at a time, row-major."""
    if int(batch) < 1:
        raise InputError(f"batch must be at least 1, got {batch}")
    for items in _batched(plan.read(), int(batch)):
        yield from run_tiles(pipeline, items, encoder=encoder, max_nodata_fraction=max_nodata_fraction,
                             device=device, dtype=dtype)


# -- merging -------------------------------------------------------------------------------------
def merge_candidates(pieces: list[Piece], width: int, height: int, names: Sequence[str]) -> list[Candidate]:
    """Candidates (COCO RLE in a ``width x height`` grid) from merged pieces, ordered by class
    (``names`` order), then score (high first), then position."""
    out = []
    for group in merge_pieces(pieces):
        members = [pieces[i] for i in group]
        best = max(members, key=lambda p: p.score)
        cand, _ = best.payload
        if len(members) == 1:
            rle, area = crop_to_scene_rle(decode_crop(best.rle), best.x0, best.y0, height, width), best.area
        else:
            rle, area = union_rle(members, height, width)
        extra = dict(cand.extra)
        extra.update(tiles=sorted({p.payload[1] for p in members}), merged_from=len(members))
        out.append(Candidate(class_name=best.key, rle=rle, bbox=rle_bbox(rle), area=area,
                             score=best.score, branch=cand.branch, prompt=cand.prompt, model=cand.model,
                             extra=extra))
    order = {n: i for i, n in enumerate(names)}
    out.sort(key=lambda c: (order.get(c.class_name, len(order)), -c.score, c.bbox[1], c.bbox[0]))
    return out


class TileAssembler:
    """Collects the tile results of one image and returns its candidates in a ``width x height``
    grid; tiles lie at ``origin + tile.offset`` in that grid (origin (0, 0): the tiled window is
    the grid). ``n_tiles``: how many results make the image :attr:`complete` (None: not tracked)."""

    def __init__(self, width: int, height: int, class_names: Sequence[str], *, n_tiles: int | None = None,
                 origin: tuple[int, int] = (0, 0)) -> None:
        self.width, self.height, self.names = int(width), int(height), list(class_names)
        self.n_tiles, self.origin = n_tiles, (int(origin[0]), int(origin[1]))
        self.pieces: list[Piece] = []
        self.done = 0
        self.skipped = 0

    @property
    def complete(self) -> bool:
        return self.n_tiles is not None and self.done == self.n_tiles

    def add(self, result: TileResult) -> None:
        """The pieces of one tile: each candidate cut to its bbox, limited to valid pixels."""
        self.done += 1
        self.skipped += int(result.skipped)
        valid, tile = result.input.valid, result.tile
        x, y = tile.offset[0] + self.origin[0], tile.offset[1] + self.origin[1]
        th, tw = valid.shape
        for cand in result.candidates:
            full = cand.mask()
            if full.shape != valid.shape:  # the tile was resampled to a target GSD
                full = resize_nearest(full, valid.shape)
                bx = by = 0
                bh, bw = full.shape
            else:
                bx, by, bw, bh = (int(v) for v in cand.bbox)
            if bw <= 0 or bh <= 0:
                continue
            rows, cols = slice(by, by + bh), slice(bx, bx + bw)
            piece = piece_from_tile_mask(full[rows, cols] & valid[rows, cols], x, y, self.width, self.height,
                                         key=cand.class_name, score=cand.score, payload=(cand, tile.index),
                                         source=tile.index, tile_size=(tw, th), at=(bx, by))
            if piece is not None:
                self.pieces.append(piece)

    def candidates(self) -> list[Candidate]:
        """The merged candidates (see :func:`merge_candidates`)."""
        return merge_candidates(self.pieces, self.width, self.height, self.names)


def segment_array(pipeline: _Pipeline, rgb: np.ndarray, *, window: Sequence[int] | None = None,
                  tile_size: int | None = None, overlap: int = 128, batch: int = 1,
                  encoder: TileEncoder | None = None) -> list[Candidate]:
    """Candidates for in-memory pixels, in the grid of the whole ``rgb`` (the module docs)."""
    plan = array_tiles(rgb, window=window, tile_size=tile_size, overlap=overlap)
    h, w = np.asarray(rgb).shape[:2]
    assembler = TileAssembler(w, h, list(pipeline.classes.names), origin=plan.origin)
    with plan:
        for result in segment_tiles(pipeline, plan, batch=batch, encoder=encoder):
            assembler.add(result)
    return assembler.candidates()
