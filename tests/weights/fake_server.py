"""A local HTTP file server for the download tests: Range support, one-shot connection drops,
an optional "ignore Range" mode, per-path extra headers, and a log of every request."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["FakeServer", "Seen", "add_hub_repo"]


@dataclass
class Seen:
    method: str
    path: str
    range: str | None


@dataclass
class _State:
    files: dict[str, bytes] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)
    status: dict[str, int] = field(default_factory=dict)
    drop_after: dict[str, int] = field(default_factory=dict)
    ignore_range: bool = False
    no_length: bool = False  # send no Content-Length: the body ends when the connection closes
    seen: list[Seen] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: "_Server"

    def log_message(self, *_args: object) -> None:  # keep test output clean
        return None

    def do_HEAD(self) -> None:  # noqa: N802 - http.server naming
        self._serve(body=False)

    def do_GET(self) -> None:  # noqa: N802
        self._serve(body=True)

    def _serve(self, body: bool) -> None:
        state = self.server.state
        path = self.path.split("?", 1)[0]
        wanted = self.headers.get("Range")
        state.seen.append(Seen(self.command, path, wanted))
        if path in state.status:
            self.send_response(state.status[path])
            for key, value in state.headers.get(path, {}).items():
                self.send_header(key, value)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if path not in state.files:
            self.send_error(404)
            return
        data = state.files[path]
        start = 0
        if wanted and not state.ignore_range:
            start = int(wanted.removeprefix("bytes=").split("-", 1)[0])
            if start >= len(data):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(data)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            self.send_response(200)
        self.send_header("Accept-Ranges", "bytes")
        if not state.no_length:
            self.send_header("Content-Length", str(len(data) - start))
        for key, value in state.headers.get(path, {}).items():
            self.send_header(key, value)
        self.end_headers()
        if not body:
            return
        cut = state.drop_after.pop(path, None) if self.command == "GET" else None
        payload = data[start:] if cut is None else data[start:cut]
        self.wfile.write(payload)
        self.wfile.flush()
        if cut is not None:  # drop the connection mid-body, as a failing network would
            self.close_connection = True


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    state: _State


class FakeServer:
    """Serve ``files`` (URL path -> bytes) on 127.0.0.1 from a background thread."""

    def __init__(self) -> None:
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.state = _State()
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)

    @property
    def state(self) -> _State:
        return self._server.state

    @property
    def root(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def url(self, path: str) -> str:
        return self.root + path

    def add(self, path: str, data: bytes, headers: dict[str, str] | None = None) -> str:
        self.state.files[path] = data
        if headers:
            self.state.headers[path] = headers
        return self.url(path)

    def gets(self, path: str) -> list[Seen]:
        return [s for s in self.state.seen if s.path == path and s.method == "GET"]

    def __enter__(self) -> "FakeServer":
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def add_hub_repo(server: FakeServer, repo_id: str, revision: str, files: dict[str, bytes]) -> None:
    """Serve ``files`` the way the Hugging Face Hub API does for ``huggingface_hub`` (a tree
    listing and ``resolve`` URLs with ETag and X-Repo-Commit headers)."""
    import hashlib
    import json

    tree = [{"type": "file", "path": name, "size": len(data), "oid": hashlib.sha1(data).hexdigest()}
            for name, data in files.items()]
    server.add(f"/api/models/{repo_id}/tree/{revision}", json.dumps(tree).encode(),
               {"Content-Type": "application/json"})
    for name, data in files.items():
        server.add(f"/{repo_id}/resolve/{revision}/{name}", data,
                   {"ETag": f'"{hashlib.sha1(data).hexdigest()}"', "X-Repo-Commit": revision})
