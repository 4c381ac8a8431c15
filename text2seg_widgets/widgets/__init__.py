"""The Annotator: an ipywidgets + ipyleaflet app to review and correct candidates in JupyterLab.

This is the only package that imports ipywidgets / ipyleaflet / ipyevents.
"""

from __future__ import annotations

from text2seg_widgets.widgets.annotator import Annotator
from text2seg_widgets.widgets.shortcuts import KEYMAP

__all__ = ["Annotator", "KEYMAP"]
