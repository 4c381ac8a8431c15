"""Child for the killed-export test: exports COCO and semantic datasets in a loop.

``python -m tests.export.export_crash_child PROJECT OUT_DIR ACK`` appends ``R`` once ready and
``coco`` / ``semantic`` after each finished export.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from text2seg_widgets.export import export_coco, export_semantic
from text2seg_widgets.store import Project

__all__ = ["main"]


def main(project: str, out: str, ack: str) -> None:
    fd = os.open(ack, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    with Project.open(project) as p:
        os.write(fd, b"R\n")
        while True:
            export_coco(p, Path(out) / "coco", overwrite=True, states=None)
            os.write(fd, b"coco\n")
            export_semantic(p, Path(out) / "semantic", overwrite=True, states=None)
            os.write(fd, b"semantic\n")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3])
