"""The kernel's tile server: localtileserver's web app (rio-tiler) in processes of its own.

localtileserver's ``TileClient`` runs its app in a thread of the kernel. Here the same app runs
under uvicorn in a child process with :data:`WORKERS` worker processes. Measured on a 20,000 px
NAIP mosaic on a 2-core machine: twelve tiles of a pan, six at a time as a browser asks, took
312 ms from two worker processes against 450-500 ms from one interpreter (the app's Python work
per tile is serialised by its GIL); a LiteMedSAM encode in the kernel while those tiles were served
took 1.28 s instead of 1.50 s; and in ``benchmarks/bench_scene_review.py`` a box on a never-seen
window went from 2.1 to 1.3-1.6 s on screen (with the interruptible prefetch and the
channels-last encoder). GDAL's block cache (up to ``GDAL_CACHEMAX`` per worker) is also no
longer in the kernel's memory.

The app is localtileserver's, with one route added for the Annotator's display VRTs
(:func:`text2seg_widgets.imagery.tileroute.create_app`: readers kept open, the CRS check done once
per scene, PNG at zlib level 1; 11 ms of CPU per tile instead of 38 ms). Each worker keeps GDAL's block cache
at :data:`TILE_CACHE_MB` (the open readers keep their blocks).

The browser reaches it the way it reaches localtileserver's own thread: through jupyter-loopback's
proxy of the Jupyter server (``<base>/localtileserver-proxy/<port>/``, the extension
localtileserver installs), or directly at ``http://127.0.0.1:<port>`` outside Jupyter.

:class:`TileServer` owns the child: :meth:`TileServer.stop` terminates and waits for it (workers
included). The child also watches its parent and ends when the kernel is gone, so a killed kernel
leaves no server behind. The kernel binds the socket and hands it over
(``python -m text2seg_widgets.imagery.tileserver --fd N``).
"""

from __future__ import annotations

import argparse
import inspect
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from urllib.parse import quote

__all__ = ["TileServer", "WORKERS", "PROXY_NAMESPACE", "GDAL_CACHE_MB", "TILE_CACHE_MB", "ROUTE"]

log = logging.getLogger(__name__)

#: uvicorn worker processes rendering tiles (the CPUs, at most 4)
WORKERS = max(1, min(4, os.cpu_count() or 1))
#: jupyter-loopback's namespace of localtileserver's proxy extension in the Jupyter server
PROXY_NAMESPACE = "localtileserver"
#: the app the workers serve: localtileserver's with the Annotator's tile route
_APP = "text2seg_widgets.imagery.tileroute:create_app"
_BACKLOG = 256
#: the Annotator's tile route (:mod:`.tileroute`) under the server's root, ``{z}/{x}/{y}`` filled by the map
ROUTE = "/api/t2s/tiles/{z}/{x}/{y}.png"
#: GDAL's block cache of the kernel, in MB (GDAL's default is 5 % of the RAM, and reading a scene's
#: prompt windows fills it); set by the widgets when they are imported
GDAL_CACHE_MB = "256"
#: GDAL's block cache of each tile server worker, in MB (a 512 px RGBA block is 1 MB; a view at
#: native zoom touches about a dozen)
TILE_CACHE_MB = "64"


class TileServer:
    """One localtileserver app in a child process (module docs), listening on :attr:`port`."""

    def __init__(self, workers: int = WORKERS) -> None:
        self.workers = int(workers)
        # the kernel binds and listens, the child serves the socket: the port takes requests from
        # this moment (one asked before the workers are up waits in the listen queue, it does not
        # fail), and no other process can take the port in between
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.bind(("127.0.0.1", 0))
            sock.listen(_BACKLOG)
            self.port = int(sock.getsockname()[1])
            env = dict(os.environ)
            env["GDAL_CACHEMAX"] = TILE_CACHE_MB
            self._proc: subprocess.Popen[bytes] | None = subprocess.Popen(
                [sys.executable, "-m", __name__, "--fd", str(sock.fileno()), "--workers", str(self.workers),
                 "--parent", str(os.getpid())],
                env=env, stdin=subprocess.DEVNULL, pass_fds=(sock.fileno(),), start_new_session=True)
        finally:
            sock.close()  # the child holds it now: when the child ends, the port is closed
        log.debug("tile server on port %d (pid %d, %d workers)", self.port, self._proc.pid, self.workers)

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def tile_url(self, path: str) -> str:
        """The ``{z}/{x}/{y}`` URL template of ``path``'s PNG tiles as the browser reaches them."""
        try:
            from jupyter_loopback import autodetect_prefix

            prefix = autodetect_prefix(PROXY_NAMESPACE)
        except ImportError:  # without jupyter-loopback the page must reach the port itself
            prefix = None
        return self._tiles(prefix.format(port=self.port) if prefix else self._local, path)

    def direct_url(self, path: str) -> str:
        """The same template at ``127.0.0.1`` (for the kernel, tests and benchmarks)."""
        return self._tiles(self._local, path)

    @property
    def _local(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @staticmethod
    def _tiles(base: str, path: str) -> str:
        return f"{base}{ROUTE}?filename={quote(path, safe='')}"

    def stop(self, timeout: float = 10.0) -> None:
        """Terminate the server and its workers and wait for them (killed after ``timeout``)."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("tile server (pid %d) did not stop in %.0f s; killing it", proc.pid, timeout)
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout)


def _watch_parent(parent: int, done: threading.Event) -> None:
    """Terminate this server once ``parent`` (the kernel) is gone."""
    while not done.wait(1.0):
        if os.getppid() != parent:
            os.kill(os.getpid(), signal.SIGTERM)
            return


def main(argv: list[str] | None = None) -> None:
    """Serve localtileserver's app on the listening socket ``--fd`` (given by the kernel)."""
    parser = argparse.ArgumentParser(description="localtileserver's app under uvicorn (the Annotator's tiles)")
    parser.add_argument("--fd", type=int, required=True, help="a bound, listening TCP socket")
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--parent", type=int, default=0, help="end when this process is gone")
    args = parser.parse_args(argv)
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    sock = socket.socket(fileno=args.fd)
    config = uvicorn.Config(_APP, factory=True, workers=args.workers, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    done = threading.Event()
    watcher = None
    if args.parent:
        watcher = threading.Thread(target=_watch_parent, args=(args.parent, done), name="t2s-tileserver-parent")
        watcher.start()
    try:
        if args.workers > 1:
            if "target" in inspect.signature(Multiprocess).parameters:  # older uvicorn took the worker target
                Multiprocess(config, target=server.run, sockets=[sock]).run()  # type: ignore[call-arg]  # older signature
            else:
                Multiprocess(config, sockets=[sock]).run()
        else:
            _quiet_overviews()
            server.run(sockets=[sock])
    finally:
        done.set()
        if watcher is not None:
            watcher.join()


def _quiet_overviews() -> None:
    """rio-tiler warns on every read of a file without overviews (small images): once per tile in
    the server's log would drown it; the Annotator says it once for big scenes instead."""
    import warnings

    from rio_tiler.errors import NoOverviewWarning

    warnings.filterwarnings("ignore", category=NoOverviewWarning)


if __name__ == "__mp_main__":  # a uvicorn worker (multiprocessing runs this module under that name)
    _quiet_overviews()
if __name__ == "__main__":
    main()
