"""The side panel: progress, messages, image navigation, candidate list, review buttons, tools,
prompts, help.

The panel only builds widgets and forwards user events to the callables it is bound to; it holds
no state of its own that the store does not also hold. Every control carries a ``t2s-*`` CSS class
so that browser tests (and custom CSS) can find it. The message area has a fixed height and wraps
long text, so messages never push the buttons down.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import ipywidgets as w

from text2seg_widgets.widgets.shortcuts import help_html

__all__ = ["SidePanel", "TOOLS", "BRANCH_NAMES", "FILTERS", "PANEL_CSS", "key_regions"]

#: (label, tool) of the map tools: select masks; draw a SAM box, a polygon that adds a mask or one
#: that cuts from the selected mask; positive / negative SAM points
TOOLS = (("select", "select"), ("box", "box"), ("polygon adds", "polygon-add"),
         ("polygon cuts", "polygon-cut"), ("+ point", "positive"), ("- point", "negative"))
BRANCH_NAMES = ("detector", "heatmap", "filter", "concept")
#: (label, value) of the image filter; "all" stands for no filter
FILTERS = (("all images", "all"), ("unreviewed", "unreviewed"), ("candidates left", "candidates left"),
           ("in progress", "in progress"), ("done", "done"), ("skipped", "skipped"))

#: CSS scoped to the annotator: toggle-button groups wrap inside the panel instead of overflowing
#: it (ipywidgets lays them out on one line), with compact buttons; the panel is as tall as the map
#: and scrolls on its own, so its rows keep their height instead of being squeezed
PANEL_CSS = """<style>
.t2s-annotator .t2s-tool, .t2s-annotator .t2s-order { flex-wrap: wrap; height: auto; }
.t2s-annotator .t2s-tool > div, .t2s-annotator .t2s-order > div { display: flex; flex-wrap: wrap; }
.t2s-annotator .t2s-tool .jupyter-button, .t2s-annotator .t2s-order .jupyter-button {
  padding: 0 6px; margin: 1px; }
.t2s-annotator .t2s-message .widget-html-content { white-space: normal; }
.t2s-annotator .t2s-panel > *, .t2s-annotator .t2s-panel .t2s-keys > * { flex-shrink: 0; }
</style>"""


def _button(description: str, css: str, tooltip: str = "", style: str = "") -> w.Button:
    b = w.Button(description=description, tooltip=tooltip, button_style=style,
                 layout=w.Layout(width="auto", min_width="44px"))
    b.add_class(css)
    return b


def _row(children: Sequence[w.Widget]) -> w.HBox:
    """A row that wraps instead of overflowing the panel."""
    return w.HBox(list(children), layout=w.Layout(flex_flow="row wrap", width="100%"))


class SidePanel:
    """All controls of the annotator's right-hand column."""

    def __init__(self, class_names: Sequence[str], width: str = "400px", height: str | None = None) -> None:
        self.css = w.HTML(PANEL_CSS, layout=w.Layout(height="0px", margin="0")).add_class("t2s-css")
        self.progress = w.HTML().add_class("t2s-progress")
        self.message = w.HTML(layout=w.Layout(height="4.5em", overflow="auto", width="95%")
                              ).add_class("t2s-message")
        self._navigation_controls()
        self._review_controls(class_names)
        self._tool_controls()
        self._prompt_controls()
        self.legend = w.HTML().add_class("t2s-legend")
        self.help = w.HTML(help_html()).add_class("t2s-help")
        self._bound: list[tuple[str, Any, Any]] = []
        self.widget = self._layout(width, height)

    def _navigation_controls(self) -> None:
        self.previous = _button("\u25c0", "t2s-prev", "previous image in the list (,)")
        self.next = _button("Next image", "t2s-next", "mark this image done (when nothing is left to review) "
                            "and open the next one to review (n)", "primary")
        self.forward = _button("\u25b6", "t2s-forward", "next image in the list, without marking anything (.)")
        self.done_reject = _button("Done: reject rest", "t2s-done-reject",
                                   "reject the candidates left, mark this image done, open the next (d)")
        self.skip = _button("Skip", "t2s-skip", "mark this image skipped (left out of exports), open the next (x)")
        self.filter = w.Dropdown(options=list(FILTERS), value="all", description="show",
                                 layout=w.Layout(width="55%"), style={"description_width": "40px"}
                                 ).add_class("t2s-filter")
        self.goto = w.Text(placeholder="go to id or name", continuous_update=False,
                           layout=w.Layout(width="40%")).add_class("t2s-goto")
        self.images = w.Select(options=[], rows=6, layout=w.Layout(width="98%")).add_class("t2s-images")
        self.order = w.ToggleButtons(options=[("image order", "images"), ("review queue", "queue")],
                                     value="images", style={"button_width": "auto"},
                                     tooltips=["previous/next follow the image list (q)",
                                               "previous/next follow the review queue: most doubtful "
                                               "candidates first (q)"]).add_class("t2s-order")

    def _review_controls(self, class_names: Sequence[str]) -> None:
        self.class_picker = w.Dropdown(options=list(class_names), description="class",
                                       layout=w.Layout(width="95%")).add_class("t2s-class")
        self.items = w.Select(options=[], rows=8, layout=w.Layout(width="95%")).add_class("t2s-items")
        self.accept = _button("Accept", "t2s-accept", "accept the selected candidate (a)", "success")
        self.reject = _button("Reject", "t2s-reject", "reject the selected candidate (r)", "danger")
        self.relabel = _button("Relabel", "t2s-relabel", "give the selected mask the class above")
        self.delete = _button("Delete", "t2s-delete", "delete the selected annotation (Delete)")
        self.min_score = w.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="score >=",
                                       layout=w.Layout(width="65%")).add_class("t2s-min-score")
        self.accept_above = _button("Accept all", "t2s-accept-above",
                                    "accept every proposed candidate above the score")
        self.undo = _button("Undo", "t2s-undo", "undo (z / ctrl+z); opens the image it changes")
        self.redo = _button("Redo", "t2s-redo", "redo (y / ctrl+y); opens the image it changes")

    def _tool_controls(self) -> None:
        self.tool = w.ToggleButtons(options=list(TOOLS), value="select", style={"button_width": "auto"},
                                    tooltips=["click a mask to select it; click the empty map to deselect (s)",
                                              "draw a box: SAM makes a new mask (b)",
                                              "draw a polygon: a new mask (o)",
                                              "draw a polygon: cut it from the selected mask (c)",
                                              "click: SAM adds this point (p)", "click: SAM removes this point (m)"])
        self.tool.add_class("t2s-tool").add_class("t2s-mode")
        self.refine = w.ToggleButton(value=False, description="refine selected", icon="pencil",
                                     tooltip="on: a box changes the selected mask; off: every box makes a "
                                             "new annotation (e)",
                                     layout=w.Layout(width="auto")).add_class("t2s-refine")
        self.show_masks = w.Checkbox(value=True, description="masks", indent=False,
                                     layout=w.Layout(width="auto", margin="0 8px 0 0")).add_class("t2s-show-masks")
        self.opacity = w.FloatSlider(value=1.0, min=0.0, max=1.0, step=0.1, description="opacity",
                                     readout=False, layout=w.Layout(width="50%"),
                                     style={"description_width": "50px"}).add_class("t2s-opacity")
        self.hidden = w.SelectMultiple(options=[], rows=3, description="hide",
                                       layout=w.Layout(width="95%"), style={"description_width": "40px"}
                                       ).add_class("t2s-hidden-classes")

    def _prompt_controls(self) -> None:
        self.prompt = w.Text(placeholder="text prompt, e.g. red roof", layout=w.Layout(width="65%")
                             ).add_class("t2s-prompt")
        self.run = _button("Run", "t2s-run", "run the Text2Seg pipeline on this image for the chosen class")
        self.run_reason = w.HTML(layout=w.Layout(width="95%")).add_class("t2s-run-reason")
        self.running = w.IntProgress(value=0, min=0, max=1, bar_style="info",
                                     layout=w.Layout(width="95%", visibility="hidden")).add_class("t2s-running")
        self.branches = {b: w.Checkbox(value=b in ("detector", "heatmap", "filter"), description=b, indent=False,
                                       layout=w.Layout(width="auto", min_width="0", margin="0 8px 0 0"))
                         for b in BRANCH_NAMES}
        slider = {"layout": w.Layout(width="95%"), "style": {"description_width": "60px"}}
        self.box_threshold = w.FloatSlider(value=0.3, min=0.05, max=0.95, step=0.05, description="box thr",
                                           **slider)
        self.clip_threshold = w.FloatSlider(value=0.2, min=0.0, max=1.0, step=0.05, description="clip thr",
                                            **slider)

    def _layout(self, width: str, height: str | None) -> w.VBox:
        settings = w.VBox([_row(list(self.branches.values())), self.box_threshold, self.clip_threshold],
                          layout=w.Layout(width="100%", overflow="hidden")).add_class("t2s-settings")
        display = w.VBox([_row([self.show_masks, self.opacity]), self.hidden],
                         layout=w.Layout(width="100%")).add_class("t2s-display")
        extras = w.Accordion(children=[display, settings, self.help],
                             titles=("mask display", "prompt settings", "help"), layout=w.Layout(width="95%"))
        extras.selected_index = None
        # Rows without a text input are grouped into sections, so that few key listeners cover them
        # (see key_regions); the rows holding a text box or a slider stay outside the sections.
        box = w.VBox([
            _section([self.css, self.progress, self.message,
                      _row([self.previous, self.next, self.forward, self.done_reject, self.skip])]),
            _row([self.filter, self.goto]),
            _section([self.order, self.images, self.class_picker, self.items,
                      _row([self.accept, self.reject, self.relabel, self.delete])]),
            _row([self.min_score, self.accept_above]),
            _section([_row([self.undo, self.redo, self.refine]), self.tool]),
            _row([self.prompt, self.run]),
            _section([self.run_reason, self.running, self.legend]),
            extras,
        ], layout=w.Layout(width=width, min_width=width, padding="0 0 0 8px", overflow="hidden auto",
                           max_height=height))  # the panel scrolls on its own beside the map
        return box.add_class("t2s-panel")

    def add_section(self, widget: w.Widget) -> None:
        """Append another part's section (e.g. "learn from decisions") at the panel's foot; call
        before the Annotator binds its keys (they watch the panel's regions)."""
        self.widget.children = (*self.widget.children, widget)

    @property
    def text_inputs(self) -> tuple[w.Widget, ...]:
        """The controls that take typed text (text boxes, sliders' editable readouts): keyboard
        shortcuts must never be watched on a widget that contains one (see :func:`key_regions`)."""
        return (self.goto, self.prompt, self.min_score, self.box_threshold, self.clip_threshold)

    # -- events --------------------------------------------------------------------------------
    def bind(self, actions: Mapping[str, Callable[..., Any]], syncing: Callable[[], bool]) -> None:
        """Connect the controls to ``actions`` (undone by :meth:`unbind`).

        ``actions`` maps a control name (see :meth:`buttons`, :meth:`value_controls`) to a
        callable; buttons call it with the values it needs from other controls, value controls
        with their new value (but not while ``syncing()`` says the code itself sets values).
        """
        args: dict[str, Callable[[], tuple[Any, ...]]] = {
            "relabel": lambda: (self.class_picker.value,),
            "accept_above": lambda: (self.min_score.value,),
            "run": lambda: (self.prompt.value or None, self.class_picker.value),
        }
        for name, button in self.buttons().items():
            if name in actions:
                handler = _click(actions[name], args.get(name, tuple))
                button.on_click(handler)
                self._bound.append(("click", button, handler))
        for name, widget in self.value_controls().items():
            if name in actions:
                handler = _changed(actions[name], syncing)
                widget.observe(handler, names="value")
                self._bound.append(("value", widget, handler))

    def buttons(self) -> dict[str, w.Button]:
        """Control name -> button."""
        return {"accept": self.accept, "reject": self.reject, "relabel": self.relabel, "delete": self.delete,
                "accept_above": self.accept_above, "next": self.next, "undo": self.undo, "redo": self.redo,
                "run": self.run, "previous": self.previous, "forward": self.forward,
                "done_reject": self.done_reject, "skip": self.skip}

    def value_controls(self) -> dict[str, w.ValueWidget]:
        """Control name -> control whose value changes are actions."""
        return {"tool": self.tool, "class": self.class_picker, "item": self.items, "filter": self.filter,
                "goto": self.goto, "image": self.images, "order": self.order, "refine": self.refine,
                "show_masks": self.show_masks, "opacity": self.opacity, "hidden": self.hidden}

    def unbind(self) -> None:
        """Disconnect every handler :meth:`bind` connected."""
        for kind, widget, handler in self._bound:
            if kind == "click":
                widget.on_click(handler, remove=True)
            else:
                widget.unobserve(handler, names="value")
        self._bound.clear()

    def branch_settings(self) -> dict[str, Any]:
        """The settings panel as plain values: enabled branches and thresholds."""
        return {"branches": tuple(b for b, cb in self.branches.items() if cb.value),
                "box_threshold": float(self.box_threshold.value),
                "clip_threshold": float(self.clip_threshold.value)}


def _section(children: Sequence[w.Widget]) -> w.VBox:
    return w.VBox(list(children), layout=w.Layout(width="100%")).add_class("t2s-keys")


def _contains(widget: w.Widget, targets: Sequence[w.Widget]) -> bool:
    if any(widget is t for t in targets):
        return True
    return any(_contains(c, targets) for c in getattr(widget, "children", ()) or ())


def key_regions(root: w.Widget, text_inputs: Sequence[w.Widget]) -> list[w.Widget]:
    """The largest widgets inside ``root`` (``root`` itself when possible) that contain none of
    ``text_inputs``; together they cover every other leaf control.

    ipyevents' key listener, while the pointer is over the widget it watches, focuses that widget
    and stops every keydown on the page (capture phase), so a text box inside a watched widget could
    never be typed in. Watching these regions instead keeps the shortcuts wherever the pointer is
    over the map, buttons and lists, and leaves the text boxes their keys."""
    if not _contains(root, text_inputs):
        return [root]
    return [r for c in getattr(root, "children", ()) or () for r in key_regions(c, text_inputs)]


def _click(action: Callable[..., Any], args: Callable[[], tuple[Any, ...]]) -> Callable[[Any], None]:
    def handler(_button: Any) -> None:
        action(*args())
    return handler


def _changed(action: Callable[[Any], Any], syncing: Callable[[], bool]) -> Callable[[dict[str, Any]], None]:
    def handler(change: dict[str, Any]) -> None:
        if not syncing():
            action(change["new"])
    return handler
