"""The small state the Annotator's parts share: which image is open, what is selected, the tool.

One :class:`AnnotatorState` is made by the Annotator and handed to every part; the parts read and
write its fields, never each other's attributes. Everything that matters beyond this session
lives in the project store, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = ["AnnotatorState"]


@dataclass
class AnnotatorState:
    """What the Annotator shows right now.

    ``selection`` is ("candidate"|"annotation", id) or None; ``session`` the SAM refine session of
    the selection (a :class:`~text2seg_widgets.widgets.refine.RefineSession`); ``image`` the
    loaded pixels (None when the file is missing); ``frame`` where they sit on the map.
    ``syncing`` is True while the code itself sets widget values (their observers then ignore
    the change). ``closed`` turns every UI event into a no-op. ``pending_actions`` counts tool
    attempts that wrote nothing (an empty SAM answer): they are effort too, and are added to the
    ``actions`` of the next mask written on this image.
    """

    image_id: int | None = None
    image: Any = None
    frame: Any = None
    selection: tuple[str, int] | None = None
    session: Any = None
    current_class: str | None = None
    mode: str = "select"
    last_error: str | None = None
    last_refine_seconds: float | None = None
    syncing: bool = False
    closed: bool = False
    pending_actions: int = 0
    #: boxes and clicks refine the selected mask (off: they make new annotations)
    refine: bool = False

    def select(self, selection: tuple[str, int] | None, *, keep_refine: bool = False) -> None:
        """The one way the selection changes: a new selection (or none) drops the refine session,
        except with ``keep_refine`` when the session's target is the new selection (a refine that
        wrote its mask as a new annotation keeps refining it)."""
        self.selection = selection
        if self.session is not None and not (keep_refine and self.session.target == selection):
            self.session = None
