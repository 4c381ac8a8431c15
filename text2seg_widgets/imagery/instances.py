"""Instance masks from tiles, merged in scene coordinates without full-scene arrays.

A :class:`Piece` is one instance mask kept as its bounding-box crop (COCO RLE of the crop) plus
the crop's scene offset, so a 20k x 20k scene never costs a dense array per instance. The pieces
of neighbouring tiles are merged by :func:`merge_pieces`, comparing only pairs whose boxes touch
(same key, i.e. class) and decoding only their union window:

* duplicates from overlaps: IoU >= ``iou`` or intersection over the smaller mask >= ``ios``;
* one object cut by a tile border: a piece that touches an edge of its tile lying inside the scene
  (a *cut*) joins a piece that covers or directly continues its pixels on that edge line (at least
  ``contact`` of the edge pixels), with or without tile overlap.

:func:`crop_to_scene_rle` encodes a crop as COCO RLE of the whole scene directly from its runs.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from pycocotools import mask as mask_utils

from text2seg_widgets.core.masks import mask_to_rle, rle_to_mask

__all__ = ["Piece", "piece_from_tile_mask", "merge_pieces", "union_of", "union_rle", "crop_to_scene_rle",
           "encode_crop", "decode_crop", "rle_runs", "scene_rle_crop"]


def encode_crop(mask: np.ndarray) -> dict[str, Any]:
    """COCO RLE of a crop (the core helper; kept as the name the piece code reads)."""
    return mask_to_rle(mask)


def decode_crop(rle: dict[str, Any]) -> np.ndarray:
    return rle_to_mask(rle)


@dataclass
class Piece:
    """An instance mask in scene pixels: ``rle`` is the crop at ``(x0, y0)`` of size ``rle['size']``."""

    key: str
    x0: int
    y0: int
    rle: dict[str, Any]
    score: float
    area: int
    payload: Any = None
    #: Interior tile edges the mask touches: ("x", col) / ("y", row) of the edge pixel line, with
    #: the side (-1 = left/top edge, +1 = right/bottom edge).
    cuts: list[tuple[str, int, int]] = field(default_factory=list)
    #: The tile it came from; pieces of one tile are never merged with each other (the pipeline's
    #: own fusion already resolved overlaps inside a tile). -1 = unknown.
    source: int = -1

    @property
    def h(self) -> int:
        return int(self.rle["size"][0])

    @property
    def w(self) -> int:
        return int(self.rle["size"][1])

    @property
    def box(self) -> tuple[int, int, int, int]:
        """``(x0, y0, x1, y1)`` exclusive."""
        return (self.x0, self.y0, self.x0 + self.w, self.y0 + self.h)


def piece_from_tile_mask(mask: np.ndarray, tile_x: int, tile_y: int, scene_w: int, scene_h: int, *,
                         key: str, score: float, payload: Any = None, source: int = -1,
                         tile_size: tuple[int, int] | None = None, at: tuple[int, int] = (0, 0)) -> Piece | None:
    """A :class:`Piece` from a mask in tile pixels, the tile being at scene offset ``(tile_x, tile_y)``.

    ``mask`` is the whole tile, or (with ``tile_size=(w, h)``) a part of it whose top-left pixel is
    ``at = (col, row)`` in the tile. None when the mask is empty.
    """
    mask = np.asarray(mask, bool)
    rows, cols = np.any(mask, axis=1), np.any(mask, axis=0)
    if not rows.any():
        return None
    tw, th = tile_size if tile_size is not None else (mask.shape[1], mask.shape[0])
    r0, r1 = int(np.argmax(rows)), int(len(rows) - np.argmax(rows[::-1]))
    c0, c1 = int(np.argmax(cols)), int(len(cols) - np.argmax(cols[::-1]))
    crop = mask[r0:r1, c0:c1]
    c0, c1, r0, r1 = c0 + at[0], c1 + at[0], r0 + at[1], r1 + at[1]
    cuts: list[tuple[str, int, int]] = []
    if c0 == 0 and tile_x > 0:
        cuts.append(("x", tile_x, -1))
    if c1 == tw and tile_x + tw < scene_w:
        cuts.append(("x", tile_x + tw - 1, 1))
    if r0 == 0 and tile_y > 0:
        cuts.append(("y", tile_y, -1))
    if r1 == th and tile_y + th < scene_h:
        cuts.append(("y", tile_y + th - 1, 1))
    return Piece(key, tile_x + c0, tile_y + r0, encode_crop(crop), float(score), int(crop.sum()),
                 payload, cuts, source)


def _union_box(pieces: Sequence[Piece]) -> tuple[int, int, int, int]:
    return (min(p.x0 for p in pieces), min(p.y0 for p in pieces),
            max(p.box[2] for p in pieces), max(p.box[3] for p in pieces))


def _in_window(piece: Piece, crop: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """The piece's mask inside the scene window ``box`` (zeros where the piece has no pixels)."""
    x0, y0, x1, y1 = box
    out = np.zeros((y1 - y0, x1 - x0), bool)
    sx0, sy0 = max(x0, piece.x0), max(y0, piece.y0)
    sx1, sy1 = min(x1, piece.box[2]), min(y1, piece.box[3])
    if sx0 < sx1 and sy0 < sy1:
        out[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = crop[sy0 - piece.y0:sy1 - piece.y0,
                                                         sx0 - piece.x0:sx1 - piece.x0]
    return out


def _edge_contact(a: Piece, a_crop: np.ndarray, ma: np.ndarray, mb: np.ndarray,
                  cut: tuple[str, int, int], win: tuple[int, int, int, int], contact: float) -> bool:
    """Does ``b`` cover or continue ``a``'s pixels on ``a``'s cut line? (``ma``/``mb`` in ``win``)"""
    axis, line, side = cut
    if axis == "x":
        n_edge = int(a_crop[:, line - a.x0].sum())
        k, a_w, b_w = line - win[0], ma, mb
    else:
        n_edge = int(a_crop[line - a.y0].sum())
        k, a_w, b_w = line - win[1], ma.T, mb.T
    if n_edge == 0 or not 0 <= k < a_w.shape[1]:
        return False
    near = b_w[:, k].copy()
    if 0 <= k + side < b_w.shape[1]:
        near |= b_w[:, k + side]
    hits = int((a_w[:, k] & near).sum())
    return hits >= max(1, contact * n_edge)


def _should_merge(a: Piece, b: Piece, iou: float, ios: float, contact: float,
                  crops: tuple[np.ndarray, np.ndarray]) -> bool:
    """Compare two pieces inside the intersection of their boxes grown by one pixel: never more
    than a tile's worth of pixels, however large the objects are."""
    ux0, uy0, ux1, uy1 = _union_box([a, b])
    win = (max(max(a.x0, b.x0) - 1, ux0), max(max(a.y0, b.y0) - 1, uy0),
           min(min(a.box[2], b.box[2]) + 1, ux1), min(min(a.box[3], b.box[3]) + 1, uy1))
    if win[2] <= win[0] or win[3] <= win[1]:
        return False
    overlapping = a.x0 < b.box[2] and b.x0 < a.box[2] and a.y0 < b.box[3] and b.y0 < a.box[3]
    if not overlapping and not (a.cuts or b.cuts):
        return False
    ma, mb = _in_window(a, crops[0], win), _in_window(b, crops[1], win)
    inter = int((ma & mb).sum())
    if inter:
        union = a.area + b.area - inter
        if inter / max(union, 1) >= iou or inter / max(min(a.area, b.area), 1) >= ios:
            return True
    return (any(_edge_contact(a, crops[0], ma, mb, cut, win, contact) for cut in a.cuts)
            or any(_edge_contact(b, crops[1], mb, ma, cut, win, contact) for cut in b.cuts))


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


class _CropCache:
    """A few recently decoded crops (each at most a tile), so memory stays bounded by the tile."""

    def __init__(self, pieces: Sequence[Piece], capacity: int = 8) -> None:
        self.pieces, self.capacity = pieces, capacity
        self._items: OrderedDict[int, np.ndarray] = OrderedDict()

    def __getitem__(self, k: int) -> np.ndarray:
        if k in self._items:
            self._items.move_to_end(k)
            return self._items[k]
        crop = decode_crop(self.pieces[k].rle)
        self._items[k] = crop
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)
        return crop


def merge_pieces(pieces: Sequence[Piece], *, iou: float = 0.5, ios: float = 0.8,
                 contact: float = 0.25) -> list[list[int]]:
    """Groups (lists of indices into ``pieces``) of pieces that are one object (see module docs)."""
    parent = list(range(len(pieces)))
    order = sorted(range(len(pieces)), key=lambda i: (pieces[i].key, pieces[i].x0))
    active: list[int] = []
    crops = _CropCache(pieces)
    for i in order:
        p = pieces[i]
        # boxes touching or overlapping (one pixel of slack so adjacent cut pieces are compared)
        active = [j for j in active if pieces[j].key == p.key and pieces[j].box[2] + 1 >= p.x0]
        for j in active:
            q = pieces[j]
            if q.box[1] > p.box[3] or p.box[1] > q.box[3] or (p.source >= 0 and p.source == q.source):
                continue
            if _find(parent, i) != _find(parent, j) and _should_merge(p, q, iou, ios, contact,
                                                                      (crops[i], crops[j])):
                parent[_find(parent, i)] = _find(parent, j)
        active.append(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(pieces)):
        groups.setdefault(_find(parent, i), []).append(i)
    return sorted(groups.values(), key=lambda g: min(g))


def union_of(pieces: Sequence[Piece]) -> tuple[int, int, np.ndarray]:
    """``(x0, y0, mask)`` of the union of ``pieces`` in their union window (dense: small groups only;
    :func:`union_rle` never builds the window)."""
    box = _union_box(pieces)
    out = np.zeros((box[3] - box[1], box[2] - box[0]), bool)
    for p in pieces:
        out[p.y0 - box[1]:p.box[3] - box[1], p.x0 - box[0]:p.box[2] - box[0]] |= decode_crop(p.rle)
    return box[0], box[1], out


def _crop_runs(mask: np.ndarray, x0: int, y0: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Start/end (exclusive) of the foreground runs of a crop, as column-major scene offsets."""
    d = np.diff(mask.T.astype(np.int8), axis=1, prepend=0, append=0)  # (w, h + 1), per column
    sc, sr = np.nonzero(d == 1)
    ec, er = np.nonzero(d == -1)
    starts = (x0 + sc).astype(np.int64) * height + y0 + sr
    ends = (x0 + ec).astype(np.int64) * height + y0 + er
    return starts, ends


def _runs_to_rle(starts: np.ndarray, ends: np.ndarray, height: int, width: int) -> dict[str, Any]:
    """COCO compressed RLE from sorted, disjoint runs (touching runs are joined)."""
    total = int(height) * int(width)
    if len(starts) > 1:
        join = ends[:-1] == starts[1:]
        if join.any():
            starts = starts[np.concatenate([[True], ~join])]
            ends = ends[np.concatenate([~join, [True]])]
    if len(starts) == 0:
        counts = [total]
    else:
        bounds = np.empty(2 * len(starts), np.int64)
        bounds[0::2], bounds[1::2] = starts, ends
        counts = np.diff(np.concatenate([[0], bounds, [total]])).tolist()
        if counts[-1] == 0:  # pycocotools leaves out a final empty run
            counts.pop()
    rle = mask_utils.frPyObjects({"counts": counts, "size": [int(height), int(width)]}, int(height), int(width))
    c = rle["counts"]
    return {"size": [int(height), int(width)], "counts": c.decode("ascii") if isinstance(c, bytes) else c}


def crop_to_scene_rle(mask: np.ndarray, x0: int, y0: int, height: int, width: int) -> dict[str, Any]:
    """COCO compressed RLE (``counts`` str, ``size`` [height, width]) of a crop placed at ``(x0, y0)``.

    Built from the crop's runs (column-major, as COCO counts pixels), never from a scene-sized array.
    """
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    if x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height:
        raise ValueError(f"crop {w}x{h} at ({x0}, {y0}) does not fit a {width}x{height} scene")
    starts, ends = _crop_runs(mask, x0, y0, height)
    return _runs_to_rle(starts, ends, height, width)


def union_rle(pieces: Sequence[Piece], height: int, width: int) -> tuple[dict[str, Any], int]:
    """Scene RLE and area of the union of ``pieces``, merged as runs: memory follows the pieces'
    run counts and one decoded crop at a time, not the union's bounding box."""
    starts_all, ends_all = [], []
    for p in pieces:
        s, e = _crop_runs(decode_crop(p.rle), p.x0, p.y0, height)
        starts_all.append(s)
        ends_all.append(e)
    starts, ends = np.concatenate(starts_all), np.concatenate(ends_all)
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    if len(starts) > 1:  # interval union: a run starts a new block when it begins after all earlier ends
        reach = np.maximum.accumulate(ends)
        new = np.concatenate([[True], starts[1:] > reach[:-1]])
        ends = np.maximum.reduceat(ends, np.flatnonzero(new))
        starts = starts[new]
    area = int((ends - starts).sum())
    return _runs_to_rle(starts, ends, height, width), area


def _counts_of(rle: dict[str, Any]) -> list[int]:
    """The run lengths of a COCO RLE (zeros first), from its compressed string or its list."""
    counts = rle["counts"]
    if isinstance(counts, list):
        return [int(c) for c in counts]
    text = counts.decode("ascii") if isinstance(counts, bytes) else str(counts)
    out: list[int] = []
    pos = 0
    while pos < len(text):  # COCO's string form: 5-bit groups, 0x20 = more, sign in 0x10 of the last
        value, shift, more = 0, 0, True
        while more:
            c = ord(text[pos]) - 48
            value |= (c & 0x1F) << (5 * shift)
            more = bool(c & 0x20)
            pos += 1
            shift += 1
            if not more and c & 0x10:
                value |= -1 << (5 * shift)
        if len(out) > 2:
            value += out[-2]
        out.append(value)
    return out


def rle_runs(rle: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    """Start/end (exclusive) of the foreground runs of a scene RLE as column-major offsets,
    read from the counts alone (no pixel array)."""
    counts = np.asarray(_counts_of(rle), np.int64)
    bounds = np.cumsum(counts)
    starts, ends = bounds[0::2], bounds[1::2]
    n = min(len(starts), len(ends))
    starts, ends = starts[:n], ends[:n]
    keep = ends > starts
    return starts[keep], ends[keep]


def scene_rle_crop(rle: dict[str, Any]) -> tuple[np.ndarray, int, int]:
    """``(crop, x0, y0)``: the mask of a scene RLE cut to its bounding box, decoded from its runs,
    so a mask on a 20,000-pixel scene costs its box, never a scene-sized array. An empty mask gives
    a ``(0, 0)`` crop at (0, 0)."""
    height = int(rle["size"][0])
    starts, ends = rle_runs(rle)
    if not len(starts) or height <= 0:
        return np.zeros((0, 0), bool), 0, 0
    last = ends - 1
    c0, c1 = starts // height, last // height
    n = (c1 - c0 + 1).astype(np.int64)
    idx = np.repeat(np.arange(len(starts)), n)
    col = c0[idx] + (np.arange(int(n.sum())) - np.repeat(np.cumsum(n) - n, n))
    r0 = np.where(col == c0[idx], starts[idx] - c0[idx] * height, 0)
    r1 = np.where(col == c1[idx], last[idx] - c1[idx] * height + 1, height)
    x0, y0 = int(col.min()), int(r0.min())
    w, h = int(col.max()) - x0 + 1, int(r1.max()) - y0
    flat = np.zeros(w * h + 1, np.int32)
    base = (col - x0) * h
    np.add.at(flat, base + (r0 - y0), 1)
    np.add.at(flat, base + (r1 - y0), -1)
    crop = np.cumsum(flat[:-1]).reshape(w, h).T > 0
    return np.ascontiguousarray(crop), x0, y0
