"""Annotator latency in JupyterLab itself + Debian's headless Chromium, split kernel vs front end.

Setup: a real 1024 px LoveDA tile with ``--candidates`` (500) random proposed candidates, the
Annotator with LiteMedSAM (the offline models) in a JupyterLab notebook.

* ``accept``: the Accept button clicked with a candidate selected, until the accepted mask is drawn
  solid on the map (a rAF loop in the page sees the new solid outline);
* ``box``: a box dragged with the box tool (selection cleared first, so each box is a new mask),
  from mouse-up until LiteMedSAM's mask is on screen (the yellow selected outline appears).

Each measurement is split in the page itself (a WebSocket wrapper time-stamps every kernel
message): ``kernel`` = IOPub busy -> idle of the request (Python handler incl. sending updates),
``front_end`` = total - kernel (sending the event, transport, decoding the messages, ipyleaflet /
Leaflet re-rendering, layout and paint). Bytes received and SVG paths added/removed per action
show where the front-end time goes; a Chrome CPU profile over the accepts gives the JS functions
that take it, and Chrome's metrics the script / layout / style split.

Usage: ``nice -n 5 python benchmarks/bench_latency_lab.py [--accepts 30] [--boxes 15]``; prints a
table and writes ``benchmarks/results/latency_lab.json`` with the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_latency import new_project, pct, tile  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results" / "latency_lab.json"

NOTEBOOK = """
from text2seg_widgets.models.factory import load_models
from text2seg_widgets.store import Project
from text2seg_widgets.widgets import Annotator

app = Annotator(Project.open({project!r}), load_models("offline", device="cpu"), map_height="700px")
app
"""

#: installed before JupyterLab's scripts: time-stamps kernel WebSocket messages, counts SVG paths
#: added/removed, and records the time an action starts and the time its condition first holds
INIT_SCRIPT = r"""
(() => {
  const B = window.__bench = {msgs: [], t0: null, tDone: null, added: 0, removed: 0, cond: null, collect: false};
  const Orig = window.WebSocket;
  function Wrapped(url, protocols) {
    const ws = protocols === undefined ? new Orig(url) : new Orig(url, protocols);
    if (String(url).includes('/api/kernels/')) {
      ws.addEventListener('message', ev => {
        const now = performance.now();
        let size = 0, head = '';
        if (typeof ev.data === 'string') { size = ev.data.length; head = ev.data.slice(0, 4000); }
        else if (ev.data && ev.data.byteLength !== undefined) {
          size = ev.data.byteLength;
          head = new TextDecoder().decode(new Uint8Array(ev.data, 0, Math.min(size, 4000)));
        }
        const m = /"execution_state":\s*"(\w+)"/.exec(head);
        const t = /"msg_type":\s*"(\w+)"/.exec(head);
        const k = /"state":\s*\{\s*"(\w+)"/.exec(head) || /"method":\s*"(\w+)"/.exec(head);
        const kind = (t ? t[1] : '') + (k ? ':' + k[1] : '');
        if (B.collect && B.t0 !== null) B.msgs.push([now, size, m ? m[1] : '', kind]);
      });
    }
    return ws;
  }
  Wrapped.prototype = Orig.prototype;
  for (const k of ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED']) Wrapped[k] = Orig[k];
  window.WebSocket = Wrapped;
  new MutationObserver(records => {
    if (B.t0 === null || B.tDone !== null) return;
    for (const r of records) {
      for (const n of r.addedNodes) if (n.nodeName === 'path') B.added++;
      for (const n of r.removedNodes) if (n.nodeName === 'path') B.removed++;
    }
  }).observe(document, {childList: true, subtree: true});
  function poll() {
    if (B.t0 === null || B.tDone !== null) return;
    if (B.cond()) { B.tDone = performance.now(); return; }
    requestAnimationFrame(poll);
  }
  B.arm = (event, selector, condSource) => {
    B.msgs = []; B.t0 = null; B.tDone = null; B.added = 0; B.removed = 0; B.collect = true;
    B.cond = new Function('return (' + condSource + ')()');
    const start = ev => {
      if (selector && !(ev.target.closest && ev.target.closest(selector))) return;
      document.removeEventListener(event, start, true);
      B.t0 = performance.now();
      requestAnimationFrame(poll);
    };
    document.addEventListener(event, start, true);
  };
})();
"""

SOLID = """() => Array.from(document.querySelectorAll('.t2s-annotator path.leaflet-interactive')).filter(
    p => !p.getAttribute('stroke-dasharray') && p.getAttribute('stroke') !== '#ffff00').length"""
YELLOW = """() => document.querySelectorAll('.t2s-annotator path[stroke="#ffff00"]').length"""


def split(record: dict[str, Any]) -> dict[str, float]:
    """One action's timings (ms) from the page's record: ``kernel`` is the sum of the kernel's
    busy -> idle intervals from the action's start until the mask is on screen."""
    t0, t1 = record["t0"], record["tDone"]
    kernel, busy_at, first_busy = 0.0, None, None
    for t, _size, state, _kind in record["msgs"]:
        if state == "busy" and busy_at is None:
            busy_at = t
            first_busy = t if first_busy is None else first_busy
        elif state == "idle" and busy_at is not None:
            kernel += min(t, t1) - busy_at if busy_at < t1 else 0.0
            busy_at = None
    if busy_at is not None and busy_at < t1:
        kernel += t1 - busy_at
    total = t1 - t0
    before = [m for m in record["msgs"] if m[0] <= t1]
    return {"total": total, "kernel": kernel, "front_end": total - kernel,
            "to_busy": (first_busy - t0) if first_busy is not None else float("nan"),
            "bytes_in": sum(m[1] for m in before), "messages_in": len(before),
            "paths_added": record["added"], "paths_removed": record["removed"],
            "kinds": dict(Counter(m[3] for m in before if m[3] and not m[2]))}


def log_row(name: str, row: dict[str, float]) -> None:
    print(f"  {name}: total {row['total']:.0f} ms, kernel {row['kernel']:.0f} ms, {row['bytes_in']} B, "
          f"{row['messages_in']} msgs, paths +{row['paths_added']}/-{row['paths_removed']} {row['kinds']}", flush=True)


def summarise(rows: list[dict[str, float]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in ("total", "kernel", "front_end", "to_busy"):
        vals = [r[key] / 1000.0 for r in rows if np.isfinite(r[key])]
        out[key] = pct(vals) if vals else None
    for key in ("bytes_in", "messages_in", "paths_added", "paths_removed"):
        out[key + "_median"] = float(np.median([r[key] for r in rows]))
    kinds: Counter[str] = Counter()
    for r in rows:
        kinds.update(r["kinds"])
    out["messages_in_by_kind_per_action"] = {k: round(v / len(rows), 1) for k, v in kinds.most_common(12)}
    return out


def measure(page: Any, action: Any, event: str, selector: str | None, cond: str, timeout_ms: int = 120_000) -> dict:
    page.evaluate("([e, s, c]) => window.__bench.arm(e, s, c)", [event, selector, cond])
    action()
    page.wait_for_function("() => window.__bench.tDone !== null", timeout=timeout_ms, polling=100)
    page.wait_for_timeout(300)  # let the idle message arrive if the DOM was first
    return page.evaluate("() => { __bench.collect = false; return {t0: __bench.t0, tDone: __bench.tDone, "
                         "msgs: __bench.msgs, added: __bench.added, removed: __bench.removed}; }")


def bench_accepts(ui: Any, n: int) -> list[dict[str, float]]:
    page, rows = ui.page, []
    for _ in range(n):
        ui.key("j")  # select the next proposed candidate
        page.wait_for_selector('.t2s-annotator path[stroke="#ffff00"]', timeout=60_000)
        ui.wait_kernel_idle()
        before = page.evaluate(f"({SOLID})()")
        rec = measure(page, lambda: ui.click("t2s-accept"), "click", ".t2s-accept", f"() => ({SOLID})() > {before}")
        rows.append(split(rec))
        log_row("accept", rows[-1])
    return rows


def bench_boxes(ui: Any, n: int, size: tuple[int, int]) -> list[dict[str, float]]:
    page, rows = ui.page, []
    rng = np.random.default_rng(3)
    ui.tool("box")
    ui.wait_kernel_idle()
    page.wait_for_timeout(500)
    w, h = size
    for i in range(n + 1):  # the first box encodes the image (not timed): boxes reuse the embedding
        ui.key("Escape")  # each box makes a new mask
        ui.wait_text("t2s-message", "selection cleared")
        ui.wait_kernel_idle()
        x0, y0 = float(rng.uniform(0.1, 0.6) * w), float(rng.uniform(0.1, 0.6) * h)
        x1, y1 = x0 + float(rng.uniform(0.1, 0.3) * w), y0 + float(rng.uniform(0.1, 0.3) * h)
        page.locator(".t2s-annotator .leaflet-draw-draw-rectangle").click()
        start, end = ui.screen(x0, y0, w, h), ui.screen(x1, y1, w, h)
        rec = measure(page, lambda: ui.drag(start, end), "mouseup", None, f"() => ({YELLOW})() > 0")
        if i:
            rows.append(split(rec))
            log_row("box", rows[-1])
    return rows


def profile_summary(profile: dict[str, Any], top: int = 15) -> list[dict[str, Any]]:
    """Self time per JS function (ms) from a CDP CPU profile, largest first."""
    nodes = {n["id"]: n for n in profile["nodes"]}
    deltas = profile.get("timeDeltas", [])
    self_us: Counter[int] = Counter()
    for node_id, dt in zip(profile.get("samples", []), deltas):
        self_us[node_id] += dt
    by_fn: Counter[str] = Counter()
    for node_id, us in self_us.items():
        cf = nodes[node_id]["callFrame"]
        url = cf.get("url", "").rsplit("/", 2)
        where = "/".join(url[-2:]) if cf.get("url") else ""
        by_fn[f"{cf.get('functionName') or '(anonymous)'} {where}".strip()] += us
    return [{"function": k, "self_ms": round(v / 1000.0, 1)} for k, v in by_fn.most_common(top)]


def metrics(cdp: Any) -> dict[str, float]:
    got = cdp.send("Performance.getMetrics")["metrics"]
    return {m["name"]: m["value"] for m in got if m["name"] in
            ("ScriptDuration", "LayoutDuration", "RecalcStyleDuration", "TaskDuration", "Nodes")}


def run(work: Path, accepts: int, boxes: int, candidates: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from tests.browser.lab import LabPage, LabServer, launch_chromium, write_notebook

    image = tile()
    proj = work / "lab" / "bench-project"
    (work / "lab").mkdir()
    new_project(proj, image, n_candidates=candidates).close()
    write_notebook(work / "lab" / "bench.ipynb", [NOTEBOOK.format(project=str(proj))])
    from PIL import Image

    size = Image.open(image).size
    result: dict[str, Any] = {"candidates": candidates, "image": image.name, "image_size": size}
    with LabServer(work / "lab", work / "state", work / "lab.log") as server, sync_playwright() as pw:
        ctx = launch_chromium(pw, work / "profile")
        try:
            page = ctx.pages[0] if ctx.pages else ctx.new_page()
            ctx.add_init_script(INIT_SCRIPT)
            ui = LabPage(page, None, timeout_ms=300_000)
            ui.open(server.notebook_url("bench.ipynb"))
            ui.run_all()
            ui.wait_cells_done()
            ui.wait_annotator()
            page.wait_for_selector(".t2s-annotator path.leaflet-interactive", timeout=300_000)
            result["paths_on_map_at_start"] = page.evaluate(
                "() => document.querySelectorAll('.t2s-annotator path.leaflet-interactive').length")
            cdp = ctx.new_cdp_session(page)
            cdp.send("Performance.enable")
            cdp.send("Profiler.enable")
            cdp.send("Profiler.setSamplingInterval", {"interval": 500})
            m0 = metrics(cdp)
            cdp.send("Profiler.start")
            acc = bench_accepts(ui, accepts)
            prof = cdp.send("Profiler.stop")["profile"]
            m1 = metrics(cdp)
            result["accept"] = summarise(acc)
            result["accept"]["chrome_metrics_per_accept_ms"] = {
                k: round(1000.0 * (m1[k] - m0[k]) / accepts, 1) for k in m0 if k.endswith("Duration")}
            result["accept"]["js_self_time_top"] = profile_summary(prof)
            print("accept", json.dumps(result["accept"], indent=1), flush=True)
            m0 = metrics(cdp)
            box = bench_boxes(ui, boxes, size)
            m1 = metrics(cdp)
            result["box_litemedsam"] = summarise(box)
            result["box_litemedsam"]["chrome_metrics_per_box_ms"] = {
                k: round(1000.0 * (m1[k] - m0[k]) / boxes, 1) for k in m0 if k.endswith("Duration")}
            print("box", json.dumps(result["box_litemedsam"], indent=1), flush=True)
        finally:
            ctx.close()
    return result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--accepts", type=int, default=30)
    ap.add_argument("--boxes", type=int, default=15)
    ap.add_argument("--candidates", type=int, default=500)
    args = ap.parse_args()
    out: dict[str, Any] = {"machine": {"cpus": os.cpu_count(), "load_avg_before": os.getloadavg(),
                                       "python": platform.python_version()},
                           "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
                           "where": "JupyterLab + Debian Chromium (headless), LiteMedSAM on CPU"}
    with tempfile.TemporaryDirectory() as tmp:
        out.update(run(Path(tmp), args.accepts, args.boxes, args.candidates))
    out["machine"]["load_avg_after"] = os.getloadavg()
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(out, indent=2))
    for name in ("accept", "box_litemedsam"):
        r = out[name]
        print(f"{name:16s} total p50 {r['total']['p50_ms']:7.1f} p95 {r['total']['p95_ms']:7.1f} ms | kernel p95 "
              f"{(r['kernel'] or {}).get('p95_ms', float('nan')):7.1f} | front end p95 "
              f"{(r['front_end'] or {}).get('p95_ms', float('nan')):7.1f} | {r['bytes_in_median']:.0f} B in, "
              f"{r['paths_added_median']:.0f}/{r['paths_removed_median']:.0f} paths added/removed")
    print("load average", out["machine"]["load_avg_before"], "->", out["machine"]["load_avg_after"])
    print("wrote", RESULTS)


if __name__ == "__main__":
    main()
