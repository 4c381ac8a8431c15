"""Learn from decisions: calibrated thresholds, accept-above-calibrated and prompt pruning in the
Annotator (the widget face of :mod:`text2seg_widgets.insights`).

:class:`InsightsView` is a collapsible panel section with three parts:

* **Calibrate** refits the per class x branch thresholds from every decision of the project
  (:func:`~text2seg_widgets.insights.calibrate`), saves them in the project
  (:func:`~text2seg_widgets.insights.save_calibration`: the next ``pseudo-label`` run uses them)
  and lists each threshold with its estimated precision, or "too few decisions (n)".
* **Accept above calibrated**, on this image or the whole project: the text above the button
  says, before the click, how many candidates it would accept and their estimated precision
  (:func:`~text2seg_widgets.insights.preview_accept_calibrated`); the click accepts exactly those
  as one undoable step (:func:`~text2seg_widgets.insights.accept_above_calibrated`). The button is
  disabled, with the reason, when nothing qualifies.
* **Prompts that only produce rejections** (:func:`~text2seg_widgets.insights.prune_classes`),
  per class, and a button that removes them from the project's class prompts with
  ``project.update_class(name, prompts=...)``: one undoable step per class changed. A class never
  loses its last prompt.

Invariants: the preview is recomputed on every redraw of the Annotator while the section is open
(image change, any decision, undo/redo) and always uses the same thresholds the click uses; while
closed it reads nothing from the store (redraws stay cheap). The prompt statistics (a read of
every decision) are recounted when the section opens, on Calibrate and after pruning; the
flagged list is re-applied to the current class prompts on every redraw.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from text2seg_widgets import insights
from text2seg_widgets.errors import InputError
from text2seg_widgets.insights import AcceptPlan, PromptStat, PruneResult, Threshold
from text2seg_widgets.insights.calibration import Key
from text2seg_widgets.widgets.display import Display
from text2seg_widgets.widgets.state import AnnotatorState

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["SCOPES", "TARGETS", "InsightsView"]

log = logging.getLogger(__name__)

#: (label, value) of where accept-above-calibrated acts
SCOPES = (("this image", "image"), ("whole project", "project"))
#: (label, value) of the precision the calibration aims at
TARGETS = (("precision 90 %", 0.90), ("precision 95 %", 0.95), ("precision 98 %", 0.98))

_TEXT = "font-size:11px;line-height:1.3;white-space:normal;overflow-wrap:anywhere"


def _lines(lines: list[str]) -> str:
    """Already escaped lines as one wrapping block of small text."""
    return f"<div style='{_TEXT}'>" + "<br>".join(lines) + "</div>"


def _button(description: str, css: str, tooltip: str, style: str = "") -> w.Button:
    b = w.Button(description=description, tooltip=tooltip, button_style=style,
                 layout=w.Layout(width="auto", max_width="95%"))
    return b.add_class(css)


class InsightsView:
    """The "learn from decisions" section of the Annotator's panel.

    Args:
        project: the open project store.
        state: the shared :class:`AnnotatorState` (which image is open).
        display: redraws and messages; this view registers its own redraw in ``display.also``.
        after_edit: called with a message after the store changed (redraws the map and says it).
        ui: wraps a callable for a UI event (user errors become messages).
        min_decisions: decisions a class x branch needs before it gets a threshold.
        prune_min_decisions: decisions a prompt needs before it can be flagged.
    """

    def __init__(self, project: "Project", state: AnnotatorState, display: Display,
                 after_edit: Callable[[str], None],
                 ui: Callable[[Callable[..., Any]], Callable[..., Any]] = lambda f: f, *,
                 min_decisions: int = 20, prune_min_decisions: int = 5) -> None:
        self.project = project
        self.state = state
        self.display = display
        self.after_edit = after_edit
        self.min_decisions = int(min_decisions)
        self.prune_min_decisions = int(prune_min_decisions)
        self.thresholds: dict[Key, Threshold] = {}
        self.stats: list[PromptStat] = []
        self.plan: AcceptPlan | None = None
        self.pruning = PruneResult(survivors={})
        self._build()
        self._handlers: list[tuple[Any, Any, str]] = []
        self._bind(ui)
        display.also.append(self.redraw)

    # -- widgets ---------------------------------------------------------------------------------
    def _build(self) -> None:
        self.target = w.Dropdown(options=list(TARGETS), value=0.95, layout=w.Layout(width="55%")
                                 ).add_class("t2s-calibration-target")
        self.calibrate_button = _button("Calibrate", "t2s-calibrate", "refit the score thresholds from the "
                                        "decisions and save them in the project", "info")
        self.thresholds_html = w.HTML(layout=w.Layout(width="95%")).add_class("t2s-thresholds")
        self.scope = w.Dropdown(options=list(SCOPES), value="image", layout=w.Layout(width="55%")
                                ).add_class("t2s-accept-scope")
        self.preview_html = w.HTML(layout=w.Layout(width="95%")).add_class("t2s-accept-preview")
        self.accept_button = _button("Accept above calibrated", "t2s-accept-calibrated",
                                     "accept every proposed candidate above its calibrated threshold "
                                     "(one undoable step)", "success")
        self.prune_html = w.HTML(layout=w.Layout(width="95%")).add_class("t2s-prune-list")
        self.prune_button = _button("Remove flagged prompts", "t2s-prune",
                                    "remove the prompts that only produced rejections from the classes", "warning")
        body = w.VBox([_row([self.target, self.calibrate_button]), self.thresholds_html,
                       _row([self.scope]), self.preview_html, self.accept_button,
                       self.prune_html, self.prune_button],
                      layout=w.Layout(width="100%", overflow="hidden")).add_class("t2s-insights-body")
        self.widget = w.Accordion(children=[body], titles=("learn from decisions",),
                                  layout=w.Layout(width="95%")).add_class("t2s-insights")
        self.widget.selected_index = None

    def _bind(self, ui: Callable[[Callable[..., Any]], Callable[..., Any]]) -> None:
        clicks: dict[w.Button, Callable[..., Any]] = {self.calibrate_button: self.calibrate, self.accept_button: self.accept_above_calibrated,
                  self.prune_button: self.prune}
        for button, action in clicks.items():
            handler = _on_click(ui(action))
            button.on_click(handler)
            self._handlers.append((button, handler, "click"))
        values = {self.widget: ("selected_index", self._opened), self.scope: ("value", self._scope_changed)}
        for widget, (name, action) in values.items():
            handler = _on_change(ui(action), self.state)
            widget.observe(handler, names=name)
            self._handlers.append((widget, handler, name))

    def close(self) -> None:
        """Disconnect the handlers (the Annotator closes the widgets)."""
        for widget, handler, name in self._handlers:
            if name == "click":
                widget.on_click(handler, remove=True)
            else:
                widget.unobserve(handler, names=name)
        self._handlers.clear()

    @property
    def is_open(self) -> bool:
        return self.widget.selected_index == 0

    def open(self) -> None:
        """Open the section: reload the saved thresholds, recount the prompts, show the preview."""
        if self.is_open:
            self.reload()
        else:
            self.widget.selected_index = 0  # the observer reloads

    def _opened(self, index: Any) -> None:
        if index == 0:
            self.reload()

    def _scope_changed(self, scope: str) -> None:
        self.redraw()

    # -- reading ---------------------------------------------------------------------------------
    def reload(self) -> None:
        """Read the saved thresholds and the prompt statistics again, then redraw."""
        self.thresholds = insights.load_calibration(self.project)
        self.stats = insights.prompt_stats(insights.decisions(self.project),
                                           min_decisions=self.prune_min_decisions)
        self._show_thresholds("saved")
        self.redraw()

    def redraw(self) -> None:
        """Refresh the preview and the flagged prompts (only while the section is open)."""
        if not self.is_open or self.state.closed:
            return
        try:
            self.plan = self.preview()
        except InputError as exc:  # e.g. the open image was removed: say so, never break the redraw
            self.plan = None
            self.preview_html.value = _lines([html.escape(str(exc))])
            self.accept_button.disabled, self.accept_button.tooltip = True, str(exc)
        else:
            self._show_plan()
        self.pruning = insights.prune_classes(self._class_prompts(), self.stats)
        self._show_pruning()

    def preview(self, scope: str | None = None) -> AcceptPlan | None:
        """What accept-above-calibrated would do in ``scope`` (default: the chosen one); None when
        there is no calibration or no image open for the image scope. Changes nothing."""
        image_id = self._image_scope(scope)
        if not self.thresholds or (image_id is None and (scope or self.scope.value) == "image"):
            return None
        return insights.preview_accept_calibrated(self.project, image_id, thresholds=self.thresholds)

    def _image_scope(self, scope: str | None) -> int | None:
        scope = scope or self.scope.value
        if scope not in {value for _, value in SCOPES}:
            raise InputError(f"unknown scope {scope!r}; use 'image' or 'project'")
        return self.state.image_id if scope == "image" else None

    def _class_prompts(self) -> dict[str, list[str]]:
        return {c.name: list(c.prompts) or [c.name] for c in self.project.classes}

    # -- actions ---------------------------------------------------------------------------------
    def calibrate(self, target_precision: float | None = None) -> dict[Key, Threshold]:
        """Refit the thresholds from every decision, save them in the project and show them."""
        target = float(self.target.value if target_precision is None else target_precision)
        rows = insights.decisions(self.project)
        self.thresholds = insights.fit_thresholds(rows, target_precision=target,
                                                  min_decisions=self.min_decisions)
        path = insights.save_calibration(self.project, self.thresholds)
        self.stats = insights.prompt_stats(rows, min_decisions=self.prune_min_decisions)
        self._show_thresholds("fitted")
        self.redraw()
        ok = sum(t.status == "ok" for t in self.thresholds.values())
        self.display.say(f"calibrated {ok} of {len(self.thresholds)} class x branch group(s) from "
                         f"{len(rows)} decision(s); saved in {html.escape(path.name)}")
        return self.thresholds

    def accept_above_calibrated(self, scope: str | None = None) -> AcceptPlan:
        """Accept what the preview shows, as one undoable step; redraws the map."""
        if not self.thresholds:
            raise InputError("no calibrated thresholds yet: press Calibrate (or run "
                             "`text2seg-widgets review calibrate PROJECT`) first")
        image_id = self._image_scope(scope)
        if image_id is None and (scope or self.scope.value) == "image":
            self.display.require_image()
        plan = insights.accept_above_calibrated(self.project, image_id, thresholds=self.thresholds)
        if not plan.count:
            raise InputError(plan.summary().splitlines()[0])
        self.after_edit(html.escape(plan.summary().splitlines()[0]))
        return plan

    def prune(self) -> PruneResult:
        """Remove the flagged prompts from the project's classes (``update_class``: one undoable
        step per class changed); a class keeps at least one prompt."""
        result = insights.prune_classes(self._class_prompts(), self.stats)
        if not result.dropped:
            raise InputError("no prompt is flagged: none has only rejections over "
                             f"{self.prune_min_decisions} or more decisions")
        for name in result.dropped:
            self.project.update_class(name, prompts=result.survivors[name])
        self.stats = insights.prompt_stats(insights.decisions(self.project), min_decisions=self.prune_min_decisions)
        gone = "; ".join(f"{html.escape(n)}: {html.escape(', '.join(p))}" for n, p in result.dropped.items())
        self.after_edit(f"removed prompt(s) {gone} (undo restores them)")
        return result

    # -- showing ---------------------------------------------------------------------------------
    def _show_thresholds(self, how: str) -> None:
        if not self.thresholds:
            self.thresholds_html.value = _lines(["no calibrated thresholds yet: press Calibrate"])
            return
        lines = [f"thresholds {how} (target precision {next(iter(self.thresholds.values())).target_precision:.2f}):"]
        lines += [f"<b>{html.escape(c)} / {html.escape(b)}</b>: {html.escape(_threshold_text(t))}"
                  for (c, b), t in sorted(self.thresholds.items())]
        self.thresholds_html.value = _lines(lines)

    def _show_plan(self) -> None:
        plan, b = self.plan, self.accept_button
        if plan is None:
            reason = ("no calibrated thresholds yet: press Calibrate" if not self.thresholds
                      else "no image is open")
            self.preview_html.value = _lines([reason])
            b.disabled, b.tooltip = True, reason
            return
        self.preview_html.value = _lines([html.escape(line.strip()) for line in plan.summary().splitlines()])
        b.disabled = not plan.count
        b.description = f"Accept {plan.count} above calibrated" if plan.count else "Accept above calibrated"
        b.tooltip = (plan.summary().splitlines()[0] if not plan.count else
                     "accept these candidates as one undoable step")

    def _show_pruning(self) -> None:
        result = self.pruning
        if result.dropped:
            lines = ["prompts that only produce rejections:"]
            lines += [f"<b>{html.escape(n)}</b>: {html.escape(', '.join(_stat_text(self.stats, n, p) for p in ps))}"
                      for n, ps in result.dropped.items()]
        else:
            lines = ["no prompt only produces rejections"]
        lines += [html.escape(n) for n in result.notes]
        self.prune_html.value = _lines(lines)
        self.prune_button.disabled = not result.dropped
        self.prune_button.tooltip = ("remove the flagged prompts from their classes (undoable)" if result.dropped
                                     else "nothing to remove: no prompt is flagged")


def _row(children: list[w.Widget]) -> w.HBox:
    """A row that wraps instead of overflowing the panel."""
    return w.HBox(children, layout=w.Layout(flex_flow="row wrap", width="100%"))


def _on_click(action: Callable[[], Any]) -> Callable[[Any], None]:
    def handler(_button: Any) -> None:
        action()
    return handler


def _on_change(action: Callable[[Any], Any], state: AnnotatorState) -> Callable[[dict[str, Any]], None]:
    def handler(change: dict[str, Any]) -> None:
        if not state.syncing:
            action(change["new"])
    return handler


def _threshold_text(t: Threshold) -> str:
    if t.status == "ok":
        return f"score >= {t.threshold:.3f}, est. precision {t.precision:.3f} ({t.above} decisions)"
    return t.message


def _stat_text(stats: list[PromptStat], class_name: str, prompt: str) -> str:
    found: Mapping[tuple[str, str], PromptStat] = {(s.class_name, s.prompt): s for s in stats}
    s = found.get((class_name, prompt))
    return prompt if s is None else f"{prompt!r} (0 of {s.decisions} accepted)"
