"""The lowest floor: the Candidate record and the mask helpers every other folder shares.

Nothing here imports another folder of this package, so ``pipeline``, ``store``, ``export``,
``widgets`` and ``eval`` can all import it without reaching up or sideways.
"""

from __future__ import annotations

from text2seg_widgets.core.candidate import BRANCHES, Candidate
from text2seg_widgets.core.masks import (as_coco_rle, boxes_overlap, crop_to_mask, mask_bbox_xywh, mask_bbox_xyxy,
                                         mask_iou, mask_to_polygons, mask_to_rle, rle_area, rle_bbox,
                                         rle_to_mask)

__all__ = ["BRANCHES", "Candidate", "as_coco_rle", "boxes_overlap", "crop_to_mask", "mask_bbox_xywh", "mask_bbox_xyxy",
           "mask_iou", "mask_to_polygons", "mask_to_rle", "rle_area", "rle_bbox", "rle_to_mask"]
