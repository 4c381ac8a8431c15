"""Fixed-size training chips (image pixels + label mask) with a seeded train/val/test split.

Chips are ``size`` x ``size`` windows stepped by ``stride`` (default ``size``: no overlap); the
last row/column of chips is aligned to the image edge, and an image smaller than a chip gives one
chip padded with 0 (pixels) and 255 (labels). The image pixels are read window by window with
rasterio, so scenes larger than memory work.

Split (reproducible: a hash of ``seed`` and a key, not a shuffle, so adding images never moves old
chips):

- ``split_by="image"``: every chip of an image goes to the image's split;
- ``split_by="block"``: each image is cut into ``block_size`` x ``block_size`` pixel blocks and
  each block gets a split. A chip whose window (grown by ``gap`` pixels on every side) touches
  blocks of two different splits is dropped, so no two chips of different splits share a pixel
  (or come within ``gap`` pixels of each other). Counted as ``dropped_on_block_border``.

Layout: ``<out>/<split>/images/<stem>_r<row>_c<col>.{png,tif}`` (PNG for 8-bit 1/3/4-band
images without georeferencing; else GeoTIFF with dtype, CRS and the chip's transform kept),
``<out>/<split>/masks/<same stem>.png`` (palette PNG, values as in :mod:`.semantic`),
``<out>/chips.json`` (one row per chip), ``classes.json``, ``manifest.json``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.scene import check_whole_image
from text2seg_widgets.export.atomic import atomic_dir, write_json, write_manifest
from text2seg_widgets.export.common import (protected_by, DEFAULT_STATES, IGNORE, class_index, classes_table,
                                            image_stem, label_raster, left_out, pixel_reader,
                                            select_images, shifted_transform, write_pixels)
from text2seg_widgets.export.semantic import palette_of, write_palette_png
from text2seg_widgets.store import ImageRecord, Project

__all__ = ["export_chips", "chip_starts", "assign_split", "SPLITS"]

SPLITS = ("train", "val", "test")


def chip_starts(length: int, size: int, stride: int) -> list[int]:
    """Chip offsets along one axis: every ``stride``, the last one aligned to the edge."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def assign_split(seed: int, key: str, ratios: Sequence[float]) -> str:
    """The split of ``key``: a uniform number from sha256(seed, key) against the ratios."""
    u = int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "big") / 2.0 ** 64
    edge = 0.0
    for name, r in zip(SPLITS, ratios):
        edge += r
        if u < edge:
            return name
    return SPLITS[len(ratios) - 1]


def _check(size: int, stride: int, ratios: Sequence[float], split_by: str,
           block_size: int) -> None:
    if size <= 0 or stride <= 0:
        raise InputError(f"chip size and stride must be positive, got {size} and {stride}")
    if len(ratios) != 3 or any(r < 0 for r in ratios) or abs(sum(ratios) - 1.0) > 1e-6:
        raise InputError(f"split ratios must be three non-negative numbers (train, val, test) "
                         f"summing to 1, got {list(ratios)}")
    if split_by not in ("image", "block"):
        raise InputError(f"split_by must be 'image' or 'block', got {split_by!r}")
    if split_by == "block" and block_size < size:
        raise InputError(f"block_size ({block_size}) must be at least the chip size ({size})")


def _chip_split(rec: ImageRecord, col: int, row: int, size: int, opts: dict[str, Any]) -> \
        tuple[str | None, list[int] | None]:
    if opts["split_by"] == "image":
        return assign_split(opts["seed"], f"image:{rec.id}", opts["ratios"]), None
    b, g = opts["block_size"], opts["gap"]
    x0, y0 = max(0, col - g), max(0, row - g)
    x1, y1 = col + size - 1 + g, row + size - 1 + g
    splits = {assign_split(opts["seed"], f"block:{rec.id}:{bx}:{by}", opts["ratios"])
              for bx in range(x0 // b, x1 // b + 1) for by in range(y0 // b, y1 // b + 1)}
    home = [col // b, row // b]
    return (splits.pop(), home) if len(splits) == 1 else (None, home)


def _write_image_chip(path_stem: Path, rec: ImageRecord, data: np.ndarray, col: int,
                      row: int) -> str:
    png = data.dtype == np.uint8 and data.shape[0] in (1, 3, 4) and not rec.georeferenced
    path = path_stem.with_suffix(".png" if png else ".tif")
    write_pixels(path, data, crs=rec.crs, transform=shifted_transform(rec.transform, col, row))
    return path.name


def _image_chips(project: Project, rec: ImageRecord, tmp: Path, opts: dict[str, Any],
                 counts: dict[str, int]) -> list[dict[str, Any]]:
    size, rows = opts["size"], []
    check_whole_image(rec.width, rec.height, f"image {rec.id} ({rec.path}) is too big to cut into chips "
                      "from one label array", "Export it as COCO (masks stay run-length encoded), or add "
                      "the scene as tiles (`project add-images PROJECT FILE --tile 4096`) and export those")
    labels = label_raster(rec, project.annotations(rec.id), opts["index"], opts["unlabelled"])
    padded = np.full((max(rec.height, size), max(rec.width, size)), IGNORE, np.uint8)
    padded[:rec.height, :rec.width] = labels
    with pixel_reader(project, rec) as read:
        for row in chip_starts(rec.height, size, opts["stride"]):
            for col in chip_starts(rec.width, size, opts["stride"]):
                split, block = _chip_split(rec, col, row, size, opts)
                if split is None:
                    counts["dropped_on_block_border"] += 1
                    continue
                mask = padded[row:row + size, col:col + size]
                labelled = float((mask != IGNORE).mean())
                if labelled < opts["min_labelled"]:
                    counts["dropped_unlabelled"] += 1
                    continue
                stem = f"{image_stem(rec)}_r{row}_c{col}"
                img_name = _write_image_chip(tmp / split / "images" / stem, rec,
                                             read((col, row, size, size)), col, row)
                write_palette_png(tmp / split / "masks" / f"{stem}.png", mask, opts["palette"])
                counts[split] += 1
                rows.append({"split": split, "image": f"{split}/images/{img_name}",
                             "mask": f"{split}/masks/{stem}.png", "image_id": rec.id,
                             "window": [col, row, size, size], "block": block,
                             "labelled_fraction": round(labelled, 6)})
    return rows


def export_chips(project: Project, out: str | Path, *, size: int = 512, stride: int | None = None,
                 split_by: str = "image", ratios: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0, block_size: int | None = None, gap: int = 0,
                 min_labelled: float = 0.0, unlabelled: str = "ignore",
                 states: Iterable[str] | None = DEFAULT_STATES,
                 overwrite: bool = False) -> dict[str, Any]:
    """Cut image + mask chips with a reproducible split (see the module doc); return the manifest.

    ``min_labelled``: skip chips whose fraction of non-ignore label pixels is below it (0 keeps
    every chip, even one with no labelled pixel)."""
    stride = stride or size
    block_size = block_size or 4 * size
    _check(size, stride, ratios, split_by, block_size)
    images = select_images(project, states)
    table = classes_table(project)
    opts = {"size": size, "stride": stride, "split_by": split_by, "ratios": list(ratios),
            "seed": seed, "block_size": block_size, "gap": gap, "min_labelled": min_labelled,
            "unlabelled": unlabelled, "index": class_index(project), "palette": palette_of(table)}
    counts = {s: 0 for s in SPLITS} | {"dropped_on_block_border": 0, "dropped_unlabelled": 0}
    with atomic_dir(out, overwrite=overwrite, protected=protected_by(project)) as tmp:
        for split in SPLITS:
            (tmp / split / "images").mkdir(parents=True)
            (tmp / split / "masks").mkdir()
        chips = [c for rec in images for c in _image_chips(project, rec, tmp, opts, counts)]
        write_json(tmp / "chips.json", chips)
        write_json(tmp / "classes.json", table, indent=2)
        return write_manifest(
            tmp, "chips", project=project.location, project_id=project.project_id, classes=table,
            counts={"images": len(images), "chips": len(chips), **counts},
            options={k: v for k, v in opts.items() if k not in ("index", "palette")} |
            {"states": None if states is None else list(states)},
            images=[{"image_id": r.id, "path": r.path, "checksum": r.checksum, "window": r.window}
                    for r in images],
            left_out=left_out(project, images, states))
