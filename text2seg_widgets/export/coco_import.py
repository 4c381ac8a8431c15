"""Load an existing COCO instances file (from another tool, or an earlier export) into a project.

Images are matched by path (``file_name`` relative to ``image_root``, default the COCO file's
folder; absolute names stay as they are) and window, and added when missing. Categories map to
project classes by name. Segmentations may be polygons, uncompressed or compressed RLE; an
annotation without a mask is skipped and counted. ``as_="annotations"`` adds them all as one
undoable action; ``as_="candidates"`` stores them as proposals (branch ``import``) to review.
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from text2seg_widgets.errors import InputError
from text2seg_widgets.core import Candidate, rle_to_mask
from text2seg_widgets.store import ImageRecord, Project

__all__ = ["import_coco", "coco_segmentation_to_mask"]

log = logging.getLogger(__name__)


def coco_segmentation_to_mask(seg: Any, height: int, width: int) -> np.ndarray | None:
    """Decode a COCO ``segmentation`` (polygons / RLE) to a bool mask; ``None`` if there is none."""
    if isinstance(seg, list):
        polys = [p for p in seg if isinstance(p, list) and len(p) >= 6]
        if not polys:
            return None
        return mask_utils.decode(mask_utils.merge(
            mask_utils.frPyObjects(polys, height, width))).astype(bool)
    if isinstance(seg, dict) and "counts" in seg:
        if [int(v) for v in seg.get("size", [height, width])] != [height, width]:
            raise InputError(f"RLE size {seg.get('size')} differs from the image size "
                             f"[{height}, {width}]")
        return rle_to_mask({"size": [height, width], "counts": seg["counts"]})
    return None


def _load(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"cannot read COCO file {path}: {exc}") from exc
    if not isinstance(data, dict) or not {"images", "annotations", "categories"} <= set(data):
        raise InputError(f"{path} is not a COCO instances file (needs images, annotations and "
                         "categories)")
    return data


def _match_classes(project: Project, categories: list[dict[str, Any]],
                   add_classes: bool) -> dict[int, str]:
    known = {c.name for c in project.classes}
    missing = sorted({str(c["name"]) for c in categories} - known)
    if missing and not add_classes:
        raise InputError(f"COCO categories {missing} are not project classes; add them with "
                         "project.add_class(...) or import with add_classes=True")
    for name in missing:
        project.add_class(name)
    return {int(c["id"]): str(c["name"]) for c in categories}


def _match_image(project: Project, entry: dict[str, Any], root: Path,
                 existing: dict[tuple[str, Any], ImageRecord], add_images: bool) -> ImageRecord:
    path = Path(entry["file_name"])
    path = (path if path.is_absolute() else root / path).resolve()
    window = tuple(entry["window"]) if entry.get("window") else None
    rec = existing.get((str(path), window))
    if rec is None:
        if not add_images:
            raise InputError(f"COCO image {entry['file_name']} is not in the project; add it "
                             "first or import with add_images=True")
        rec = project.add_image(path, window=window)
    if (rec.width, rec.height) != (int(entry["width"]), int(entry["height"])):
        raise InputError(f"COCO says {entry['file_name']} is {entry['width']} x "
                         f"{entry['height']} but the file is {rec.width} x {rec.height}")
    return rec


def import_coco(project: Project, coco_path: str | Path, *, as_: str = "annotations",
                image_root: str | Path | None = None, add_images: bool = True,
                add_classes: bool = False, run_id: int | None = None) -> dict[str, int]:
    """Import a COCO file; returns counts (images, imported, skipped_no_mask). An automatic
    backup of the project is taken before anything is written."""
    if as_ not in ("annotations", "candidates"):
        raise InputError(f"as_ must be 'annotations' or 'candidates', got {as_!r}")
    coco_path = Path(coco_path)
    data = _load(coco_path)
    project.auto_backup(f"import coco {coco_path.name}")  # before the first write
    root = Path(image_root) if image_root is not None else coco_path.parent
    cat_names = _match_classes(project, data["categories"], add_classes)
    existing = {(str(Path(r.path).resolve()), r.window): r for r in project.images()}
    images = {int(e["id"]): _match_image(project, e, root, existing, add_images)
              for e in data["images"]}
    items: dict[int, list[tuple[np.ndarray, str, float]]] = defaultdict(list)
    skipped = 0
    for ann in data["annotations"]:
        rec = images.get(int(ann["image_id"]))
        if rec is None:
            raise InputError(f"COCO annotation {ann.get('id')} refers to image "
                             f"{ann['image_id']}, which the file does not list")
        mask = coco_segmentation_to_mask(ann.get("segmentation"), rec.height, rec.width)
        if mask is None or not mask.any():
            skipped += 1
            continue
        items[rec.id].append((mask, cat_names[int(ann["category_id"])],
                              float(ann.get("score", 1.0))))
    n = sum(len(v) for v in items.values())
    if as_ == "annotations":
        project.add_annotations(
            [{"image_id": i, "mask": m, "class_name": c, "score": s, "source": "import"}
             for i, group in items.items() for m, c, s in group],
            description=f"import {n} annotations from {coco_path.name}")
    else:
        for image_id, group in items.items():
            project.add_candidates(image_id, [
                Candidate.from_mask(m, class_name=c, score=s, branch="import",
                                    model=coco_path.name) for m, c, s in group], run_id=run_id)
    log.info("imported %d %s from %s (%d without a mask skipped)", n, as_, coco_path, skipped)
    return {"images": len(images), "imported": n, "skipped_no_mask": skipped}
