"""The side panel: progress, messages, candidate list, review buttons, tools, prompts, help.

The panel only builds widgets and forwards user events to the :class:`Annotator`'s action
methods; it holds no state of its own that the store does not also hold. Every control carries a
``t2s-*`` CSS class so that browser tests (and custom CSS) can find it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

import ipywidgets as w

from text2seg_widgets.widgets.shortcuts import help_html

if TYPE_CHECKING:  # pragma: no cover
    from text2seg_widgets.widgets.annotator import Annotator

__all__ = ["SidePanel", "MODES", "BRANCH_NAMES"]

#: click modes of the map: select masks, or add positive / negative SAM points
MODES = (("select", "select"), ("+ point", "positive"), ("- point", "negative"))
BRANCH_NAMES = ("detector", "heatmap", "filter", "concept")


def _button(description: str, css: str, tooltip: str = "", style: str = "") -> w.Button:
    b = w.Button(description=description, tooltip=tooltip, button_style=style,
                 layout=w.Layout(width="auto", min_width="60px"))
    b.add_class(css)
    return b


class SidePanel:
    """All controls of the annotator's right-hand column."""

    def __init__(self, class_names: Sequence[str], width: str = "340px") -> None:
        self.progress = w.HTML().add_class("t2s-progress")
        self.message = w.HTML().add_class("t2s-message")
        self.class_picker = w.Dropdown(options=list(class_names), description="class",
                                       layout=w.Layout(width="95%")).add_class("t2s-class")
        self.items = w.Select(options=[], rows=10, layout=w.Layout(width="95%")).add_class("t2s-items")
        self.accept = _button("Accept", "t2s-accept", "accept the selected candidate (a)", "success")
        self.reject = _button("Reject", "t2s-reject", "reject the selected candidate (r)", "danger")
        self.relabel = _button("Relabel", "t2s-relabel", "give the selected mask the class above")
        self.delete = _button("Delete", "t2s-delete", "delete the selected annotation (Delete)")
        self.min_score = w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="score >=",
                                       layout=w.Layout(width="70%")).add_class("t2s-min-score")
        self.accept_above = _button("Accept all", "t2s-accept-above", "accept every proposed candidate above the score")
        self.next = _button("Next image", "t2s-next", "mark this image reviewed and open the next unreviewed (n)",
                            "primary")
        self.undo = _button("Undo", "t2s-undo", "undo (z / ctrl+z)")
        self.redo = _button("Redo", "t2s-redo", "redo (y / ctrl+y)")
        self.mode = w.ToggleButtons(options=list(MODES), value="select",
                                    style={"button_width": "auto"}).add_class("t2s-mode")
        self.polygon_mode = w.ToggleButtons(options=[("polygon adds", "add"), ("polygon cuts", "subtract")],
                                            value="add", style={"button_width": "auto"}).add_class("t2s-polymode")
        self.prompt = w.Text(placeholder="text prompt, e.g. red roof", layout=w.Layout(width="65%")
                             ).add_class("t2s-prompt")
        self.run = _button("Run", "t2s-run", "run the Text2Seg pipeline on this image for the chosen class")
        self.running = w.IntProgress(value=0, min=0, max=1, bar_style="info",
                                     layout=w.Layout(width="95%", visibility="hidden")).add_class("t2s-running")
        self.branches = {b: w.Checkbox(value=b in ("detector", "heatmap", "filter"), description=b, indent=False,
                                       layout=w.Layout(width="auto")) for b in BRANCH_NAMES}
        self.box_threshold = w.FloatSlider(value=0.3, min=0.05, max=0.95, step=0.05, description="box thr")
        self.clip_threshold = w.FloatSlider(value=0.2, min=0.0, max=1.0, step=0.05, description="clip thr")
        self.legend = w.HTML().add_class("t2s-legend")
        self.help = w.HTML(help_html())
        self._bound: list[tuple[str, Any, Any]] = []
        self.widget = self._layout(width)

    def _layout(self, width: str) -> w.VBox:
        settings = w.VBox([w.HBox(list(self.branches.values())), self.box_threshold, self.clip_threshold])
        extras = w.Accordion(children=[settings, self.help], titles=("prompt settings", "help"))
        extras.selected_index = None
        box = w.VBox([
            self.progress, self.message, self.class_picker, self.items,
            w.HBox([self.accept, self.reject, self.relabel, self.delete]),
            w.HBox([self.min_score, self.accept_above]),
            w.HBox([self.next, self.undo, self.redo]),
            self.mode, self.polygon_mode,
            w.HBox([self.prompt, self.run]), self.running,
            self.legend, extras,
        ], layout=w.Layout(width=width, min_width=width, padding="0 0 0 8px"))
        return box.add_class("t2s-panel")

    def bind(self, app: "Annotator") -> None:
        """Forward every control's events to ``app``'s action methods (undone by :meth:`unbind`)."""
        clicks = {
            self.accept: lambda _b: app._ui(app.accept_selected),
            self.reject: lambda _b: app._ui(app.reject_selected),
            self.relabel: lambda _b: app._ui(app.relabel_selected, self.class_picker.value),
            self.delete: lambda _b: app._ui(app.delete_selected),
            self.accept_above: lambda _b: app._ui(app.accept_above, self.min_score.value),
            self.next: lambda _b: app._ui(app.next_image),
            self.undo: lambda _b: app._ui(app.undo),
            self.redo: lambda _b: app._ui(app.redo),
            self.run: lambda _b: app._ui(app.run_prompt, self.prompt.value or None, self.class_picker.value),
        }
        for button, handler in clicks.items():
            button.on_click(handler)
            self._bound.append(("click", button, handler))
        observers = {
            self.mode: lambda ch: app._ui(app.set_mode, ch["new"]),
            self.class_picker: lambda ch: app._ui(app.set_class, ch["new"]),
            self.items: self._picked(app),
        }
        for widget, handler in observers.items():
            widget.observe(handler, names="value")
            self._bound.append(("value", widget, handler))

    def unbind(self) -> None:
        """Disconnect every handler :meth:`bind` connected."""
        for kind, widget, handler in self._bound:
            if kind == "click":
                widget.on_click(handler, remove=True)
            else:
                widget.unobserve(handler, names="value")
        self._bound.clear()

    def _picked(self, app: "Annotator") -> Any:
        def handler(change: dict[str, Any]) -> None:
            value = change["new"]
            if value and not app._syncing and value != app.selection:
                app._ui(app.select, value)
        return handler

    def branch_settings(self) -> dict[str, Any]:
        """The settings panel as plain values: enabled branches and thresholds."""
        return {"branches": tuple(b for b, cb in self.branches.items() if cb.value),
                "box_threshold": float(self.box_threshold.value),
                "clip_threshold": float(self.clip_threshold.value)}
