"""Reviewing a whole 20,000 x 20,000 GeoTIFF in JupyterLab + headless Chromium, beside a 1024 px tile.

Scene: the shared NAIP tile mirrored into a 20,000 px mosaic, CRS kept, tiled 512 with overviews
(tests/scenes.py). Tile: a 1024 px window of it written as its own GeoTIFF. Each runs in its own
JupyterLab server and Chromium page, with LiteMedSAM (the offline models) in the Annotator:

* ``first_view_s``: the Annotator cell's kernel time + (annotator on the page -> every map tile in
  view loaded);
* ``tile_after_pan``: each map tile that loads after a mouse pan at native zoom, from mouse-up to
  the tile's load event (a capture listener in the page); the pans followed at once by a box are
  counted apart (``tile_after_pan_then_box``: their tiles share the CPU with the box's encode);
* ``encode_idle_ms``: one LiteMedSAM encode in the kernel before the Annotator is shown (this
  machine's speed at the time); ``cpu_share_during_pans``: CPU seconds per second of the pan loop
  used by the kernel, its tile server, the Jupyter server and Chromium (2 = both cores);
* ``box_unseen``: a box dragged right after a pan into a part of the image never shown before,
  from mouse-up until the message names the new annotation and its outline is drawn;
* ``box_new_window_tiles_shown``: once the pan's tiles are on screen (what an annotator waits for
  before aiming), a box on another window not encoded yet (with ``--prefetch 0``, surely not);
* ``box_cached``: a second box on the same object (its window's embedding held); ``*_kernel``:
  the kernel time the message reports for each box;
* ``kernel_rss_growth_mb``: the kernel's RSS after the pans minus before (a diagonal sweep at native
  zoom across the image); ``tile_server_rss_*``: the same for the tile server's processes;
* ``accept_10k``: with 10,000 proposed candidates on the image, ``j`` then ``a`` (select next,
  accept), from the ``a`` keypress until the message says it was accepted and a frame was painted.

The load average is recorded beside each. Usage:
``nice -n 5 .venv/bin/python benchmarks/bench_scene_review.py [--size 20000] [--pans 24] [--prefetch 0]``; prints a
table and writes ``benchmarks/results/scene_review.json``.
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
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.browser.lab import LabPage, LabServer, launch_chromium, write_notebook  # noqa: E402
from tests.scenes import naip_mosaic  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "scene_review.json"
NAIP = ROOT.parent / "shared" / "data" / "geotiff" / "naip_m_4709963_se_14_1_20200831.tif"

SETUP = '''
import os, time
from pathlib import Path
from text2seg_widgets.models.factory import load_models
from text2seg_widgets.store import Project
from text2seg_widgets.widgets import Annotator

Path("kernel.pid").write_text(str(os.getpid()))
os.environ["TEXT2SEG_EMBED_CACHE"] = str(Path("embedding-cache").resolve())  # cold: nothing seen before
os.environ["TEXT2SEG_PREFETCH_WINDOWS"] = {prefetch!r}  # "0": every new window is encoded on demand
models = load_models("offline", device="cpu")
import numpy as np
_rng = np.random.default_rng(0)
_times = []
for _ in range(3):  # this machine's speed now: LiteMedSAM encodes of a 256 px window, nothing else running
    _t = time.perf_counter()
    models.segmenter.encode(_rng.integers(0, 255, (256, 256, 3), dtype=np.uint8))
    _times.append(time.perf_counter() - _t)
Path("encode_idle_ms").write_text(str(1000 * sorted(_times)[1]))
project = Project.create("job", classes=["building", "road", "field"])
record = project.add_image({image!r})
'''
SHOW = '''
t0 = time.perf_counter()
app = Annotator(project, models, map_height="640px")
Path("annotator.s").write_text(str(time.perf_counter() - t0))
app
'''
NATIVE = '''
lng, lat = app.state.frame.to_map([{cx}], [{cy}])
app.map.center = (float(lat[0]), float(lng[0]))
app.map.zoom = {zoom}
app.set_mode("box")
'''
CANDIDATES = '''
import numpy as np
from text2seg_widgets.core import Candidate
from text2seg_widgets.imagery.instances import crop_to_scene_rle
rng = np.random.default_rng(0)
w, h = app.state.frame.width, app.state.frame.height
cands = []
for i in range({n}):
    x, y = int(rng.integers(0, w - 12)), int(rng.integers(0, h - 12))
    rle = crop_to_scene_rle(np.ones((10, 10), bool), x, y, h, w)
    cands.append(Candidate(rle=rle, class_name="building", score=float(rng.uniform(0.3, 0.9)), branch="filter"))
project.add_candidates(record.id, cands)
app.set_mode("select")
app.refresh()
Path("candidates.done").write_text("ok")
'''

#: page-side probes: load times of map tiles, and a paint wait
INIT_SCRIPT = r"""
(() => {
  const B = window.__scene = {loads: []};
  document.addEventListener('load', (e) => {
    const t = e.target;
    if (t && t.tagName === 'IMG' && t.classList && t.classList.contains('leaflet-tile'))
      B.loads.push({t: performance.now(), src: t.src});
  }, true);
})();
"""


def pct(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=float)
    arr = arr[np.isfinite(arr)]
    if not arr.size:
        return {"n": 0}
    return {"n": int(arr.size), "p50_ms": round(float(np.percentile(arr, 50)), 1),
            "p95_ms": round(float(np.percentile(arr, 95)), 1), "max_ms": round(float(arr.max()), 1)}


def rss_mb(pid: int) -> float:
    import psutil

    return psutil.Process(pid).memory_info().rss / 1e6


def tile_server_rss_mb(kernel: int) -> float:
    """RSS of the kernel's tile server (its child processes: the supervisor and the workers)."""
    import psutil

    total = 0.0
    for p in psutil.Process(kernel).children(recursive=True):
        try:
            total += p.memory_info().rss / 1e6
        except psutil.Error:
            pass
    return total


def cpu_by_process(kernel: int, lab: int) -> dict[str, float]:
    """CPU seconds used so far by the kernel, its tile server (the kernel's child processes), the
    rest of the Jupyter server and Chromium."""
    import psutil

    def cpu(p: "psutil.Process") -> float:
        try:
            t = p.cpu_times()
            return float(t.user + t.system)
        except psutil.Error:
            return 0.0

    k = psutil.Process(kernel)
    tiles = k.children(recursive=True)
    lab_all = [psutil.Process(lab), *psutil.Process(lab).children(recursive=True)]
    skip = {kernel, *(p.pid for p in tiles)}
    chromium = [p for p in psutil.process_iter(["name"]) if "chrom" in (p.info["name"] or "").lower()]
    return {"kernel": cpu(k), "tile_server": sum(cpu(p) for p in tiles),
            "jupyter_server": sum(cpu(p) for p in lab_all if p.pid not in skip),
            "chromium": sum(cpu(p) for p in chromium)}


def tiles_settled(ui: LabPage, timeout_ms: int = 60_000) -> None:
    """Every tile image in the map has loaded (none pending)."""
    ui.page.wait_for_function(
        "() => { const c = document.querySelector('.t2s-annotator .leaflet-container');"
        " const ts = c ? [...c.querySelectorAll('img.leaflet-tile')] : [];"
        " return ts.length > 0 && ts.every(t => t.classList.contains('leaflet-tile-loaded')); }",
        timeout=timeout_ms)


def now(ui: LabPage) -> float:
    return float(ui.page.evaluate("() => performance.now()"))


def message(ui: LabPage) -> str:
    return ui.page.locator(".t2s-annotator .t2s-message").first.inner_text()


def wait_message_change(ui: LabPage, before: str, timeout_ms: int = 60_000) -> float:
    ui.page.wait_for_function(
        "(b) => { const e = document.querySelector('.t2s-annotator .t2s-message');"
        " return e && e.innerText !== b && e.innerText.length > 0; }", arg=before, timeout=timeout_ms)
    return float(ui.page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(performance.now())))"))


def kernel_ms(ui: LabPage) -> float:
    """The kernel time the message reports for the last box (NaN when it names none)."""
    import re

    found = re.search(r"kernel time (\d+) ms", message(ui))
    return float(found.group(1)) if found else float("nan")


def map_center(ui: LabPage) -> tuple[float, float]:
    box = ui.page.locator(".t2s-annotator .leaflet-container").first.bounding_box()
    return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2


def pan(ui: LabPage, dx: float, dy: float) -> float:
    """Drag the map by (dx, dy) CSS px; returns the page time of mouse-up."""
    cx, cy = map_center(ui)
    ui.page.mouse.move(cx, cy)
    ui.page.mouse.down()
    ui.page.mouse.move(cx + dx / 2, cy + dy / 2, steps=5)
    ui.page.mouse.move(cx + dx, cy + dy, steps=5)
    ui.page.wait_for_timeout(150)  # hold still: no inertia after the release (the pan is exactly dx, dy)
    t = now(ui)
    ui.page.mouse.up()
    return t


def draw_box(ui: LabPage, x0: float, y0: float, x1: float, y1: float) -> float:
    ui.page.locator(".t2s-annotator .leaflet-draw-draw-rectangle").click()
    ui.page.mouse.move(x0, y0)
    ui.page.mouse.down()
    ui.page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=3)
    ui.page.mouse.move(x1, y1, steps=3)
    t = now(ui)
    ui.page.mouse.up()
    return t


def run_case(name: str, image: Path, work: Path, pw: Any, args: argparse.Namespace) -> dict[str, Any]:
    import rasterio

    root = work / name
    root.mkdir()
    with rasterio.open(image) as ds:
        width, height = ds.width, ds.height
    write_notebook(root / "review.ipynb", [SETUP.format(image=str(image), prefetch=str(args.prefetch)), SHOW])
    out: dict[str, Any] = {"image": f"{width} x {height}", "file": image.name}
    with LabServer(root, work / f"{name}-state", work / f"{name}-lab.log") as lab:
        context = launch_chromium(pw, work / f"{name}-chromium")
        try:
            page = context.pages[0] if context.pages else context.new_page()
            page.add_init_script(INIT_SCRIPT)
            ui = LabPage(page, timeout_ms=300_000)
            ui.open(lab.notebook_url("review.ipynb"))
            ui.run_all()
            page.wait_for_selector(".t2s-annotator .leaflet-container", timeout=300_000)
            t_shown = now(ui)
            tiles_settled(ui, 120_000)
            t_tiles = now(ui)
            ui.wait_cells_done()
            kernel_s = float((root / "annotator.s").read_text())
            out["first_view_s"] = round(kernel_s + (t_tiles - t_shown) / 1000.0, 2)
            out["first_view_load"] = os.getloadavg()[0]
            pid = int((root / "kernel.pid").read_text())
            ui.focus_cell_of(".t2s-annotator")
            page.locator(".t2s-annotator").first.evaluate("e => e.scrollIntoView({block: 'start'})")

            # native zoom near the top-left, in box mode (the next cell)
            cx, cy = (1200, 800) if width > 2048 else (width // 2, height // 2)
            zoom_code = NATIVE.format(cx=cx, cy=cy, zoom="app.view.tiles.tiled(app.image.path, app.image.window).native_zoom")
            _run_code(ui, zoom_code)
            tiles_settled(ui)
            page.wait_for_timeout(3000)
            before = rss_mb(pid)
            tiles_before = tile_server_rss_mb(pid)
            tile_ms: list[float] = []
            tile_ms_box: list[float] = []  # tiles of the pans a box was drawn right after
            during_drag = 0
            assert lab.proc is not None
            cpu_before = cpu_by_process(pid, lab.proc.pid)
            wall_before = time.perf_counter()
            unseen_kernel: list[float] = []
            seen: list[float] = []
            seen_kernel: list[float] = []
            cached_kernel: list[float] = []
            unseen: list[float] = []
            cached: list[float] = []
            big = width > 2048
            steps = args.pans if big else 4
            every = max(1, steps // max(1, args.boxes))
            for i in range(steps):
                # a diagonal sweep across the scene; on the tile, back and forth
                dx, dy = (-700.0, -420.0) if big else ((-250.0, -150.0) if i % 2 == 0 else (250.0, 150.0))
                n0 = int(page.evaluate("() => window.__scene.loads.length"))
                t_up = pan(ui, dx, dy)
                boxed = i % every == every - 1 and len(unseen) < args.boxes
                if boxed:  # a box right away: a new window
                    mx, my = map_center(ui)
                    before_msg = message(ui)
                    t0 = draw_box(ui, mx - 40, my - 30, mx + 40, my + 30)
                    unseen.append(wait_message_change(ui, before_msg) - t0)
                    unseen_kernel.append(kernel_ms(ui))
                try:
                    tiles_settled(ui)
                except Exception:  # noqa: BLE001 - a stuck tile is reported as the time it was given
                    pass
                if len(seen) < len(unseen):  # the region is on screen now: a box on a new window
                    mx, my = map_center(ui)
                    before_msg = message(ui)
                    t0 = draw_box(ui, mx + 260, my - 30, mx + 340, my + 30)
                    seen.append(wait_message_change(ui, before_msg) - t0)
                    seen_kernel.append(kernel_ms(ui))
                loads = page.evaluate(f"() => window.__scene.loads.slice({n0})")
                (tile_ms_box if boxed else tile_ms).extend(ld["t"] - t_up for ld in loads if ld["t"] >= t_up)
                during_drag += sum(1 for ld in loads if ld["t"] < t_up)
                if len(cached) < len(unseen):
                    page.wait_for_timeout(1000)
                    mx, my = map_center(ui)
                    before_msg = message(ui)
                    t0 = draw_box(ui, mx - 34, my - 26, mx + 44, my + 34)  # the same object, its window held
                    cached.append(wait_message_change(ui, before_msg) - t0)
                    cached_kernel.append(kernel_ms(ui))
            after = rss_mb(pid)
            tiles_after = tile_server_rss_mb(pid)
            out.update({"tile_server_rss_before_mb": round(tiles_before, 1), "tile_server_rss_after_mb": round(tiles_after, 1),
                        "tile_server_rss_growth_mb": round(tiles_after - tiles_before, 1)})
            wall = time.perf_counter() - wall_before
            cpu_after = cpu_by_process(pid, lab.proc.pid)
            out["encode_idle_ms"] = round(float((root / "encode_idle_ms").read_text()), 1)
            out["cpu_share_during_pans"] = {k: round((cpu_after[k] - cpu_before[k]) / wall, 3) for k in cpu_after}
            out["cpu_share_during_pans"]["wall_s"] = round(wall, 1)
            out.update({"tile_after_pan": pct(tile_ms), "tile_after_pan_then_box": pct(tile_ms_box),
                        "tiles_loaded_during_drag": during_drag, "pans": steps, "pan_load": os.getloadavg()[0],
                        "box_unseen": pct(unseen), "box_unseen_kernel": pct(unseen_kernel),
                        "box_new_window_tiles_shown": pct(seen), "box_new_window_tiles_shown_kernel": pct(seen_kernel),
                        "box_cached": pct(cached), "box_cached_kernel": pct(cached_kernel),
                        "box_load": os.getloadavg()[0],
                        "kernel_rss_before_mb": round(before, 1), "kernel_rss_after_mb": round(after, 1),
                        "kernel_rss_growth_mb": round(after - before, 1), "last_message": message(ui)})
            print(name, json.dumps(out), flush=True)

            _run_code(ui, CANDIDATES.format(n=args.candidates))
            for _ in range(120):
                if (root / "candidates.done").exists():
                    break
                time.sleep(1)
            ui.wait_kernel_idle()
            page.wait_for_timeout(1500)
            accepts: list[float] = []
            for _ in range(args.accepts):
                ui.key("j")
                ui.wait_kernel_idle()
                before_msg = message(ui)
                page.locator(".t2s-panel .t2s-keys").first.hover()
                t0 = now(ui)
                page.keyboard.press("a")
                accepts.append(wait_message_change(ui, before_msg) - t0)
            out.update({"accept_10k": pct(accepts), "accept_load": os.getloadavg()[0],
                        "candidates": args.candidates})
        finally:
            context.close()
    return out


def _run_code(ui: LabPage, code: str) -> None:
    """Append a cell with ``code`` at the end of the notebook and run it."""
    page = ui.page
    page.locator(".jp-Cell").last.locator(".jp-InputArea-prompt").click()
    page.keyboard.press("b")
    page.wait_for_timeout(300)
    page.keyboard.press("Enter")
    page.keyboard.insert_text(code.strip())
    page.keyboard.press("Shift+Enter")
    page.wait_for_timeout(500)
    ui.wait_kernel_idle(300_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=20000)
    parser.add_argument("--pans", type=int, default=24)
    parser.add_argument("--boxes", type=int, default=4)
    parser.add_argument("--accepts", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=10000)
    parser.add_argument("--prefetch", type=int, default=4,
                        help="TEXT2SEG_PREFETCH_WINDOWS in the kernel (0: every box window is encoded on demand)")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="t2s-scene-bench-"))
    t = time.perf_counter()
    scene = naip_mosaic(NAIP, work / f"naip_mosaic_{args.size}.tif", args.size)
    made = round(time.perf_counter() - t, 1)
    import rasterio
    from rasterio.windows import Window

    tile = work / "naip_tile_1024.tif"
    with rasterio.open(scene) as src:
        win = Window(4096, 4096, 1024, 1024)
        profile = {**src.profile, "width": 1024, "height": 1024, "transform": src.window_transform(win)}
        with rasterio.open(tile, "w", **profile) as dst:
            dst.write(src.read(window=win))
    results: dict[str, Any] = {}
    with sync_playwright() as pw:
        for name, image in (("scene", scene), ("tile", tile)):
            results[name] = run_case(name, image, work, pw, args)
    out = {"machine": platform.platform(), "cpus": os.cpu_count(), "model": "LiteMedSAM (offline), CPU",
           "scene_written_s": made, "args": vars(args), **results}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    keys = ["encode_idle_ms", "first_view_s", "tile_after_pan", "tile_after_pan_then_box", "box_unseen", "box_new_window_tiles_shown", "box_cached",
            "kernel_rss_growth_mb", "tile_server_rss_growth_mb", "accept_10k"]
    print(f"{'measure':24} {'scene':>32} {'tile':>32}")
    for k in keys:
        cells = []
        for name in ("scene", "tile"):
            v = results[name].get(k)
            cells.append(f"p50 {v.get('p50_ms')} p95 {v.get('p95_ms')} (n={v.get('n')})" if isinstance(v, dict) else str(v))
        print(f"{k:24} {cells[0]:>32} {cells[1]:>32}")
    print(f"written to {RESULTS}")


if __name__ == "__main__":
    main()
