"""Text prompts from the annotator: run the Text2Seg pipeline on the current image in a thread.

The pipeline runs on the whole image, or on the visible part of a big scene; its candidates are
stored on the kernel's thread when the run ends, and the map redraws. Missing models are reported
by name with the command that fetches their weights.
"""

from __future__ import annotations

import dataclasses
import html
import logging
from typing import TYPE_CHECKING, Any

import numpy as np

from text2seg_widgets.errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from text2seg_widgets.widgets.annotator import Annotator

__all__ = ["PromptMixin", "available_branches", "BIG_SIDE"]

log = logging.getLogger(__name__)

#: images with a longer side than this are prompted on the current map view only
BIG_SIDE = 2048
WEIGHTS_HINT = ("see which weights are cached with `text2seg-widgets weights list` and fetch the missing "
                "ones with `text2seg-widgets weights fetch NAME` (needs internet once)")


def available_branches(models: Any) -> dict[str, list[str]]:
    """Branch name -> the model roles it is missing in ``models`` (empty list: it can run)."""
    from text2seg_widgets.pipeline.branches import BRANCH_FUNCTIONS

    return {name: [role for role in roles if getattr(models, role, None) is None]
            for name, (_fn, roles) in BRANCH_FUNCTIONS.items()}


class PromptMixin:
    """``run_prompt`` and its helpers, mixed into :class:`Annotator`."""

    def run_prompt(self: "Annotator", prompt: str | None = None, class_name: str | None = None, *,
                   wait: bool = False, branches: tuple[str, ...] | None = None) -> Any:
        """Run the pipeline for ``class_name`` described by ``prompt`` (default: every class with its
        own prompts). With ``wait`` the run happens here and the new candidate ids are returned;
        otherwise it runs in a background thread (returned) and the map updates when it ends."""
        self._require_image()
        if self.image is None:
            raise InputError("the image pixels are not available (file missing?); cannot run prompts")
        if self.models is None:
            raise InputError("no models loaded: pass models=load_models('tiny'|'offline'|'default') to "
                             "the Annotator; " + WEIGHTS_HINT)
        pipe = self._pipeline(prompt, class_name, branches)
        rgb, window = self._run_region()
        image_id = self.image_id

        def work() -> list[Any]:
            lock = self.keeper.lock if self.keeper is not None else None
            if lock is None:
                return pipe.run(rgb).candidates
            with lock:
                try:
                    return pipe.run(rgb).candidates
                finally:
                    self.keeper.current = None  # the segmenter now holds this run's image

        if wait:
            return self._store_run(image_id, work(), window)
        self._running(True, f"running {', '.join(pipe.branches)} on image {image_id}\u2026")

        def done(cands: Any, error: BaseException | None) -> None:
            self._running(False, "")
            if error is not None:
                self._say(f"prompt run failed: {html.escape(str(error))}", error=True)
                return
            self._store_run(image_id, cands, window)

        return self.runner.submit(work, done)

    def runnable_branches(self: "Annotator") -> tuple[str, ...]:
        """The pipeline branches the loaded models can run (empty without text-prompt models)."""
        if self.models is None:
            return ()
        return tuple(b for b, missing in available_branches(self.models).items() if not missing)

    def wait(self: "Annotator", timeout: float | None = None) -> None:
        """Block until a background prompt run ends and apply its result (scripts and tests)."""
        self.runner.wait(timeout)

    def _pipeline(self: "Annotator", prompt: str | None, class_name: str | None,
                  branches: tuple[str, ...] | None) -> Any:
        from text2seg_widgets.pipeline import ClassSet, PipelineConfig, Text2SegPipeline

        infos = {c.name: (tuple(c.prompts) or (c.name,)) for c in self.project.classes}
        if not infos:
            raise InputError("the project has no classes: add one with project.add_class(name)")
        if prompt and prompt.strip():
            name = class_name or self.current_class
            self._check_class(name)
            classes = ClassSet.from_names({name: [prompt.strip()]})
        elif class_name:
            self._check_class(class_name)
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
        missing = {b: roles for b, roles in status.items() if b in chosen and roles}
        if missing:
            what = "; ".join(f"{b} needs {' and '.join(r)}" for b, r in missing.items())
            raise InputError(f"cannot run: {what} (not loaded). Untick those branches, or {WEIGHTS_HINT}")
        base = self.pipeline_config or PipelineConfig()
        config = dataclasses.replace(base, branches=chosen, box_threshold=settings["box_threshold"],
                                     filter_min_similarity=settings["clip_threshold"])
        return Text2SegPipeline(self.models, classes, config)

    def _run_region(self: "Annotator") -> tuple[np.ndarray, tuple[int, int, int, int] | None]:
        """The pixels to prompt: the whole image, or the visible window of a big one."""
        rgb = self.image.rgb
        h, w = rgb.shape[:2]
        bounds = getattr(self.map, "bounds", None)
        if max(h, w) <= BIG_SIDE or not bounds or self.frame is None:
            return rgb, None
        (s, west), (n, east) = bounds
        xs, ys = self.frame.to_pixel(np.array([west, east]), np.array([s, n]))
        x0, x1 = int(max(0, np.floor(xs.min()))), int(min(w, np.ceil(xs.max())))
        y0, y1 = int(max(0, np.floor(ys.min()))), int(min(h, np.ceil(ys.max())))
        if x1 - x0 < 32 or y1 - y0 < 32:
            return rgb, None
        return np.ascontiguousarray(rgb[y0:y1, x0:x1]), (x0, y0, x1, y1)

    def _store_run(self: "Annotator", image_id: int, cands: list[Any],
                   window: tuple[int, int, int, int] | None) -> list[int]:
        if window is not None:
            cands = [_paste(c, window, self.frame.height, self.frame.width) for c in cands]
        ids = self.project.add_candidates(image_id, cands) if cands else []
        if image_id == self.image_id:
            self.refresh()
        self._say(f"{len(ids)} new candidate(s) on image {image_id}")
        return ids

    def _running(self: "Annotator", on: bool, text: str) -> None:
        bar = self.panel.running
        bar.layout.visibility = "visible" if on else "hidden"
        bar.value = 0 if on else 1
        bar.description = "running" if on else ""
        self.panel.run.disabled = on
        if text:
            self._say(text)


def _paste(cand: Any, window: tuple[int, int, int, int], height: int, width: int) -> Any:
    """A candidate found in a window, moved to the whole image's pixel grid."""
    from text2seg_widgets.core import Candidate

    x0, y0, x1, y1 = window
    full = np.zeros((height, width), dtype=bool)
    full[y0:y1, x0:x1] = cand.mask()
    return Candidate.from_mask(full, class_name=cand.class_name, score=cand.score, branch=cand.branch,
                               prompt=cand.prompt, model=cand.model, **dict(cand.extra or {}))

