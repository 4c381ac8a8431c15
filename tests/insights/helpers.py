"""Projects with constructed candidates and decisions for the insights tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from text2seg_widgets.core import Candidate
from text2seg_widgets.store import Project

__all__ = ["write_image", "box_mask", "Row", "build_project"]

H, W = 64, 96

#: (class, branch, prompt, score, decision) with decision one of proposed/accepted/rejected/
#: relabel:<class>/corrected; ``box`` (y0, x0, y1, x1) optional as a 6th element.
Row = tuple


def write_image(path: Path, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (H, W, 3), dtype=np.uint8)).save(path)
    return path


def box_mask(y0: int, x0: int, y1: int, x1: int) -> np.ndarray:
    m = np.zeros((H, W), bool)
    m[y0:y1, x0:x1] = True
    return m


def build_project(folder: Path, rows_per_image: Sequence[Sequence[Row]],
                  classes: Sequence = ("building", "road")) -> tuple[Project, list[list[int]]]:
    """A project with one image per entry of ``rows_per_image``; returns it and candidate ids."""
    project = Project.create(folder / "proj", classes=list(classes))
    ids: list[list[int]] = []
    for i, rows in enumerate(rows_per_image):
        image = project.add_image(write_image(folder / f"img{i}.png", seed=i))
        cands = []
        for j, row in enumerate(rows):
            cls, branch, prompt, score = row[:4]
            box = row[5] if len(row) > 5 else (j % 8 * 8, j // 8 % 12 * 8, j % 8 * 8 + 6, j // 8 % 12 * 8 + 6)
            cands.append(Candidate.from_mask(box_mask(*box), class_name=cls, score=score, branch=branch,
                                             prompt=prompt))
        cids = project.add_candidates(image.id, cands)
        for cid, row in zip(cids, rows):
            decision = row[4]
            if decision == "accepted":
                project.accept(cid)
            elif decision == "rejected":
                project.reject(cid)
            elif decision.startswith("relabel:"):
                ann = project.accept(cid)
                project.relabel(ann, decision.split(":", 1)[1])
            elif decision == "corrected":
                ann = project.accept(cid)
                mask = project.annotation(ann).mask().copy()
                mask[0, 0] = not mask[0, 0]
                project.update_annotation_mask(ann, mask)
            elif decision != "proposed":
                raise ValueError(decision)
        ids.append(cids)
    return project, ids
