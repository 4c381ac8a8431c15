"""Evaluation against ground truth: confusion-matrix mIoU over all pixels (:mod:`.confusion`),
label loaders with class mappings (:mod:`.labels`), evaluation of every prediction source
including projects per branch (:mod:`.semantic`), and the simulated-click annotation effort,
NoC@85/90 (:mod:`.noc`)."""

from __future__ import annotations

from text2seg_widgets.eval.confusion import (IGNORE_INDEX, ConfusionMatrix, EvalResult, format_table, write_csv,
                                             write_json)
from text2seg_widgets.eval.labels import (LabelMapping, available_presets, find_label_files, load_label,
                                          load_mapping)
from text2seg_widgets.eval.noc import (Click, GTObject, NoCSummary, ObjectTrace, label_objects,
                                       next_click, simulate_image, simulate_object, summarize)
from text2seg_widgets.eval.semantic import (evaluate, evaluate_arrays, evaluate_label_files, evaluate_project,
                                            rasterize)

__all__ = [
    "IGNORE_INDEX", "ConfusionMatrix", "EvalResult", "format_table", "write_csv", "write_json",
    "LabelMapping", "available_presets", "find_label_files", "load_label", "load_mapping",
    "Click", "GTObject", "NoCSummary", "ObjectTrace", "label_objects", "next_click",
    "simulate_image", "simulate_object", "summarize",
    "evaluate", "evaluate_arrays", "evaluate_label_files", "evaluate_project", "rasterize",
]
