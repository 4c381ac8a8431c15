"""Semantic segmentation dataset: one class-index label image per image, plus ``classes.json``.

``<out>/labels/<stem>.png``: 8-bit palette PNG whose pixel values are class indices (``0``
background, ``i`` = i-th class, ``255`` ignore; see :mod:`.common` for the overlap rule and the
``unlabelled`` modes); the palette holds the class colours, so the file also views well.
``<out>/labels/<stem>.tif``: for georeferenced images, the same labels as a cloud-optimised
GeoTIFF with the source CRS and transform (written by
:func:`text2seg_widgets.export.rasters.write_label_geotiff`).
``<out>/images/``: the source images (copied like the COCO export; windows of big scenes as their
own files). ``<out>/classes.json``: index, name, colour, project class id, prompts;
``<out>/images.json``: which label file belongs to which image (``image``: the copy, relative to
``<out>``; ``path``: the source file; window, size, state).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from text2seg_widgets.errors import InputError
from text2seg_widgets.imagery.scene import check_whole_image
from text2seg_widgets.export.atomic import atomic_dir, write_json, write_manifest
from text2seg_widgets.export.coco import IMAGE_MODES, place_images
from text2seg_widgets.export.common import (protected_by, DEFAULT_STATES, IGNORE, class_index, classes_table,
                                            UNLABELLED_MODES, image_stem, label_raster, left_out,
                                            select_images)
from text2seg_widgets.store import ImageRecord, Project

__all__ = ["export_semantic", "write_palette_png", "palette_of"]


def palette_of(table: list[dict[str, Any]]) -> list[int]:
    """A 768-entry PIL palette: class colours at their indices, grey elsewhere, white for 255."""
    pal = [128] * 768
    for row in table:
        c = row["color"].lstrip("#")
        pal[3 * row["index"]:3 * row["index"] + 3] = [int(c[i:i + 2], 16) for i in (0, 2, 4)]
    return pal


def write_palette_png(path: Path, labels: np.ndarray, palette: list[int]) -> None:
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(labels, dtype=np.uint8))
    im.putpalette(palette)
    im.save(path, format="PNG", compress_level=1)


def _write_geotiff(path: Path, rec: ImageRecord, labels: np.ndarray,
                   table: list[dict[str, Any]]) -> None:
    from affine import Affine

    from text2seg_widgets.export.rasters import write_label_geotiff

    classes = [r for r in table if 0 < r["index"] < IGNORE]
    colors = [tuple(int(r["color"][i:i + 2], 16) for i in (1, 3, 5)) for r in classes]
    write_label_geotiff(path, labels, rec.crs, Affine(*rec.transform),
                        [r["name"] for r in classes], colors, nodata=IGNORE)


def export_semantic(project: Project, out: str | Path, *,
                    states: Iterable[str] | None = DEFAULT_STATES, unlabelled: str = "ignore",
                    geotiff: bool = True, images: str = "copy",
                    overwrite: bool = False) -> dict[str, Any]:
    """Write the semantic dataset atomically; return its manifest.

    ``images``: ``copy`` (default) or ``link`` puts each source image into ``<out>/images`` as
    the COCO export does (``images.json``'s ``image`` is then relative to ``<out>``: the folder
    moves to another machine whole); ``none`` leaves them out (``image`` is null)."""
    if unlabelled not in UNLABELLED_MODES:
        raise InputError(f"unlabelled must be one of {UNLABELLED_MODES}, got {unlabelled!r}")
    if images not in IMAGE_MODES:
        raise InputError(f"images must be one of {', '.join(IMAGE_MODES)}, got {images!r}")
    images_mode = images
    records = select_images(project, states)
    for rec in records:
        check_whole_image(rec.width, rec.height, f"image {rec.id} ({rec.path}) is too big for one "
                          "label file", "Export it as COCO (masks stay run-length encoded), or add the "
                          "scene as tiles (`project add-images PROJECT FILE --tile 4096`) and export those")
    index, table = class_index(project), classes_table(project)
    palette = palette_of(table)
    entries, pixel_counts = [], {r["name"]: 0 for r in table}
    with atomic_dir(out, overwrite=overwrite, protected=protected_by(project)) as tmp:
        (tmp / "labels").mkdir()
        placed = place_images(project, records, tmp, images_mode) if images_mode != "none" else {}
        for rec in records:
            labels = label_raster(rec, project.annotations(rec.id), index, unlabelled)
            stem = image_stem(rec)
            write_palette_png(tmp / "labels" / f"{stem}.png", labels, palette)
            entry: dict[str, Any] = {"image_id": rec.id, "image": placed.get(rec.id),
                                     "path": rec.path, "window": rec.window,
                                     "width": rec.width, "height": rec.height, "state": rec.state,
                                     "label_png": f"labels/{stem}.png", "label_tif": None}
            if geotiff and rec.georeferenced:
                _write_geotiff(tmp / "labels" / f"{stem}.tif", rec, labels, table)
                entry["label_tif"] = f"labels/{stem}.tif"
            values, counts = np.unique(labels, return_counts=True)
            by_value = dict(zip(values.tolist(), counts.tolist()))
            for row in table:
                pixel_counts[row["name"]] += int(by_value.get(row["index"], 0))
            entries.append(entry)
        write_json(tmp / "classes.json", table, indent=2)
        write_json(tmp / "images.json", entries, indent=2)
        return write_manifest(
            tmp, "semantic", project=project.location, project_id=project.project_id, classes=table,
            counts={"images": len(records), "geotiffs": sum(bool(e["label_tif"]) for e in entries),
                    "pixels": pixel_counts},
            options={"states": None if states is None else list(states),
                     "unlabelled": unlabelled, "ignore_value": IGNORE, "images": images_mode,
                     "overlap_rule": "highest score wins; equal scores: newest annotation"},
            images=entries,
            left_out=left_out(project, records, states))
