"""A child process for the two-writers test: adds its own masks and races for shared candidates.

``python -m tests.store.concurrent_child PROJECT IMAGE_ID NAME N OUT`` writes one line per
candidate it managed to accept (``accepted <candidate id> <annotation id>``) and ``done`` at the end.
"""

from __future__ import annotations

import random
import sys

from text2seg_widgets.store import ConflictError, Project
from tests.store.crash_harness import mask_for

__all__ = ["main"]


def main(project: str, image_id: int, name: str, n: int, out: str) -> None:
    rng = random.Random(name)
    with Project.open(project, user=name) as p, open(out, "w") as fh:
        todo = [c.id for c in p.candidates(image_id)]
        rng.shuffle(todo)
        for i in range(n):
            p.add_annotation(image_id, mask_for(i, 0 if name == "a" else 1), "building",
                             source=f"{name}:{i}")
            if todo:
                cid = todo.pop()
                try:
                    fh.write(f"accepted {cid} {p.accept(cid)}\n")
                except ConflictError:
                    fh.write(f"lost {cid}\n")
        fh.write("done\n")


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5])
