"""Learning from the reviewer: decision analytics, calibrated thresholds, prompt pruning and a
review queue ordered by doubt.

Everything here reads the project through the public store API and imports only
:mod:`text2seg_widgets.core` and :mod:`text2seg_widgets.store` (never torch, widgets or pipeline).
"""

from __future__ import annotations

from text2seg_widgets.insights.analytics import (GROUP_KEYS, AcceptanceRow, acceptance_table,
                                                 format_acceptance, score_bin)
from text2seg_widgets.insights.decisions import OUTCOMES, Decision, decisions
from text2seg_widgets.insights.wilson import wilson_interval

__all__ = ["GROUP_KEYS", "AcceptanceRow", "acceptance_table", "format_acceptance", "score_bin",
           "OUTCOMES", "Decision", "decisions", "wilson_interval"]
