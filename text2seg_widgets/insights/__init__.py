"""Learning from the reviewer: decision analytics, calibrated thresholds, prompt pruning and a
review queue ordered by doubt.

Everything here reads the project through the public store API and imports only
:mod:`text2seg_widgets.core` and :mod:`text2seg_widgets.store` (never torch, widgets or pipeline).
"""

from __future__ import annotations

from text2seg_widgets.insights.analytics import (GROUP_KEYS, AcceptanceRow, acceptance_table,
                                                 format_acceptance, score_bin)
from text2seg_widgets.insights.autoaccept import (AcceptPlan, GroupPlan, accept_above_calibrated,
                                                  preview_accept_calibrated)
from text2seg_widgets.insights.calibration import (CALIBRATION_FILE, Threshold, calibrate, fit_thresholds,
                                                   load_calibration, save_calibration)
from text2seg_widgets.insights.decisions import OUTCOMES, Decision, decisions
from text2seg_widgets.insights.prompts import (PromptStat, PruneResult, format_class_file, prompt_stats,
                                               prune_classes, prune_prompts, write_class_file)
from text2seg_widgets.insights.queue import QueueItem, review_queue
from text2seg_widgets.insights.wilson import wilson_interval

__all__ = ["GROUP_KEYS", "AcceptanceRow", "acceptance_table", "format_acceptance", "score_bin",
           "AcceptPlan", "GroupPlan", "accept_above_calibrated", "preview_accept_calibrated",
           "CALIBRATION_FILE", "Threshold", "calibrate", "fit_thresholds", "load_calibration",
           "save_calibration", "OUTCOMES", "Decision", "decisions", "wilson_interval",
           "PromptStat", "PruneResult", "format_class_file", "prompt_stats", "prune_classes", "prune_prompts",
           "write_class_file", "QueueItem", "review_queue"]
