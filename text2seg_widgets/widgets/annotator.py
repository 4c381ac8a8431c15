"""The Annotator: an ipyleaflet map of the current image beside a review panel.

Built from parts, each constructed with what it needs and sharing one small
:class:`~text2seg_widgets.widgets.state.AnnotatorState`:

* :class:`~text2seg_widgets.widgets.mapview.MapView`: the map, its layers and browser events;
* :class:`~text2seg_widgets.widgets.panel.SidePanel`: the controls;
* :class:`~text2seg_widgets.widgets.display.Display`: redraws from the store, messages;
* :class:`~text2seg_widgets.widgets.reviewing.ReviewActions`: select, accept, reject, relabel;
* :class:`~text2seg_widgets.widgets.tools.Tools`: SAM clicks and boxes, polygons;
* :class:`~text2seg_widgets.widgets.prompting.Prompting`: text-prompt runs;
* :class:`~text2seg_widgets.widgets.navigation.Navigation`: images, next, undo/redo;
* :class:`~text2seg_widgets.widgets.reviewqueue.QueueOrder`: previous/next in review-queue order;
* :class:`~text2seg_widgets.widgets.insights_view.InsightsView`: calibrate, accept above the
  calibrated thresholds, prune prompts ("learn from decisions").

Every action writes to the project store at once and then redraws from the store, so the widget
never holds work that is not saved. Map clicks, GeoJSON clicks, drawn shapes, buttons and keys
only call the action methods; tests drive the same methods without a browser. The Annotator is
a context manager; :meth:`Annotator.close` joins its background work.
"""

from __future__ import annotations

import html
import logging
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

import ipyleaflet
import ipywidgets as w

from text2seg_widgets.errors import InputError, Text2SegError
from text2seg_widgets.imagery.windows import prefetch_window_count, view_windows
from text2seg_widgets.widgets import storeview as sv
from text2seg_widgets.widgets.display import Display
from text2seg_widgets.widgets.effort import ImageClock
from text2seg_widgets.widgets.embeddings import EmbeddingKeeper
from text2seg_widgets.widgets.insights_view import InsightsView
from text2seg_widgets.widgets.layers import MaskItem, MaskLayers
from text2seg_widgets.widgets.mapview import MapView, check_height
from text2seg_widgets.widgets.navigation import Navigation
from text2seg_widgets.widgets.panel import SidePanel, key_regions
from text2seg_widgets.widgets.prompting import Prompting
from text2seg_widgets.widgets.reviewing import ReviewActions
from text2seg_widgets.widgets.reviewqueue import QueueOrder
from text2seg_widgets.widgets.runner import BackgroundRunner
from text2seg_widgets.widgets.shortcuts import KEYMAP, event_to_key, normalize_key
from text2seg_widgets.widgets.state import AnnotatorState
from text2seg_widgets.widgets.teamwork import LiveUpdates, TeamWork
from text2seg_widgets.widgets.tools import Tools

if TYPE_CHECKING:
    from text2seg_widgets.store import Project

__all__ = ["Annotator"]

log = logging.getLogger(__name__)

#: seconds a scene's view rests before the windows around it are encoded ahead
PREFETCH_DELAY = 1.0


def _state_field(name: str, doc: str) -> property:
    return property(lambda self: getattr(self.state, name), doc=doc)


class Annotator:
    """Review and correct a project's candidates image by image.

    Args:
        project: an open :class:`text2seg_widgets.store.Project`.
        models: a :class:`~text2seg_widgets.models.modelset.ModelSet` (or None: review only; text
            prompts and SAM tools then say which weights they need).
        image_id: the image to open first (default: the image in progress, else the first
            unreviewed, else the first image).
        pipeline_config: defaults for text-prompt runs (the settings panel overrides branches and
            thresholds).
        basemap: add an OpenStreetMap basemap under georeferenced images (needs internet in the
            browser; without it the image still shows on a blank background).
        max_display: long side, in pixels, of the image sent to the browser.
        map_height: the map's height (CSS length; keep it absolute, e.g. "600px").
        show_rejected: draw rejected candidates too (grey).
        live: redraw when colleagues change the project (default: in team projects, i.e. when
            the project has members; see :mod:`~text2seg_widgets.widgets.teamwork`).
    """

    image_id = _state_field("image_id", "The open image's id (None: no image).")
    image = _state_field("image", "The open image's pixels (a LoadedImage; None when the file is missing).")
    frame = _state_field("frame", "Where the open image sits on the map.")
    selection = _state_field("selection", "The selected mask: (kind, id) or None.")
    session = _state_field("session", "The SAM refine session of the selection (or None).")
    mode = _state_field("mode", "The map's click mode.")
    current_class = _state_field("current_class", "The class given to new masks.")
    last_error = _state_field("last_error", "The last error message shown (None after a success).")
    last_refine_seconds = _state_field("last_refine_seconds", "Decode time of the last SAM click/box.")

    def __init__(self, project: "Project", models: Any = None, *, image_id: int | None = None,
                 pipeline_config: Any = None, basemap: bool = False, max_display: int = 2048,
                 map_height: str = "600px", show_rejected: bool = False,
                 live: bool | None = None) -> None:
        check_height(map_height)
        self.project = project
        self.models = models
        classes = sv.class_list(project)
        self.state = AnnotatorState(current_class=classes[0][0] if classes else None)
        segmenter = getattr(models, "segmenter", None)
        self.keeper = EmbeddingKeeper(segmenter) if segmenter is not None else None
        self.runner = BackgroundRunner()
        self.panel = SidePanel([c[0] for c in classes], height=map_height)
        self.view = MapView(on_click=self._ui_of(self._map_click), on_shape=self._ui_of(self._shape_drawn),
                            on_mask=self._ui_of(self._mask_clicked), height=map_height,
                            max_display=max_display, basemap=basemap, show_rejected=show_rejected)
        self.display = Display(project, self.state, self.panel, lambda: self.view.layers)
        self.clock = ImageClock()
        self.display.on_activity.append(self.clock.touch)
        self.review = ReviewActions(project, self.state, self.display)
        self.navigation = Navigation(project, self.state, self.display, self.view, self.panel, self.keeper,
                                     self.clock)
        self.tools = Tools(project, self.state, self.display, self.panel, self.view, self.keeper,
                           busy=lambda: self.runner.busy, prefetch_next=self.navigation.prefetch_next,
                           after_edit=self.review.after_edit)
        self.prompting = Prompting(project, models, self.state, self.display, self.panel, self.runner,
                                   self.keeper, pipeline_config=pipeline_config,
                                   visible_window=self.view.visible_window)
        self.queue = QueueOrder(project, self.state, self.display, self.panel, self.navigation, self.review)
        self.insights = InsightsView(project, self.state, self.display, self.review.after_edit, self._ui_of)
        self.panel.add_section(self.insights.widget)
        self.team: TeamWork | None = None
        if project.members():  # a team project: my next image, review verdicts
            self.team = TeamWork(project, self.state, self.display, self.navigation, self._ui_of)
            self.panel.add_section(self.team.widget)
            self.navigation.next_id = self.team.next_id
            self.navigation.on_show.append(self.team.update)
        self.live = (LiveUpdates(project, self._ui_of(self._colleagues_changed))
                     if (live if live is not None else self.team is not None) else None)
        self.closed = False
        self._last_key: tuple[Any, Any] = (None, None)
        self.prompting.show_run_state()
        self._show_point_tools(segmenter)
        self.view.on_view.append(self._ui_of(self._prefetch_view))
        self.panel.bind(self._panel_actions(), syncing=lambda: self.state.syncing)
        self.widget = w.HBox([self.view.widget, self.panel.widget], layout=w.Layout(width="100%"))
        self.widget.add_class("t2s-annotator")
        self.key_events = self._bind_keys()
        first = image_id
        if first is None and self.team is not None:
            first = self.team.first_id()
        if first is None:
            first = sv.first_image_id(project)
        if first is None:
            self.display.say("This project has no images yet: add some with project.add_image(path), "
                             "then call annotator.refresh().", error=True)
            self.refresh()
        else:
            self.show_image(first)

    # -- parts as attributes -----------------------------------------------------------------------
    @property
    def map(self) -> ipyleaflet.Map:
        return self.view.map

    @property
    def layers(self) -> MaskLayers:
        return self.view.layers

    @property
    def draw_control(self) -> ipyleaflet.DrawControl:
        return self.view.draw

    # -- lifetime --------------------------------------------------------------------------------
    def close(self, timeout: float | None = None) -> None:
        """Stop and join the background work (prompt run, embedding prefetch), disconnect every
        browser event and close the widgets. Saved work is untouched; closing twice is harmless."""
        if self.closed:
            return
        self.closed = self.state.closed = True
        self.navigation.leave()
        self.runner.close(timeout)
        if self.live is not None:
            self.live.close(timeout)
        if self.keeper is not None:
            closer = getattr(self.keeper, "close", None)
            (closer or self.keeper.join)(timeout)
        self.panel.unbind()
        self.insights.close()
        self.view.close()
        for ev in self.key_events:
            ev.on_dom_event(self._key_event, remove=True)
            ev.close()
        self.widget.close()

    def __enter__(self) -> "Annotator":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _ipython_display_(self) -> None:  # pragma: no cover - needs a front end
        from IPython.display import display

        display(self.widget)

    # -- display ---------------------------------------------------------------------------------
    def items(self) -> list[MaskItem]:
        """The current image's masks: candidates still proposed (and rejected), and annotations."""
        return self.display.items()

    def refresh(self) -> None:
        """Redraw layers, list, progress and legend from the store."""
        self.display.refresh()

    def apply_live_changes(self) -> int:
        """Apply colleagues' changes that arrived (done by itself in a running kernel; tests and
        plain Python call this); returns how many notifications were applied."""
        return self.live.apply_pending() if self.live is not None else 0

    def _colleagues_changed(self, image_ids: set[int] | None) -> None:
        if image_ids is None or self.state.image_id in image_ids:
            self.display.refresh()  # the open image (and the list, progress, legend)
        else:
            self.navigation.show_image_list()
        if self.team is not None:
            self.team.update()

    def show_image(self, image_id: int) -> None:
        """Open ``image_id``: load its pixels (a missing file is reported, its masks still shown)."""
        self.navigation.show_image(image_id)

    # -- review ------------------------------------------------------------------------------------
    def select(self, target: Any) -> MaskItem:
        """Select a mask: a ("candidate"|"annotation", id) pair, a MaskItem, or a store record."""
        return self.review.select(target)

    def clear_selection(self) -> None:
        """Nothing selected: the next click or box starts a new mask."""
        self.review.clear_selection()

    def select_next(self) -> MaskItem | None:
        return self.review.step(1)

    def select_previous(self) -> MaskItem | None:
        return self.review.step(-1)

    def accept_selected(self) -> int:
        """Accept the selected candidate; returns the annotation id."""
        return self.review.accept_selected()

    def reject_selected(self) -> None:
        self.review.reject_selected()

    def relabel_selected(self, class_name: str) -> int:
        return self.review.relabel_selected(class_name)

    def delete_selected(self) -> None:
        self.review.delete_selected()

    def accept_above(self, min_score: float) -> list[int]:
        return self.review.accept_above(min_score)

    # -- tools -------------------------------------------------------------------------------------
    def click(self, x: float, y: float, positive: bool = True) -> int:
        """A SAM point at pixel (x, y) on the selected mask (or a new one); the annotation id."""
        return self.tools.click(x, y, positive)

    def box(self, x0: float, y0: float, x1: float, y1: float) -> int:
        """A SAM box prompt (pixels): refines the selected mask or makes a new one."""
        return self.tools.box(x0, y0, x1, y1)

    def polygon(self, points: Any, subtract: bool = False) -> int | None:
        """A manual polygon (pixel xy): a new mask, or with ``subtract`` cut from the selected one."""
        return self.tools.polygon(points, subtract)

    def set_mode(self, mode: str) -> None:
        """The active map tool: select, box, polygon-add, polygon-cut, positive, negative."""
        self.tools.set_mode(mode)

    def mode_select(self) -> None:
        self.set_mode("select")

    def mode_box(self) -> None:
        self.set_mode("box")

    def mode_polygon_add(self) -> None:
        self.set_mode("polygon-add")

    def mode_polygon_cut(self) -> None:
        self.set_mode("polygon-cut")

    def mode_positive(self) -> None:
        self.set_mode("positive")

    def mode_negative(self) -> None:
        self.set_mode("negative")

    def set_class(self, class_name: str) -> None:
        """The class given to new masks (and offered for relabelling)."""
        self.display.check_class(class_name)
        self.state.current_class = class_name
        self.display.show_class()

    # -- prompts -----------------------------------------------------------------------------------
    def run_prompt(self, prompt: str | None = None, class_name: str | None = None, *,
                   wait: bool = False, branches: tuple[str, ...] | None = None) -> Any:
        """Run the pipeline on this image (see :meth:`Prompting.run_prompt`)."""
        return self.prompting.run_prompt(prompt, class_name, wait=wait, branches=branches)

    def runnable_branches(self) -> tuple[str, ...]:
        """The pipeline branches the loaded models can run (empty without text-prompt models)."""
        return self.prompting.runnable_branches()

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background prompt run ends and apply its result (scripts and tests)."""
        self.runner.wait(timeout)

    # -- navigation and history ----------------------------------------------------------------
    def next_image(self) -> int | None:
        """Mark this image done and open the next one to review; its id. With candidates left on
        it nothing changes (None) and the message offers "done: reject the rest" and "skip"."""
        return self.navigation.next_image()

    def finish_reject_rest(self) -> int | None:
        """Reject the candidates left, mark this image done (one undoable step), open the next."""
        return self.navigation.finish_reject_rest()

    def skip_image(self, reason: str = "") -> int | None:
        """Mark this image skipped (undoable) and open the next one to review."""
        return self.navigation.skip_image(reason)

    def go_next(self) -> int | None:
        """Open the next image in the list (under the filter), or in the review-queue order the next
        candidate to look at (and its image); no state changes."""
        return self.queue.step(1) if self.queue.order == "queue" else self.navigation.go_next()

    def go_previous(self) -> int | None:
        """Open the previous image in the list (or the previous candidate of the review queue)."""
        return self.queue.step(-1) if self.queue.order == "queue" else self.navigation.go_previous()

    def set_order(self, order: str) -> int | None:
        """What previous/next follow: "images" (the image list) or "queue" (the review queue of
        :func:`text2seg_widgets.insights.review_queue`, jumping to each candidate)."""
        return self.queue.set_order(order)

    def toggle_order(self) -> int | None:
        return self.queue.toggle()

    def go_to(self, key: int | str) -> int:
        """Open an image by id, file name or stem."""
        return self.navigation.go_to(key)

    def set_filter(self, name: str | None) -> None:
        """Filter the image list and previous/next: None/"all", "unreviewed", "candidates left",
        "in progress", "done", "skipped"."""
        self.navigation.set_filter(name)

    def undo(self) -> Any:
        return self.navigation.undo()

    def redo(self) -> Any:
        return self.navigation.redo()

    # -- keys and events ---------------------------------------------------------------------------
    def handle_key(self, key: str) -> str | None:
        """Run the action bound to ``key`` (see :data:`KEYMAP`); returns the action's name."""
        key = normalize_key(key)
        if len(key) == 1 and key.isdigit() and key != "0":
            names = self.display.class_names()
            index = int(key) - 1
            if index >= len(names):
                raise InputError(f"there is no class {key} (the project has {len(names)})")
            if self.display.selected_item() is not None:
                self.relabel_selected(names[index])
            self.set_class(names[index])
            return f"class {names[index]}"
        if key not in KEYMAP:
            return None
        name = KEYMAP[key][0]
        getattr(self, name)()
        return name

    def _ui(self, action: Callable[..., Any], *args: Any) -> Any:
        """Run an action from a UI event: user errors become a message, never a traceback."""
        if self.closed:
            return None
        try:
            return action(*args)
        except Text2SegError as exc:
            self.display.say(html.escape(str(exc)), error=True)
        except Exception as exc:  # keep the widget alive; the log has the traceback
            log.exception("action %s failed", getattr(action, "__name__", action))
            self.display.say(f"{type(exc).__name__}: {html.escape(str(exc))}", error=True)
        return None

    def _ui_of(self, action: Callable[..., Any]) -> Callable[..., Any]:
        return lambda *args: self._ui(action, *args)

    def _panel_actions(self) -> dict[str, Callable[..., Any]]:
        actions: dict[str, Callable[..., Any]] = {
            "accept": self.accept_selected, "reject": self.reject_selected, "relabel": self.relabel_selected,
            "delete": self.delete_selected, "accept_above": self.accept_above, "next": self.next_image,
            "undo": self.undo, "redo": self.redo, "run": self.run_prompt, "tool": self.set_mode,
            "class": self.set_class, "item": self._item_picked, "previous": self.go_previous,
            "forward": self.go_next, "done_reject": self.finish_reject_rest, "skip": self.skip_image,
            "filter": self.set_filter, "goto": self.navigation.goto_typed,
            "image": self.navigation.image_picked, "order": self.set_order, "refine": self.toggle_refine,
            "show_masks": self.toggle_masks, "opacity": self.set_opacity, "hidden": self.hide_classes}
        return {name: self._ui_of(action) for name, action in actions.items()}

    def toggle_refine(self, on: bool | None = None) -> bool:
        """Refine mode on/off (None: switch): boxes and clicks change the selected mask."""
        return self.tools.toggle_refine(on)

    def toggle_masks(self, on: bool | None = None) -> bool:
        """Show or hide every mask on the map (None: switch)."""
        visible = (not self.view.layers.visible) if on is None else bool(on)
        self.view.layers.set_style(visible=visible)
        if self.panel.show_masks.value != visible:
            with self.display.syncing():
                self.panel.show_masks.value = visible
        self.display.say("masks shown" if visible else "masks hidden (h shows them again)")
        return visible

    def set_opacity(self, value: float) -> None:
        """The masks' opacity on the map, 0..1."""
        self.view.layers.set_style(opacity=value)

    def hide_classes(self, names: Any) -> None:
        """Hide the masks of these classes on the map (empty: show all)."""
        self.view.layers.set_style(hidden_classes=list(names or ()))

    def _show_point_tools(self, segmenter: Any) -> None:
        """Grey out + / - point when the segmenter takes boxes only (LiteMedSAM), saying why."""
        if segmenter is None or getattr(segmenter, "supports_points", True):
            return
        name = getattr(segmenter, "name", "this segmenter")
        options = [(f"{label} (needs SAM)" if mode in ("positive", "negative") else label, mode)
                   for label, mode in self.panel.tool.options]
        with self.display.syncing():
            self.panel.tool.options = options
        self.panel.tool.tooltips = [t if m not in ("positive", "negative") else
                                    f"{name} takes boxes only: load a SAM checkpoint for clicks"
                                    for (_, m), t in zip(options, self.panel.tool.tooltips)]

    def _prefetch_view(self) -> None:
        """Encode the prompt windows around the view of a scene in the background (native zoom),
        once the view has rested :data:`PREFETCH_DELAY` seconds (a box drawn at once, or the next
        pan, comes first)."""
        st = self.state
        image = st.image
        if self.keeper is None or image is None or image.rgb is not None or self.runner.busy:
            return
        view = self.view.visible_window(min_side=1)
        if view is None or self.view.scale > 2.0:
            return  # zoomed out: a box there would get a big window; nothing useful to guess
        image_id, size = st.image_id, self.keeper.segmenter.input_size
        wins = view_windows(view, image.width, image.height, size, limit=prefetch_window_count())
        self.keeper.prefetch_many([((image_id, win.rasterio), partial(image.read, win)) for win in wins],
                                  delay=PREFETCH_DELAY)

    def _item_picked(self, value: Any) -> None:
        if value and value != self.state.selection:
            self.select(value)

    def _map_click(self, x: float, y: float) -> Any:
        return self.tools.map_click(x, y)

    def _shape_drawn(self, rings: Any) -> Any:
        return self.tools.shape_drawn(rings)

    def _mask_clicked(self, kind: str, ident: int) -> None:
        if self.tools.mask_click(kind, ident):
            self.select((kind, ident))

    def _bind_keys(self) -> list[Any]:
        """One ipyevents keydown watcher per key region: the map and the panel's sections, never a
        widget that holds a text input (see :func:`~text2seg_widgets.widgets.panel.key_regions`)."""
        try:
            from ipyevents import Event
        except ImportError:  # pragma: no cover - ipyevents is a dependency
            return []
        self.view.widget.add_class("t2s-keys")
        events = []
        typed = (*self.panel.text_inputs, *((self.team.comment,) if self.team is not None else ()))
        for region in key_regions(self.widget, typed):
            ev = Event(source=region, watched_events=["keydown"], prevent_default_action=False)
            ev.on_dom_event(self._key_event)
            events.append(ev)
        return events

    def _key_event(self, event: dict[str, Any]) -> None:
        target = event.get("target")
        tag = str(target.get("tagName", "")) if isinstance(target, dict) else ""
        if tag.upper() in ("INPUT", "TEXTAREA"):
            return
        stamp = (event.get("key"), event.get("timeStamp"))
        if stamp[1] is not None and stamp == self._last_key:
            return  # the same DOM event delivered twice (ipyevents can attach one listener per view)
        self._last_key = stamp
        key = event_to_key(event)
        if key:
            self._ui(self.handle_key, key)
