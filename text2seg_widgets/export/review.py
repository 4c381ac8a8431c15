"""Review statistics export: ``stats.json`` (see :func:`text2seg_widgets.store.stats.review_stats`)
and ``agreement.csv`` (one row per accepted annotation: IoU with the candidate it came from)."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from text2seg_widgets.export.atomic import atomic_dir, write_json, write_manifest
from text2seg_widgets.export.common import protected_by
from text2seg_widgets.store import Project

__all__ = ["export_review_stats"]


def export_review_stats(project: Project, out: str | Path, *,
                        overwrite: bool = False) -> dict[str, Any]:
    """Write the statistics folder atomically; return the statistics dict."""
    stats = project.stats()
    rows = project.agreement()
    with atomic_dir(out, overwrite=overwrite, protected=protected_by(project)) as tmp:
        write_json(tmp / "stats.json", stats, indent=2)
        with open(tmp / "agreement.csv", "w", newline="", encoding="utf-8") as fh:
            writer = csv.DictWriter(fh, fieldnames=["annotation_id", "candidate_id", "class_name",
                                                    "branch", "iou"])
            writer.writeheader()
            writer.writerows(rows)
        write_manifest(tmp, "review-stats", project=project.location, project_id=project.project_id,
                       counts={"images": stats["images"]["total"],
                               "annotations": stats["annotations"]["total"],
                               "agreement_rows": len(rows)})
    return stats
