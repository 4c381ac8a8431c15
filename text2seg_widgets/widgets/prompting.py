"""Text prompts from the annotator: run the Text2Seg pipeline on the current image on a worker.

The run goes through the one tile loop (:func:`text2seg_widgets.pipeline.tiles.segment_array`)
on the whole image, or on the visible window of a big scene; the candidates come back in the
whole image's pixel grid and are stored on the kernel's thread when the run ends, and the map
redraws. Missing models are reported as the weights to fetch, each with its command.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from typing import TYPE_CHECKING, Any, Callable

from text2seg_widgets.errors import InputError
from text2seg_widgets.widgets.display import Display
from text2seg_widgets.widgets.panel import SidePanel
from text2seg_widgets.widgets.runner import BackgroundRunner
from text2seg_widgets.widgets.state import AnnotatorState
from text2seg_widgets.widgets.storeview import plural

if TYPE_CHECKING:
    from text2seg_widgets.models.modelset import ModelSet
    from text2seg_widgets.store import Project

log = logging.getLogger(__name__)

#: images with a longer side than this are prompted on the current map view only
BIG_SIDE = 2048
#: the most scene pixels one prompt run covers (about 16 tiles of 1024)
MAX_RUN_PIXELS = 4096 * 4096
WEIGHTS_HINT = ("see which weights are cached with `text2seg-widgets weights list` and fetch the missing "
                "ones with `text2seg-widgets weights fetch NAME` (needs internet once)")


def available_branches(models: "ModelSet | None") -> dict[str, list[str]]:
    """Branch name -> the weights (default weight spec names) it still needs with ``models``
    (empty list: it can run); :meth:`ModelSet.missing_roles` decides."""
    from text2seg_widgets.models.factory import branch_needs
    from text2seg_widgets.models.modelset import BRANCH_ROLES

    return {branch: branch_needs(models, branch) for branch in BRANCH_ROLES}


def missing_weights_html(status: dict[str, list[str]], branches: Any = None) -> str:
    """Every weight the ``branches`` (default: all) still need, once each, beside the command that
    fetches it and the branches it serves."""
    from text2seg_widgets.models.weights import fetch_command

    served: dict[str, list[str]] = {}
    for branch, names in status.items():
        if branches is None or branch in branches:
            for name in names:
                served.setdefault(name, []).append(branch)
    return "; ".join(f"<code>{html.escape(fetch_command(name))}</code> ({', '.join(b)})"
                     for name, b in served.items())


class Prompting:
    """Text-prompt runs on the current image.

    Args:
        project: the open project store.
        models: a ModelSet (or None: prompts then say which weights they need).
        state: the shared :class:`AnnotatorState`.
        display: redraws and messages.
        panel: the side panel (branch settings, Run button, progress bar).
        runner: the background runner the runs go to.
        keeper: the segmenter's embedding keeper (its lock guards the shared segmenter), or None.
        pipeline_config: defaults for runs (the settings panel overrides branches and thresholds).
        visible_window: the visible pixel window of the map (big images are prompted there only).
    """

    def __init__(self, project: "Project", models: Any, state: AnnotatorState, display: Display,
                 panel: SidePanel, runner: BackgroundRunner, keeper: Any, *, pipeline_config: Any = None,
                 visible_window: Callable[[], tuple[int, int, int, int] | None] = lambda: None) -> None:
        self.project = project
        self.models = models
        self.state = state
        self.display = display
        self.panel = panel
        self.runner = runner
        self.keeper = keeper
        self.pipeline_config = pipeline_config
        self._visible_window = visible_window

    def run_prompt(self, prompt: str | None = None, class_name: str | None = None, *,
                   wait: bool = False, branches: tuple[str, ...] | None = None) -> Any:
        """Run the pipeline for ``class_name`` described by ``prompt`` (default: every class with its
        own prompts). With ``wait`` the run happens here and the new candidate ids are returned;
        otherwise it runs on a background worker (returned) and the map updates when it ends."""
        image_id = self.display.require_image()
        if self.state.image is None:
            raise InputError("the image pixels are not available (file missing?); cannot run prompts")
        if self.models is None:
            raise InputError("no models loaded: pass models=load_models('tiny'|'offline'|'default') to "
                             "the Annotator; " + WEIGHTS_HINT)
        pipe = self._pipeline(prompt, class_name, branches)
        segment = self._segmenting(pipe)

        def work() -> list[Any]:
            lock = self.keeper.lock if self.keeper is not None else None
            if lock is None:
                return segment()
            with lock:
                return segment()

        if wait:
            return self._store_run(image_id, work())
        self._running(True, f"running {', '.join(pipe.branches)} on image {image_id}\u2026")

        def done(cands: Any, error: BaseException | None) -> None:
            self._running(False, "")
            if error is not None:
                self.display.say(f"prompt run failed: {html.escape(str(error))}", error=True)
                return
            self._store_run(image_id, cands)

        return self.runner.submit(work, done)

    def runnable_branches(self) -> tuple[str, ...]:
        """The pipeline branches the loaded models can run (empty without text-prompt models)."""
        if self.models is None:
            return ()
        return tuple(b for b, missing in available_branches(self.models).items() if not missing)

    def run_blocker(self) -> str:
        """Why Run cannot run (HTML naming every missing weight), or "" when a branch can."""
        if self.runnable_branches():
            return ""
        status = available_branches(self.models)
        return ("Run is off: no text-prompt branch can run with the loaded models. Fetch the weights "
                f"(needs internet once), then load them: {missing_weights_html(status)}. Boxes and "
                "polygons work without them.")

    def show_run_state(self) -> None:
        """Enable the branch boxes that can run, and Run only when one can (else say why)."""
        runnable = self.runnable_branches()
        status = available_branches(self.models)
        for name, box in self.panel.branches.items():
            box.disabled = name not in runnable
            box.value = name in runnable and (name != "concept" or runnable == ("concept",))
            box.description = name if name in runnable else f"{name} (needs weights)"
            box.tooltip = "" if name in runnable else "needs " + ", ".join(status.get(name, []))
        reason = self.run_blocker()
        self.panel.run.disabled = bool(reason) or self.runner.busy
        self.panel.run_reason.value = (f"<div style='font-size:11px;line-height:1.35;color:#666;white-space:normal;"
                                       f"overflow-wrap:anywhere'>{reason}</div>") if reason else ""

    def wait(self, timeout: float | None = None) -> None:
        """Block until a background prompt run ends and apply its result (scripts and tests)."""
        self.runner.wait(timeout)

    def _pipeline(self, prompt: str | None, class_name: str | None,
                  branches: tuple[str, ...] | None) -> Any:
        from text2seg_widgets.pipeline import ClassSet, PipelineConfig, Text2SegPipeline

        infos = {c.name: (tuple(c.prompts) or (c.name,)) for c in self.project.classes}
        if not infos:
            raise InputError("the project has no classes: add one with project.add_class(name)")
        if prompt and prompt.strip():
            name = class_name or self.state.current_class
            if name is None:
                raise InputError("pick the class this prompt describes first (the class menu)")
            self.display.check_class(name)
            classes = ClassSet.from_names({name: [prompt.strip()]})
        elif class_name:
            self.display.check_class(class_name)
            classes = ClassSet.from_names({class_name: list(infos[class_name])})
        else:
            classes = ClassSet.from_names({k: list(v) for k, v in infos.items()})
        settings = self.panel.branch_settings()
        chosen = tuple(branches) if branches is not None else settings["branches"]
        status = available_branches(self.models)
        if not chosen and not any(not roles for roles in status.values()):
            chosen = tuple(status)  # nothing can run: say what every branch lacks
        if not chosen:
            raise InputError("no branch is enabled: tick at least one in 'prompt settings'")
        missing = {b: names for b, names in status.items() if b in chosen and names}
        if missing:
            what = "; ".join(f"{b} branch needs {', '.join(n)}" for b, n in missing.items())
            raise InputError(f"cannot run: the {what}. Untick those branches, or {WEIGHTS_HINT}")
        base = self.pipeline_config or PipelineConfig()
        config = dataclasses.replace(base, branches=chosen, box_threshold=settings["box_threshold"],
                                     filter_min_similarity=settings["clip_threshold"])
        return Text2SegPipeline(self.models, classes, config)

    def _segmenting(self, pipe: Any) -> Callable[[], list[Any]]:
        """The run, as a call that returns the candidates in the image's pixel grid: the whole image
        when it is held; the visible part of a big one (a scene is read tile by tile from its
        file, through the one tile loop, never whole)."""
        from text2seg_widgets.pipeline import tiles

        image = self.state.image
        visible = self._visible_window() if max(image.width, image.height) > BIG_SIDE else None
        if image.rgb is not None:
            rgb = image.rgb
            window = None if visible is None else (visible[0], visible[1], visible[2] - visible[0],
                                                   visible[3] - visible[1])
            return lambda: tiles.segment_array(pipe, rgb, window=window)
        if visible is None:
            raise InputError("the map view is not known yet: zoom in on the part of the scene to prompt, then Run")
        x0, y0, x1, y1 = visible
        if (x1 - x0) * (y1 - y0) > MAX_RUN_PIXELS:
            raise InputError(f"the view covers {x1 - x0} x {y1 - y0} pixels of the scene; a prompt run covers at "
                             f"most {MAX_RUN_PIXELS // 1_000_000} million: zoom in, then Run")
        col, row = (image.window[0], image.window[1]) if image.window is not None else (0, 0)
        path, width, height = image.path, image.width, image.height

        def run() -> list[Any]:
            with tiles.open_tiles(path, window=(col + x0, row + y0, x1 - x0, y1 - y0)) as plan:
                assembler = tiles.TileAssembler(width, height, list(pipe.classes.names), origin=(x0, y0))
                for result in tiles.segment_tiles(pipe, plan):
                    assembler.add(result)
            return assembler.candidates()

        return run

    def _store_run(self, image_id: int, cands: list[Any]) -> list[int]:
        ids = self.project.add_candidates(image_id, cands) if cands else []
        if image_id == self.state.image_id:
            self.display.refresh()
        self.display.say(f"{plural(len(ids), 'new candidate')} on image {image_id}")
        return ids

    def _running(self, on: bool, text: str) -> None:
        bar = self.panel.running
        bar.layout.visibility = "visible" if on else "hidden"
        bar.value = 0 if on else 1
        bar.description = "running" if on else ""
        self.panel.run.disabled = on or not self.runnable_branches()
        if text:
            self.display.say(text)

