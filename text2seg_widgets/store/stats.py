"""Review statistics: images by state, candidate outcomes per class and per branch, and how much
annotators corrected accepted candidates (mask IoU between each annotation and its source)."""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from text2seg_widgets.core.masks import as_coco_rle
from text2seg_widgets.store.db import Database
from text2seg_widgets.store.schema import CANDIDATE_STATUSES, IMAGE_STATES

__all__ = ["review_stats", "annotation_candidate_iou", "OWN_IMAGES"]

#: The project's own images (replicas, labelled for agreement or as honeypots, are counted apart:
#: see :mod:`.agreement`).
OWN_IMAGES = "(SELECT id FROM images WHERE replica = '')"


def annotation_candidate_iou(db: Database) -> list[dict[str, Any]]:
    """One row per annotation that came from a candidate: ids, class, branch and IoU between
    the annotation's mask and the candidate's (1.0 = accepted unedited)."""
    rows = db.query(
        "SELECT a.id AS annotation_id, a.candidate_id, a.counts AS a_counts, a.height, a.width, "
        "c.counts AS c_counts, c.branch, cl.name AS class_name FROM annotations a "
        "JOIN candidates c ON c.id = a.candidate_id JOIN classes cl ON cl.id = a.class_id "
        f"WHERE a.image_id IN {OWN_IMAGES} ORDER BY a.id")
    out = []
    for r in rows:
        if r["a_counts"] == r["c_counts"]:
            iou = 1.0
        else:
            a = as_coco_rle({"size": [r["height"], r["width"]], "counts": r["a_counts"]})
            c = as_coco_rle({"size": [r["height"], r["width"]], "counts": r["c_counts"]})
            iou = float(mask_utils.iou([a], [c], [0])[0][0])
        out.append({"annotation_id": r["annotation_id"], "candidate_id": r["candidate_id"],
                    "class_name": r["class_name"], "branch": r["branch"], "iou": iou})
    return out


def _summary(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"count": 0, "mean": None, "median": None, "min": None}
    arr = np.asarray(values, dtype=float)
    return {"count": int(arr.size), "mean": float(arr.mean()), "median": float(np.median(arr)),
            "min": float(arr.min())}


def _counts(db: Database, key: str) -> dict[str, dict[str, int]]:
    rows = db.query(f"SELECT {key} AS k, status, COUNT(*) AS n FROM candidates c "
                    f"JOIN classes cl ON cl.id = c.class_id WHERE c.image_id IN {OWN_IMAGES} "
                    "GROUP BY k, status")
    out: dict[str, dict[str, int]] = defaultdict(lambda: {s: 0 for s in CANDIDATE_STATUSES})
    for r in rows:
        out[r["k"]][r["status"]] = int(r["n"])
    return dict(out)


def review_stats(db: Database) -> dict[str, Any]:
    """A JSON-ready dict: ``images`` (total, by_state, with_annotations), ``annotations`` (total,
    by_class, by_source), ``candidates`` (by_status, by_class, by_branch: proposed/accepted/
    rejected counts) and ``agreement`` (IoU summary overall, by class and by branch)."""
    by_state = {s: 0 for s in IMAGE_STATES}
    for r in db.query("SELECT state, COUNT(*) AS n FROM images WHERE replica = '' GROUP BY state"):
        by_state[r["state"]] = int(r["n"])
    ann_class = {r["name"]: int(r["n"]) for r in db.query(
        "SELECT cl.name, COUNT(a.id) AS n FROM classes cl LEFT JOIN annotations a "
        f"ON a.class_id = cl.id AND a.image_id IN {OWN_IMAGES} GROUP BY cl.id ORDER BY cl.id")}
    ann_source = {r["source"]: int(r["n"]) for r in db.query(
        f"SELECT source, COUNT(*) AS n FROM annotations WHERE image_id IN {OWN_IMAGES} "
        "GROUP BY source")}
    by_status = {s: 0 for s in CANDIDATE_STATUSES}
    for r in db.query(f"SELECT status, COUNT(*) AS n FROM candidates WHERE image_id IN {OWN_IMAGES} "
                      "GROUP BY status"):
        by_status[r["status"]] = int(r["n"])
    ious = annotation_candidate_iou(db)
    by_cls: dict[str, list[float]] = defaultdict(list)
    by_branch: dict[str, list[float]] = defaultdict(list)
    for row in ious:
        by_cls[row["class_name"]].append(row["iou"])
        by_branch[row["branch"]].append(row["iou"])
    with_ann = db.query(f"SELECT COUNT(DISTINCT image_id) FROM annotations WHERE image_id IN "
                        f"{OWN_IMAGES}")[0][0]
    return json.loads(json.dumps({
        "images": {"total": sum(by_state.values()), "by_state": by_state,
                   "with_annotations": int(with_ann)},
        "annotations": {"total": sum(ann_class.values()), "by_class": ann_class,
                        "by_source": ann_source},
        "candidates": {"total": sum(by_status.values()), "by_status": by_status,
                       "by_class": _counts(db, "cl.name"), "by_branch": _counts(db, "c.branch")},
        "agreement": {"overall": _summary([r["iou"] for r in ious]),
                      "by_class": {k: _summary(v) for k, v in by_cls.items()},
                      "by_branch": {k: _summary(v) for k, v in by_branch.items()}},
    }))
