"""Real-browser fixtures: Voila or JupyterLab serving a notebook on 127.0.0.1 and Debian's headless
Chromium (one Playwright per session; JupyterLab pages get a new user-data folder each).

Chromium comes from Debian (``apt-get install -y chromium``; ``make browser`` does it), driven by
the Python ``playwright`` package with ``executable_path`` (never ``playwright install``). A
missing browser fails the test with that instruction instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from tests.browser import lab
from tests.browser.lab import CHROMIUM_ARGS, LabPage, LabServer, free_port, launch_chromium

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output" / "browser"


def chromium_path() -> str:
    try:
        return lab.chromium_path()
    except RuntimeError as exc:  # a failure with the instruction, never a skip
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def playwright_session() -> Iterator[object]:
    """One sync Playwright per test session (a second one in the same thread is refused)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_session) -> Iterator[object]:
    path = chromium_path()
    b = playwright_session.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
    yield b
    b.close()


@pytest.fixture
def lab_server(tmp_path: Path, shots: Path) -> Iterator[LabServer]:
    """JupyterLab serving ``tmp_path / "lab"`` (write notebooks there); shut down after the test."""
    root = tmp_path / "lab"
    root.mkdir()
    server = LabServer(root, tmp_path / "lab-state", shots / "jupyterlab.log")
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def lab_page(playwright_session, tmp_path: Path, shots: Path) -> Iterator[LabPage]:
    """A Chromium page with a new user-data folder; closed (browser included) after the test."""
    chromium_path()
    context = launch_chromium(playwright_session, tmp_path / "chromium-profile")
    try:
        page = context.pages[0] if context.pages else context.new_page()
        yield LabPage(page, shots)
    finally:
        context.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    folder = OUTPUT / request.node.name
    shutil.rmtree(folder, ignore_errors=True)  # only this run's screenshots
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class VoilaServer:
    """``voila NOTEBOOK`` in a subprocess on a free port; ``url`` renders (and runs) the notebook."""

    def __init__(self, notebook: Path, env: dict[str, str], log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        cmd = [sys.executable, "-m", "voila", str(notebook), "--no-browser", f"--port={self.port}",
               "--Voila.ip=127.0.0.1", "--show_tracebacks=True",
               "--VoilaConfiguration.http_keep_alive_timeout=5"]
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(cmd, cwd=str(notebook.parent), env={**os.environ, **env},
                                     stdout=self._log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/"

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"voila exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}api", timeout=2) as r:
                    if r.status < 500:
                        return
            except OSError as exc:
                if getattr(exc, "code", None) and exc.code < 500:  # type: ignore[attr-defined]
                    return
            time.sleep(0.5)
        raise RuntimeError(f"voila did not start in {timeout:.0f} s:\n{self.log_path.read_text()[-3000:]}")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()
