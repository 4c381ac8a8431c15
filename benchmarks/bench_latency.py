"""Annotator latency: click-to-mask with the cached embedding, and accept-to-redraw.

Kernel side, on a real 1024x1024 LoveDA tile (``../shared/data/rs-samples``):

* ``decode``: the SAM decode of one click (point prompts accumulate, previous logits fed back),
  upsampled to the image (= display) resolution;
* ``click``: the whole ``Annotator.click`` action: decode + store write + GeoJSON redraw;
* ``recompute``: what a tool without the embedding cache pays per click: encode + decode;

for SAM ViT-B at real size with random weights and for LiteMedSAM (real weights; box prompts,
since it takes no points). Then ``accept``: ``accept_selected()`` (store + redraw of the changed
layers) with 500 candidates on the image. With ``--browser`` also the browser side in Voila +
Chromium: click on the map until the new mask is drawn, and Accept until the list/layers update.

Usage: ``python benchmarks/bench_latency.py [--clicks 50] [--recompute 3] [--browser]``; prints a
table and writes ``benchmarks/results/latency.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("TEXT2SEG_SHARED_DATA", ROOT.parent / "shared" / "data"))
RESULTS = ROOT / "benchmarks" / "results" / "latency.json"


def pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float) * 1000.0
    return {"n": int(arr.size), "p50_ms": round(float(np.percentile(arr, 50)), 2),
            "p95_ms": round(float(np.percentile(arr, 95)), 2), "mean_ms": round(float(arr.mean()), 2)}


def tile() -> Path:
    path = sorted((SHARED / "rs-samples" / "loveda" / "images").glob("*.png"))[0]
    return path


def new_project(folder: Path, image: Path, n_candidates: int = 0, seed: int = 0) -> Any:
    from text2seg_widgets.core import Candidate
    from text2seg_widgets.store import Project

    p = Project.create(folder, classes=["building", "road"])
    rec = p.add_image(image)
    if n_candidates:
        rng = np.random.default_rng(seed)
        cands = []
        for i in range(n_candidates):
            m = np.zeros((rec.height, rec.width), dtype=bool)
            y, x = rng.integers(0, rec.height - 40), rng.integers(0, rec.width - 40)
            m[y:y + rng.integers(8, 40), x:x + rng.integers(8, 40)] = True
            cands.append(Candidate.from_mask(m, class_name=("building", "road")[i % 2],
                                             score=float(rng.random()), branch="detector"))
        p.add_candidates(rec.id, cands)
    return p


def timed(fn: Callable[[], Any]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bench_segmenter(name: str, segmenter: Any, clicks: int, recompute: int, work: Path) -> dict[str, Any]:
    """Clicks (or boxes for a box-only model) against the cached embedding, vs re-encoding."""
    from text2seg_widgets.errors import InputError
    from text2seg_widgets.models.modelset import ModelSet
    from text2seg_widgets.widgets import Annotator

    project = new_project(work / name, tile())
    app = Annotator(project, ModelSet(segmenter=segmenter))
    rgb = app.image.rgb
    h, w = rgb.shape[:2]
    rng = np.random.default_rng(1)
    encode = timed(lambda: app.keeper.ensure(app.image_id, rgb))
    points = True
    try:
        app.click(w / 2, h / 2)
    except InputError:
        points = False  # LiteMedSAM: boxes only
    decode, click, empty = [], [], 0
    for i in range(clicks):
        if i % 10 == 0:
            app.clear_selection()  # a new object every 10 clicks, refined by the next 9
        x, y = float(rng.integers(40, w - 40)), float(rng.integers(40, h - 40))
        action = (lambda: app.click(x, y, positive=bool(i % 3))) if points else \
            (lambda: app.box(x - 30, y - 30, x + 30, y + 30))
        t0 = time.perf_counter()
        try:
            action()
        except InputError:  # random weights may answer with an empty mask: still a full decode
            empty += 1
        click.append(time.perf_counter() - t0)
        decode.append(app.last_refine_seconds)
    recomputed = []
    for _ in range(recompute):
        def full() -> None:
            segmenter.reset_image()  # forget the held embedding, as a cache-less tool would
            segmenter.set_image(rgb)
            box = np.array([100.0, 100.0, 300.0, 300.0])
            segmenter.predict(box=box)
        recomputed.append(timed(full))
    project.close()
    d, r = pct(decode), pct(recomputed)
    return {"model": getattr(segmenter, "name", name), "prompt": "points" if points else "boxes",
            "image": f"{w}x{h}", "empty_answers": empty, "encode_once_s": round(encode, 2), "decode": d, "click_action": pct(click),
            "recompute_per_click": r, "speedup_p50": round(r["p50_ms"] / max(d["p50_ms"], 1e-6), 1)}


def bench_accept(n: int, work: Path, rounds: int = 30) -> dict[str, Any]:
    from text2seg_widgets.widgets import Annotator

    project = new_project(work / "accept", tile(), n_candidates=n)
    t0 = time.perf_counter()
    app = Annotator(project)
    first_draw = time.perf_counter() - t0
    times = []
    for _ in range(rounds):
        app.select_next()
        times.append(timed(app.accept_selected))
    project.close()
    return {"candidates": n, "first_draw_s": round(first_draw, 2), "accept_to_redraw": pct(times)}


BENCH_NOTEBOOK = """
from text2seg_widgets.models.modelset import ModelSet
from text2seg_widgets.models.tiny import tiny_sam_segmenter
from text2seg_widgets.store import Project
from text2seg_widgets.widgets import Annotator
app = Annotator(Project.open(PROJECT), ModelSet(segmenter=tiny_sam_segmenter(seed=1)))
app
"""

CLEARED = "selection cleared"
SOLID = """() => Array.from(document.querySelectorAll('path.leaflet-interactive')).filter(
    p => !p.getAttribute('stroke-dasharray') && p.getAttribute('stroke') !== '#ffff00').length"""


def browser_latency(work: Path, clicks: int = 20, accepts: int = 20, candidates: int = 500) -> dict[str, Any]:
    """Voila + headless Chromium: map click until the new mask is drawn (tiny SAM in the kernel,
    so this is the UI round trip plus a fast decode), and Accept until the redraw, with
    ``candidates`` masks on a 1024 px tile."""
    import nbformat
    from playwright.sync_api import sync_playwright

    from tests.browser.conftest import CHROMIUM_ARGS, VoilaServer, chromium_path

    project = new_project(work / "browser", tile(), n_candidates=candidates)
    project.close()
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(
        f"PROJECT = {str(work / 'browser')!r}\n" + BENCH_NOTEBOOK)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb_path = work / "bench.ipynb"
    nbformat.write(nb, nb_path)
    server = VoilaServer(nb_path, {}, work / "voila.log")
    try:
        server.wait_ready()
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium_path(), headless=True, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1500, "height": 1300})
            page.goto(server.url, timeout=600_000)
            page.wait_for_selector("img.leaflet-image-layer", timeout=600_000)
            page.wait_for_selector("path.leaflet-interactive", timeout=600_000)
            result = {"candidates": candidates, "accept_to_redraw": _browser_accepts(page, accepts),
                      "click_to_mask_tiny_sam": _browser_clicks(page, clicks)}
            browser.close()
    finally:
        server.stop()
    return result


def _wait_solid(page: Any, count: int) -> None:
    page.wait_for_function(f"() => ({SOLID})() >= {count}", timeout=120_000, polling="raf")


def _browser_accepts(page: Any, n: int) -> dict[str, float]:
    times = []
    for _ in range(n):
        page.locator(".t2s-panel .t2s-keys").first.hover()  # a region watched for keys
        page.keyboard.press("j")
        page.wait_for_selector('path[stroke="#ffff00"]', timeout=60_000)
        before = page.evaluate(SOLID)
        t0 = time.perf_counter()
        page.locator("button.t2s-accept").click()
        _wait_solid(page, before + 1)
        times.append(time.perf_counter() - t0)
    return pct(times)


def _browser_clicks(page: Any, n: int) -> dict[str, float]:
    page.locator(".t2s-mode button", has_text="+ point").click()
    box = page.locator("img.leaflet-image-layer").bounding_box()
    rng = np.random.default_rng(2)
    times = []
    for _ in range(n):
        page.locator(".t2s-panel .t2s-keys").first.hover()  # a region watched for keys
        page.keyboard.press("Escape")  # each click starts a new mask
        page.wait_for_function(f"() => document.querySelector('.t2s-message').innerText.includes({CLEARED!r})",
                               timeout=60_000)
        before = page.evaluate(SOLID)
        x = box["x"] + box["width"] * float(rng.uniform(0.1, 0.9))
        y = box["y"] + box["height"] * float(rng.uniform(0.1, 0.9))
        t0 = time.perf_counter()
        page.mouse.click(x, y)
        try:  # answered: a new outline is drawn, or the message says SAM gave an empty mask
            page.wait_for_function(
                f"() => ({SOLID})() > {before} || document.querySelector('.t2s-message').innerText.includes('empty')",
                timeout=120_000, polling="raf")
        except Exception:
            page.screenshot(path=str(ROOT / "test-output" / "bench_click_timeout.png"))
            raise
        times.append(time.perf_counter() - t0)
    return pct(times)


def accept_only(label: str, candidates: int, rounds: int = 60) -> None:
    """accept -> redraw alone (no models), kept beside earlier labels for before/after comparisons."""
    import subprocess

    path = RESULTS.with_name("latency_accept.json")
    out = json.loads(path.read_text()) if path.exists() else {}
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()
    load0 = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        result = bench_accept(candidates, Path(tmp), rounds=rounds)
    out[label] = {**result, "commit": commit, "load_avg": load0, "load_avg_end": os.getloadavg(),
                  "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    print(json.dumps(out[label]), flush=True)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    print(f"written {path}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clicks", type=int, default=50)
    ap.add_argument("--recompute", type=int, default=3)
    ap.add_argument("--candidates", type=int, default=500)
    ap.add_argument("--browser", action="store_true", help="also measure in Voila + headless Chromium")
    ap.add_argument("--skip-vitb", action="store_true")
    ap.add_argument("--browser-only", action="store_true", help="only the browser measurements")
    ap.add_argument("--accept-only", metavar="LABEL", help="only accept -> redraw (kernel side), saved under "
                    "LABEL (e.g. before/after) in results/latency_accept.json")
    args = ap.parse_args()
    if args.accept_only:
        accept_only(args.accept_only, args.candidates)
        return

    import torch
    from segment_anything import sam_model_registry

    from text2seg_widgets.models.litemedsam import LiteMedSamSegmenter
    from text2seg_widgets.models.sam import SamSegmenter

    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                                       "load_avg": os.getloadavg(), "python": platform.python_version()},
                           "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if args.browser_only:
            out["browser"] = browser_latency(work, clicks=min(args.clicks, 20))
            print(json.dumps(out["browser"]), flush=True)
            RESULTS.with_name("latency_browser.json").write_text(json.dumps(out, indent=2))
            return
        out["accept"] = bench_accept(args.candidates, work)
        print(json.dumps(out["accept"]), flush=True)
        seg = {"litemedsam": lambda: LiteMedSamSegmenter.from_checkpoint(device="cpu")}
        if not args.skip_vitb:
            torch.manual_seed(0)
            seg["sam-vit-b-random"] = lambda: SamSegmenter(sam_model_registry["vit_b"](checkpoint=None),
                                                           name="sam-vit-b-random", device="cpu")
        out["click"] = {}
        for name, build in seg.items():
            out["click"][name] = bench_segmenter(name, build(), args.clicks, args.recompute, work)
            print(json.dumps(out["click"][name]), flush=True)
        if args.browser:
            out["browser"] = browser_latency(work, clicks=min(args.clicks, 20))
            print(json.dumps(out["browser"]), flush=True)
    out["machine"]["load_avg_end"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
