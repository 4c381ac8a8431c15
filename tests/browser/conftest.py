"""Real-browser fixtures: Voila serving a notebook on 127.0.0.1 and Debian's headless Chromium.

Chromium comes from Debian (``apt-get install -y chromium``; ``make browser`` does it), driven by
the Python ``playwright`` package with ``executable_path`` (never ``playwright install``). A
missing browser fails the test with that instruction instead of skipping it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "test-output" / "browser"
CHROMIUM_ARGS = ["--disable-gpu", "--disable-quic", "--no-sandbox", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("Chromium is not installed: run `make browser` or "
                    "`apt-get update && apt-get install -y chromium` (Debian), then re-run the tests")
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    from playwright.sync_api import sync_playwright

    path = chromium_path()
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=path, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Path:
    folder = OUTPUT / request.node.name
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
