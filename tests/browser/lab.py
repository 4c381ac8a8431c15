"""Driving JupyterLab itself in Debian's headless Chromium: a server on 127.0.0.1 with a temporary
root folder, a page that opens a notebook, waits for the kernel to be idle, runs all cells and
finds the annotator's controls by their ``t2s-*`` CSS classes.

Used by the browser tests (``tests/browser/test_lab_*.py``) and by
``benchmarks/bench_latency_lab.py``. Lessons that cost time (see DESIGN.md section 5): JupyterLab
needs ``--allow-root`` as root; Run All before the kernel is idle is lost; a click inside a map in
an output area lands offset until the cell's input prompt has been clicked once.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any, Iterable

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

__all__ = ["CHROMIUM_ARGS", "LabServer", "LabPage", "chromium_path", "free_port", "launch_chromium",
           "write_notebook"]

CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-sandbox", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]
#: JupyterLab user settings for a quiet test page: no news or update toasts over the widgets
QUIET_SETTINGS = {"@jupyterlab/apputils-extension/notification.jupyterlab-settings":
                  {"fetchNews": "false", "checkForUpdates": False}}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_path() -> str:
    """Debian's Chromium; a clear error (the tests turn it into a failure) when it is missing."""
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        raise RuntimeError("Chromium is not installed: run `make browser` or `apt-get update && apt-get install -y "
                           "chromium` (Debian), then re-run (never `playwright install`: no CDN here)")
    return path


def launch_chromium(pw: Any, user_data_dir: Path) -> Any:
    """A headless Chromium context with its own new user-data folder (a persistent context)."""
    user_data_dir.mkdir(parents=True, exist_ok=True)
    return pw.chromium.launch_persistent_context(str(user_data_dir), executable_path=chromium_path(),
                                                 headless=True, args=CHROMIUM_ARGS,
                                                 viewport={"width": 1500, "height": 1300})


def write_notebook(path: Path, cells: Iterable[str]) -> Path:
    """A notebook of code cells (python3 kernel)."""
    nb = new_notebook(metadata={"kernelspec": {"display_name": "Python 3 (ipykernel)", "language": "python",
                                               "name": "python3"}})
    nb.cells = [new_code_cell(src) for src in cells]
    nbformat.write(nb, path)
    return path


class LabServer:
    """``jupyter lab`` on 127.0.0.1, a free port and a fresh token, serving ``root``; settings and
    workspaces live in ``state`` so nothing leaks between runs. A context manager: :meth:`stop`
    shuts the server (and its kernels) down through the REST API, then kills its process group."""

    def __init__(self, root: Path, state: Path, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.root, self.state, self.log_path = root, state, log_path
        self.port = free_port()
        self.token = secrets.token_hex(16)
        for rel, values in QUIET_SETTINGS.items():
            target = state / "settings" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(json.dumps(values))
        self.env = {**os.environ, **(env or {}), "JUPYTERLAB_SETTINGS_DIR": str(state / "settings"),
                    "JUPYTERLAB_WORKSPACES_DIR": str(state / "workspaces")}
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> "LabServer":
        cmd = [sys.executable, "-m", "jupyter", "lab", "--allow-root", "--no-browser",
               f"--ServerApp.token={self.token}", f"--port={self.port}", "--ServerApp.ip=127.0.0.1",
               "--ServerApp.port_retries=0", f"--ServerApp.root_dir={self.root}",
               "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate", "--LabApp.news_url="]
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=str(self.root), env=self.env, stdout=self._log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"jupyter lab did not start in {timeout:.0f} s:\n{self.log_path.read_text()[-3000:]}")

    def notebook_url(self, name: str) -> str:
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def stop(self) -> None:
        """Shut down (kernels included); kill the process group if it does not end in 30 s."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                req = urllib.request.Request(f"{self.url}/api/shutdown?token={self.token}", method="POST")
                urllib.request.urlopen(req, timeout=10).close()
            except OSError:
                pass
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                pass
        try:  # kernels are in the server's session: end whatever is left of it
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self.proc.wait()
        self.proc = None
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self) -> "LabServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


class LabPage:
    """A Playwright page on one JupyterLab notebook that shows one annotator."""

    def __init__(self, page: Any, shots: Path | None = None, timeout_ms: int = 180_000) -> None:
        self.page, self.shots, self.timeout_ms = page, shots, timeout_ms
        self._shot_index = 0

    # --- notebook ---------------------------------------------------------------------------
    def open(self, url: str) -> None:
        """Open the notebook and wait until its kernel is idle (Run All before that is lost)."""
        self.page.goto(url, timeout=self.timeout_ms * 2)
        self.page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=self.timeout_ms * 2)
        self.wait_kernel_idle(self.timeout_ms * 2)

    def wait_kernel_idle(self, timeout_ms: int | None = None) -> None:
        self.page.wait_for_function(
            "() => { const s = document.querySelector('#jp-main-statusbar');"
            " return s && /\\|\\s*Idle/.test(s.innerText); }", timeout=timeout_ms or self.timeout_ms)

    def run_all(self) -> None:
        """Run > Run All Cells from the menu bar."""
        self.page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
        self.page.locator(".lm-Menu-itemLabel", has_text="Run All Cells").first.click()

    def wait_cells_done(self, timeout_ms: int | None = None) -> None:
        """Every cell has an execution count (none shows ``[*]``) and the kernel is idle."""
        self.page.wait_for_function(
            "() => { const ps = [...document.querySelectorAll('.jp-InputArea-prompt')];"
            " return ps.length > 0 && ps.every(p => /\\[\\d+\\]/.test(p.innerText)); }",
            timeout=timeout_ms or self.timeout_ms * 2)
        self.wait_kernel_idle(timeout_ms)

    def errors(self) -> list[str]:
        """Tracebacks shown in the notebook's outputs."""
        return self.page.locator(".jp-RenderedText[data-mime-type='application/vnd.jupyter.stderr']"
                                 ).all_inner_texts()

    def focus_cell_of(self, selector: str) -> None:
        """Click the input prompt of the cell whose output holds ``selector`` (else clicks inside an
        output's map land offset)."""
        cell = self.page.locator(".jp-Cell", has=self.page.locator(selector)).first
        cell.locator(".jp-InputArea-prompt").click()

    # --- annotator --------------------------------------------------------------------------
    def wait_annotator(self) -> None:
        """Wait for the annotator and its image, focus its cell, scroll it to the top of the notebook."""
        self.page.wait_for_selector(".t2s-annotator", timeout=self.timeout_ms)
        self.page.wait_for_selector("img.leaflet-image-layer", timeout=self.timeout_ms)
        self.focus_cell_of(".t2s-annotator")
        self.page.locator(".t2s-annotator").first.evaluate("e => e.scrollIntoView({block: 'start'})")
        self.page.wait_for_timeout(300)

    def button(self, css: str) -> Any:
        """The annotator's button with CSS class ``css`` (e.g. ``t2s-next``)."""
        return self.page.locator(f".t2s-annotator button.{css}").first

    def click(self, css: str) -> None:
        self.button(css).click()

    def text(self, css: str) -> str:
        return self.page.locator(f".t2s-annotator .{css}").first.inner_text()

    def wait_text(self, css: str, text: str, timeout_ms: int | None = None) -> None:
        """Wait until the element with class ``css`` shows ``text``."""
        try:
            self.page.wait_for_function(
                "([sel, t]) => { const e = document.querySelector(sel); return e && e.innerText.includes(t); }",
                arg=[f".t2s-annotator .{css}", text], timeout=timeout_ms or self.timeout_ms)
        except Exception as exc:  # say what was there instead
            raise AssertionError(f"{css!r} never showed {text!r}; it shows {self.text(css)!r}") from exc

    def tool(self, label: str) -> None:
        """Pick a map tool by its toggle-button label (``box``, ``polygon cuts``...)."""
        self.page.locator(".t2s-annotator .t2s-tool button", has_text=label).first.click()

    def key(self, key: str) -> None:
        # ipyevents listens while the pointer is over a watched region (map, buttons, lists)
        self.page.locator(".t2s-panel .t2s-keys").first.hover()
        self.page.keyboard.press(key)

    # --- map geometry -----------------------------------------------------------------------
    def image_box(self) -> dict[str, float]:
        return self.page.locator(".t2s-annotator img.leaflet-image-layer").first.bounding_box()

    def screen(self, x: float, y: float, width: int, height: int) -> tuple[float, float]:
        """Image pixel (x, y) of a ``width`` x ``height`` image -> page coordinates."""
        box = self.image_box()
        return box["x"] + x * box["width"] / width, box["y"] + y * box["height"] / height

    def drag(self, start: tuple[float, float], end: tuple[float, float]) -> None:
        (x0, y0), (x1, y1) = start, end
        self.page.mouse.move(x0, y0)
        self.page.mouse.down()
        self.page.mouse.move((x0 + x1) / 2, (y0 + y1) / 2, steps=4)
        self.page.mouse.move(x1, y1, steps=4)
        self.page.mouse.up()

    def shot(self, name: str) -> None:
        if self.shots is None:
            return
        self._shot_index += 1
        self.page.screenshot(path=str(self.shots / f"{self._shot_index:02d}_{name}.png"))
