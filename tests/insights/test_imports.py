"""insights imports only core and store: importing it loads no torch, widgets or pipeline."""

from __future__ import annotations

import subprocess
import sys


def test_insights_imports_no_torch_widgets_or_pipeline():
    code = ("import sys, text2seg_widgets.insights, text2seg_widgets.insights.standin; "
            "print(sorted(m for m in ('torch', 'ipywidgets', 'text2seg_widgets.widgets', "
            "'text2seg_widgets.pipeline', 'text2seg_widgets.eval') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
