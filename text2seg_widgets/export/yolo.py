"""YOLO segmentation dataset (the Ultralytics ``segment`` format), with a seeded split by image.

Layout::

    <out>/images/<split>/<stem>.<ext>     the source images (copied, linked, or windows written)
    <out>/labels/<split>/<stem>.txt       one line per polygon: "<class> x1 y1 x2 y2 ..."
    <out>/data.yaml                       path, train/val/test folders, names {index: class}

Coordinates are normalised by the image width and height (0..1), polygon vertices are the
pixel-corner outline of each mask (4-connected, as the vector export draws them), so rasterising
a polygon at pixel centres gives the mask back. Class indices are 0-based in project class order.
The format has no holes and one polygon per line: a mask of several parts writes one line per
part, and holes are dropped (counted in the manifest as ``holes_dropped``). Images of an empty
split are left out of ``data.yaml`` except ``val``, which then points at ``train`` (Ultralytics
needs a validation set) and the manifest says so.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from text2seg_widgets.core.masks import crop_to_mask, mask_to_polygons
from text2seg_widgets.errors import InputError
from text2seg_widgets.export.atomic import atomic_dir, write_manifest
from text2seg_widgets.export.chips import SPLITS, assign_split
from text2seg_widgets.export.coco import place_images
from text2seg_widgets.export.common import DEFAULT_STATES, left_out, protected_by, select_images
from text2seg_widgets.store import AnnotationRecord, ImageRecord, Project

__all__ = ["export_yolo_seg", "polygon_lines"]

_MODES = ("copy", "link")


def polygon_lines(annotations: Sequence[AnnotationRecord], class_ids: dict[str, int], width: int,
                  height: int) -> tuple[list[str], int]:
    """The label lines of one image and how many holes were dropped (see the module doc)."""
    lines, holes = [], 0
    for ann in sorted(annotations, key=lambda a: a.id):
        crop, x0, y0 = crop_to_mask(ann.mask(), pad=1)
        for poly in mask_to_polygons(crop):
            holes += len(poly.interiors)
            ring = np.asarray(poly.exterior.coords)[:-1]  # the closing vertex repeats the first
            if len(ring) < 3:
                continue
            xs = np.clip((ring[:, 0] + x0) / width, 0.0, 1.0)
            ys = np.clip((ring[:, 1] + y0) / height, 0.0, 1.0)
            coords = " ".join(f"{x:.6f} {y:.6f}" for x, y in zip(xs, ys))
            lines.append(f"{class_ids[ann.class_name]} {coords}")
    return lines, holes


def _data_yaml(names: list[str], used: set[str]) -> tuple[str, str | None]:
    """``data.yaml`` text and a note when ``val`` had to point at ``train``."""
    import yaml

    data: dict[str, Any] = {"path": ".", "train": "images/train"}
    note = None
    if "val" in used:
        data["val"] = "images/val"
    else:
        data["val"] = "images/train"
        note = "no image fell into the val split: data.yaml's val points at the train images"
    if "test" in used:
        data["test"] = "images/test"
    data["names"] = {i: name for i, name in enumerate(names)}
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True), note


def export_yolo_seg(project: Project, out: str | Path, *,
                    states: Iterable[str] | None = DEFAULT_STATES, images: str = "copy",
                    ratios: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0,
                    overwrite: bool = False) -> dict[str, Any]:
    """Write the YOLO segmentation dataset atomically; return its manifest."""
    if images not in _MODES:
        raise InputError(f"images must be one of {', '.join(_MODES)} for a YOLO export (the "
                         f"format reads images beside the labels), got {images!r}")
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise InputError(f"split ratios must be three non-negative numbers (train, val, test), got {ratios}")
    records = select_images(project, states)
    names = [c.name for c in project.classes]
    class_ids = {name: i for i, name in enumerate(names)}
    by_split: dict[str, list[ImageRecord]] = {s: [] for s in SPLITS}
    for rec in records:
        by_split[assign_split(seed, f"image:{rec.id}", ratios)].append(rec)
    counts = {"images": len(records), "polygons": 0, "holes_dropped": 0,
              **{f"images_{s}": len(v) for s, v in by_split.items()}}
    entries = []
    with atomic_dir(out, overwrite=overwrite, protected=protected_by(project)) as tmp:
        for split, recs in by_split.items():
            if not recs:
                continue
            placed = place_images(project, recs, tmp, images, subdir=f"images/{split}")
            (tmp / "labels" / split).mkdir(parents=True)
            for rec in recs:
                lines, holes = polygon_lines(project.annotations(rec.id), class_ids, rec.width, rec.height)
                label = f"labels/{split}/{Path(placed[rec.id]).stem}.txt"
                (tmp / label).write_text("".join(line + "\n" for line in lines), encoding="utf-8")
                counts["polygons"] += len(lines)
                counts["holes_dropped"] += holes
                entries.append({"image_id": rec.id, "split": split, "image": placed[rec.id],
                                "label": label, "path": rec.path, "polygons": len(lines)})
        text, note = _data_yaml(names, {s for s, v in by_split.items() if v})
        (tmp / "data.yaml").write_text(text, encoding="utf-8")
        return write_manifest(
            tmp, "yolo-seg", project=project.location, project_id=project.project_id,
            classes=[{"index": i, "name": n} for i, n in enumerate(names)], counts=counts,
            options={"states": None if states is None else list(states), "images": images,
                     "ratios": list(ratios), "seed": seed}, notes=[note] if note else [],
            images=entries, left_out=left_out(project, records, states))
