"""The time an annotator spends on an image, measured from activity on it.

:class:`ImageClock` runs while an image is open. Time between two signs of activity (opening the
image, any action, leaving it) counts in full up to :attr:`ImageClock.idle_cap` seconds; a longer
gap (the notebook left open over lunch) counts as ``idle_cap``. The Annotator stores the total
with ``project.add_time`` when it leaves the image.
"""

from __future__ import annotations

import time
from typing import Callable

__all__ = ["ImageClock", "IDLE_CAP_S"]

#: the longest gap between two actions that counts as work on the image
IDLE_CAP_S = 120.0


class ImageClock:
    """Seconds of activity on the open image (``now`` is a monotonic clock in seconds)."""

    def __init__(self, idle_cap: float = IDLE_CAP_S, now: Callable[[], float] = time.monotonic) -> None:
        self.idle_cap = float(idle_cap)
        self.now = now
        self.image_id: int | None = None
        self.seconds = 0.0
        self._last: float | None = None

    def start(self, image_id: int | None) -> None:
        """Start timing ``image_id`` (None: nothing open); forgets what was counted."""
        self.image_id = image_id
        self.seconds = 0.0
        self._last = self.now() if image_id is not None else None

    def touch(self) -> None:
        """Activity on the open image: the gap since the last one counts (capped)."""
        if self._last is None:
            return
        t = self.now()
        self.seconds += min(max(t - self._last, 0.0), self.idle_cap)
        self._last = t

    def stop(self) -> tuple[int | None, float]:
        """Leave the image: (its id, the seconds counted); the clock then times nothing."""
        self.touch()
        out = (self.image_id, self.seconds)
        self.start(None)
        return out
