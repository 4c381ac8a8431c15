"""Training-ready exports of a project (never imports torch): COCO instances, semantic label
images, chips with splits, vectors, YOLO segmentation; COCO import; review statistics.

Every export is a folder written atomically with a ``manifest.json`` (see :mod:`.atomic`).
"""

from __future__ import annotations

from text2seg_widgets.export.atomic import read_manifest
from text2seg_widgets.export.chips import export_chips
from text2seg_widgets.export.coco import build_coco, export_coco
from text2seg_widgets.export.coco_import import import_coco
from text2seg_widgets.export.common import IGNORE, label_raster
from text2seg_widgets.export.review import export_review_stats
from text2seg_widgets.export.semantic import export_semantic
from text2seg_widgets.export.vectors import export_vectors
from text2seg_widgets.export.yolo import export_yolo_seg

__all__ = ["export_coco", "build_coco", "import_coco", "export_semantic", "export_chips",
           "export_vectors", "export_yolo_seg", "export_review_stats", "read_manifest", "label_raster", "IGNORE"]
