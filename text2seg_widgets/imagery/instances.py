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

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np
from pycocotools import mask as mask_utils

__all__ = ["Piece", "piece_from_tile_mask", "merge_pieces", "union_of", "crop_to_scene_rle",
           "encode_crop", "decode_crop"]


def encode_crop(mask: np.ndarray) -> dict[str, Any]:
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"]}


def decode_crop(rle: dict[str, Any]) -> np.ndarray:
    return mask_utils.decode(rle).astype(bool)


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


def _place(piece: Piece, box: tuple[int, int, int, int], out: np.ndarray | None = None,
           crop: np.ndarray | None = None) -> np.ndarray:
    x0, y0, x1, y1 = box
    if out is None:
        out = np.zeros((y1 - y0, x1 - x0), bool)
    ry, rx = piece.y0 - y0, piece.x0 - x0
    out[ry:ry + piece.h, rx:rx + piece.w] |= decode_crop(piece.rle) if crop is None else crop
    return out


def _edge_contact(a: np.ndarray, b: np.ndarray, cut: tuple[str, int, int], box: tuple[int, int, int, int],
                  contact: float) -> bool:
    """Does ``b`` cover or continue ``a``'s pixels on ``a``'s cut line?"""
    axis, line, side = cut
    if axis == "x":
        k = line - box[0]
        if not 0 <= k < a.shape[1]:
            return False
        a_line, b_same = a[:, k], b[:, k]
        nb = k + side
        b_next = b[:, nb] if 0 <= nb < b.shape[1] else np.zeros_like(b_same)
    else:
        k = line - box[1]
        if not 0 <= k < a.shape[0]:
            return False
        a_line, b_same = a[k], b[k]
        nb = k + side
        b_next = b[nb] if 0 <= nb < b.shape[0] else np.zeros_like(b_same)
    n_edge = int(a_line.sum())
    if n_edge == 0:
        return False
    hits = int((a_line & (b_same | b_next)).sum())
    return hits >= max(1, contact * n_edge)


def _should_merge(a: Piece, b: Piece, iou: float, ios: float, contact: float,
                  crops: tuple[np.ndarray, np.ndarray]) -> bool:
    overlapping = a.x0 < b.box[2] and b.x0 < a.box[2] and a.y0 < b.box[3] and b.y0 < a.box[3]
    if not overlapping and not (a.cuts or b.cuts):
        return False
    box = _union_box([a, b])
    ma, mb = _place(a, box, crop=crops[0]), _place(b, box, crop=crops[1])
    inter = int((ma & mb).sum())
    if inter:
        union = a.area + b.area - inter
        if inter / max(union, 1) >= iou or inter / max(min(a.area, b.area), 1) >= ios:
            return True
    return (any(_edge_contact(ma, mb, cut, box, contact) for cut in a.cuts)
            or any(_edge_contact(mb, ma, cut, box, contact) for cut in b.cuts))


def _find(parent: list[int], i: int) -> int:
    while parent[i] != i:
        parent[i] = parent[parent[i]]
        i = parent[i]
    return i


def merge_pieces(pieces: Sequence[Piece], *, iou: float = 0.5, ios: float = 0.8,
                 contact: float = 0.25) -> list[list[int]]:
    """Groups (lists of indices into ``pieces``) of pieces that are one object (see module docs)."""
    parent = list(range(len(pieces)))
    order = sorted(range(len(pieces)), key=lambda i: (pieces[i].key, pieces[i].x0))
    active: list[int] = []
    crops: dict[int, np.ndarray] = {}  # decoded crops of the active sweep window only

    def crop(k: int) -> np.ndarray:
        if k not in crops:
            crops[k] = decode_crop(pieces[k].rle)
        return crops[k]

    for i in order:
        p = pieces[i]
        # boxes touching or overlapping (one pixel of slack so adjacent cut pieces are compared)
        active = [j for j in active if pieces[j].key == p.key and pieces[j].box[2] + 1 >= p.x0]
        for k in [k for k in crops if k not in active]:
            del crops[k]
        for j in active:
            q = pieces[j]
            if q.box[1] > p.box[3] or p.box[1] > q.box[3] or (p.source >= 0 and p.source == q.source):
                continue
            if _find(parent, i) != _find(parent, j) and _should_merge(p, q, iou, ios, contact,
                                                                      (crop(i), crop(j))):
                parent[_find(parent, i)] = _find(parent, j)
        active.append(i)
    groups: dict[int, list[int]] = {}
    for i in range(len(pieces)):
        groups.setdefault(_find(parent, i), []).append(i)
    return sorted(groups.values(), key=lambda g: min(g))


def union_of(pieces: Sequence[Piece]) -> tuple[int, int, np.ndarray]:
    """``(x0, y0, mask)`` of the union of ``pieces`` in their union window."""
    box = _union_box(pieces)
    out = np.zeros((box[3] - box[1], box[2] - box[0]), bool)
    for p in pieces:
        _place(p, box, out)
    return box[0], box[1], out


def crop_to_scene_rle(mask: np.ndarray, x0: int, y0: int, height: int, width: int) -> dict[str, Any]:
    """COCO compressed RLE (``counts`` str, ``size`` [height, width]) of a crop placed at ``(x0, y0)``.

    Built from the crop's runs (column-major, as COCO counts pixels), never from a scene-sized array.
    """
    mask = np.asarray(mask, bool)
    h, w = mask.shape
    if x0 < 0 or y0 < 0 or x0 + w > width or y0 + h > height:
        raise ValueError(f"crop {w}x{h} at ({x0}, {y0}) does not fit a {width}x{height} scene")
    total = int(height) * int(width)
    d = np.diff(mask.T.astype(np.int8), axis=1, prepend=0, append=0)  # (w, h + 1), per column
    sc, sr = np.nonzero(d == 1)
    ec, er = np.nonzero(d == -1)
    starts = (x0 + sc).astype(np.int64) * height + y0 + sr
    ends = (x0 + ec).astype(np.int64) * height + y0 + er
    if len(starts) > 1:  # runs that continue from the bottom of one column to the top of the next
        join = ends[:-1] == starts[1:]
        if join.any():
            keep_s = np.concatenate([[True], ~join])
            keep_e = np.concatenate([~join, [True]])
            starts, ends = starts[keep_s], ends[keep_e]
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
