"""COCO instance-segmentation export that every COCO loader reads without dropping anything.

Written to ``<out>/annotations.json`` (and ``candidates.json`` with ``include_candidates``):

- ids start at 1 for images, annotations and categories (categories are numbered 1..K in
  class-id order; the manifest maps them back to the project's stable class ids);
- ``iscrowd`` is 0 for every instance;
- ``segmentation`` is compressed RLE with ``counts`` as a str (default), or polygons on request;
- ``bbox`` (xywh) and ``area`` come from the final stored mask; ``width``/``height`` are the
  image's (the window's, for tiles of a big scene).

Polygon rule (``polygons=True``): a mask is written as polygons (one ring per connected part,
tracing pixel edges, which pycocotools rasterises back to the same pixels) when no part has a
hole; a mask with a hole is written as RLE instead, because COCO polygons cannot express holes
(the manifest counts these fallbacks). ``area``/``bbox`` still come from the mask.

Portable by default: ``file_name`` is always a relative path, so the export folder can be moved
(to another folder or machine) and loaded there with ``COCO(out/annotations.json)`` and
``torchvision.datasets.CocoDetection(root=out, annFile=out/annotations.json)``:

- ``images="copy"`` (default): every image goes into ``<out>/images/`` and ``file_name`` is
  ``images/<id>_<stem>.<ext>``. Whole PNG/JPEG/TIFF/JP2 files are copied byte for byte (GeoTIFF
  georeferencing included); a window of a big scene is written as its own image file: a GeoTIFF
  with the window's CRS and transform when the source is georeferenced, else a PNG (8-bit 1/3/4
  bands) or a TIFF; other formats (VRT, ...) are written out the same way;
- ``images="link"``: like copy, but whole files are symbolic links to the originals (absolute
  targets: the folder moves on the same machine; windows are still written as files);
- ``images="none"``: nothing copied; ``file_name`` is the original path relative to
  ``image_root`` (default: the export folder), and windows keep their ``window`` entry.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from text2seg_widgets.errors import InputError
from text2seg_widgets.export.atomic import atomic_dir, write_json, write_manifest
from text2seg_widgets.core.masks import crop_to_mask, mask_to_polygons
from text2seg_widgets.export.common import (protected_by, DEFAULT_STATES, left_out, image_stem,
                                            read_pixels, select_images, write_pixels)
from text2seg_widgets.core import rle_area, rle_bbox
from text2seg_widgets.store import ImageRecord, Project

__all__ = ["export_coco", "build_coco", "mask_to_coco_polygons", "IMAGE_MODES", "place_images"]

log = logging.getLogger(__name__)


def mask_to_coco_polygons(mask: np.ndarray) -> list[list[float]] | None:
    """COCO polygons of a mask, or ``None`` when a part has a hole (then use RLE)."""
    crop, x0, y0 = crop_to_mask(mask)
    polys = mask_to_polygons(crop)
    if not polys or any(len(p.interiors) for p in polys):
        return None
    out = []
    for p in polys:
        xy = np.asarray(p.exterior.coords)[:-1] + (x0, y0)
        out.append([float(v) for v in xy.ravel()])
    return out


def _image_entry(coco_id: int, rec: ImageRecord, file_name: str,
                 cut_out: bool = False) -> dict[str, Any]:
    """One ``images`` entry. ``window`` (pixels of ``file_name`` the image is) only when the file
    is the whole source scene; a window written as its own file records where it came from in
    ``source_window`` instead."""
    entry: dict[str, Any] = {"id": coco_id, "file_name": file_name, "width": rec.width,
                             "height": rec.height, "text2seg_image_id": rec.id,
                             "review_state": rec.state}
    if rec.window:
        entry["source_window" if cut_out else "window"] = list(rec.window)
    return entry


def _segmentation(rle: dict[str, Any], polygons: bool, stats: dict[str, int]) -> Any:
    if polygons:
        from text2seg_widgets.core import rle_to_mask

        polys = mask_to_coco_polygons(rle_to_mask(rle))
        if polys is not None:
            stats["polygons"] += 1
            return polys
        stats["rle_fallback_holes"] += 1
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": str(rle["counts"])}


def _ann_entry(ann_id: int, image_id: int, category_id: int, rle: dict[str, Any], score: float,
               extra: dict[str, Any], polygons: bool, stats: dict[str, int]) -> dict[str, Any]:
    return {"id": ann_id, "image_id": image_id, "category_id": category_id,
            "segmentation": _segmentation(rle, polygons, stats), "area": float(rle_area(rle)),
            "bbox": rle_bbox(rle), "iscrowd": 0, "score": float(score), **extra}


def _file_name(rec: ImageRecord, image_root: Path | None) -> str:
    """The original file's path relative to ``image_root`` (absolute only without a root)."""
    if image_root is None:
        return str(Path(rec.path).absolute())
    return Path(os.path.relpath(Path(rec.path).absolute(), image_root.absolute())).as_posix()


def build_coco(project: Project, images: list[ImageRecord], *, polygons: bool = False,
               candidates: bool = False, image_root: Path | None = None,
               file_names: dict[int, str] | None = None) -> tuple[dict[str, Any], dict[str, int]]:
    """The COCO dict of the annotations (or, with ``candidates``, of the proposed candidates)."""
    cat_ids = {c.name: i for i, c in enumerate(project.classes, start=1)}
    categories = [{"id": i, "name": c.name, "supercategory": "", "color": c.color,
                   "text2seg_class_id": c.id} for i, c in enumerate(project.classes, start=1)]
    stats = {"polygons": 0, "rle_fallback_holes": 0, "skipped_empty": 0}
    coco_images: list[dict[str, Any]] = []
    anns: list[dict[str, Any]] = []
    for coco_img_id, rec in enumerate(images, start=1):
        name = (file_names or {}).get(rec.id)
        coco_images.append(_image_entry(coco_img_id, rec, name or _file_name(rec, image_root),
                                        cut_out=name is not None))
        if candidates:
            items = [(c.candidate.rle, c.class_name, c.candidate.score,
                      {"branch": c.candidate.branch, "prompt": c.candidate.prompt,
                       "model": c.candidate.model, "text2seg_candidate_id": c.id})
                     for c in project.candidates(rec.id, status="proposed")]
        else:
            items = [(a.rle, a.class_name, a.score,
                      {"source": a.source, "text2seg_annotation_id": a.id})
                     for a in project.annotations(rec.id)]
        for rle, class_name, score, extra in items:
            if rle_area(rle) == 0:
                stats["skipped_empty"] += 1
                continue
            anns.append(_ann_entry(len(anns) + 1, coco_img_id, cat_ids[class_name], rle, score,
                                   extra, polygons, stats))
    coco = {"info": {"description": f"text2seg-widgets export of {project.name}",
                     "version": "1.0"},
            "licenses": [], "images": coco_images, "annotations": anns, "categories": categories}
    return coco, stats


#: How :func:`export_coco` puts the images into the export (see the module doc).
IMAGE_MODES = ("copy", "link", "none")
#: Self-contained image files that are copied (or linked) as they are.
_COPYABLE = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".jp2"}


def _write_window(project: Project, rec: ImageRecord, folder: Path, subdir: str = "images") -> str:
    """Write one image's pixels (a window, or a file that is not self-contained) as a file:
    GeoTIFF when georeferenced, else PNG for 8-bit 1/3/4 bands, else TIFF."""
    import rasterio

    data = read_pixels(project, rec)
    png = rec.crs is None and data.dtype == np.uint8 and data.shape[0] in (1, 3, 4)
    name = f"{subdir}/{image_stem(rec)}.{'png' if png else 'tif'}"
    write_pixels(folder / name, data, crs=rec.crs,
                 transform=rasterio.Affine(*rec.transform) if rec.crs else None)
    return name


def place_images(project: Project, images: list[ImageRecord], folder: Path,
                 mode: str, subdir: str = "images") -> dict[int, str]:
    """Put each image into ``folder/<subdir>`` (``copy`` or ``link``; a window of a big scene, or
    a format other tools cannot read, is written as its own file); return id -> file name
    relative to ``folder``. Shared by the COCO, semantic and YOLO exports."""
    (folder / subdir).mkdir(parents=True, exist_ok=True)
    names = {}
    for rec in images:
        src = project.image_path(rec.id)  # InputError naming relink() when the file moved
        if rec.window is not None or src.suffix.lower() not in _COPYABLE:
            names[rec.id] = _write_window(project, rec, folder, subdir)
            continue
        name = f"{subdir}/{image_stem(rec)}{src.suffix.lower()}"
        if mode == "link":
            os.symlink(src.absolute(), folder / name)
        else:
            shutil.copyfile(src, folder / name)
        names[rec.id] = name
    return names


def export_coco(project: Project, out: str | Path, *,
                states: Iterable[str] | None = DEFAULT_STATES, polygons: bool = False,
                include_candidates: bool = False, images: str = "copy",
                image_root: str | Path | None = None, copy_images: bool | None = None,
                overwrite: bool = False) -> dict[str, Any]:
    """Write a COCO export folder atomically; return its manifest.

    ``states``: which images (default: done; ``None``: all); the manifest's ``left_out`` lists
    the others and why. ``images``: ``copy`` (default), ``link`` or ``none`` (module doc);
    ``image_root`` (with ``none``): the folder ``file_name`` is relative to (default: ``out``).
    ``copy_images`` is the older switch (True = ``copy``, False = ``none``). With
    ``include_candidates`` the still-proposed candidates of those images go to a separate
    ``candidates.json`` (same images and categories) for pseudo-label training."""
    if copy_images is not None:
        images = "copy" if copy_images else "none"
    if images not in IMAGE_MODES:
        raise InputError(f"images must be one of {', '.join(IMAGE_MODES)}, got {images!r}")
    mode = images
    records = select_images(project, states)
    root = Path(image_root) if image_root is not None else Path(out)
    with atomic_dir(out, overwrite=overwrite, protected=protected_by(project)) as tmp:
        names = place_images(project, records, tmp, mode) if mode != "none" else None
        coco, stats = build_coco(project, records, polygons=polygons, image_root=root,
                                 file_names=names)
        write_json(tmp / "annotations.json", coco)
        files = {"annotations": "annotations.json"}
        counts = {"images": len(records), "annotations": len(coco["annotations"]),
                  "categories": len(coco["categories"]), **stats}
        if include_candidates:
            cands, cstats = build_coco(project, records, polygons=polygons, candidates=True,
                                       image_root=root, file_names=names)
            write_json(tmp / "candidates.json", cands)
            files["candidates"] = "candidates.json"
            counts["candidates"] = len(cands["annotations"])
        manifest = write_manifest(
            tmp, "coco", files=files, counts=counts, project=project.location, project_id=project.project_id,
            options={"states": None if states is None else list(states), "polygons": polygons,
                     "include_candidates": include_candidates, "images": mode},
            classes=coco["categories"],
            images=[{"id": e["id"], "text2seg_image_id": r.id, "path": r.path,
                     "checksum": r.checksum, "state": r.state}
                    for e, r in zip(coco["images"], records)],
            left_out=left_out(project, records, states))
    return manifest
