"""fetch() for URL sources against file:// and a local HTTP server: real bytes, real hashes."""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import pytest

from tests.weights.conftest import url_spec
from tests.weights.fake_server import FakeServer
from text2seg_widgets.errors import ChecksumError, MissingWeightsError
from text2seg_widgets.models import weights
from text2seg_widgets.models.download import DownloadError, download_url

PATH = "/models/w.pth"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_file_url_fetch(tmp_path: Path, isolated: Path, payload: bytes, payload_sha: str) -> None:
    source = tmp_path / "src" / "w.pth"
    source.parent.mkdir()
    source.write_bytes(payload)
    url_spec("local-file", source.as_uri(), payload_sha, len(payload))
    path = weights.fetch("local-file", progress=False)
    assert path == isolated / "local-file" / "w.pth"
    assert sha(path.read_bytes()) == payload_sha and files_in(path.parent) == ["w.pth"]
    assert weights.local_path("local-file") == path
    result = weights.verify("local-file")
    assert (result.ok, result.sha256_actual, result.size_actual) == (True, payload_sha, len(payload))


def test_file_url_resumes_by_offset(tmp_path: Path, isolated: Path, payload: bytes) -> None:
    """A .part prefix is kept and only the rest is read: a deliberately foreign prefix survives,
    which a restart from byte 0 could not produce."""
    source = tmp_path / "w.pth"
    source.write_bytes(payload)
    prefix = b"\xab" * 1000
    expected = prefix + payload[1000:]
    url_spec("resume-file", source.as_uri(), sha(expected), len(payload))
    part = isolated / "resume-file" / "w.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(prefix)
    path = weights.fetch("resume-file", progress=False)
    assert path.read_bytes() == expected and not part.exists()


def test_http_fetch(server: FakeServer, isolated: Path, payload: bytes, payload_sha: str) -> None:
    url_spec("http-w", server.add(PATH, payload), payload_sha, len(payload))
    path = weights.fetch("http-w", progress=False)
    assert sha(path.read_bytes()) == payload_sha and files_in(path.parent) == ["w.pth"]
    assert [(s.method, s.range) for s in server.state.seen] == [("GET", None)]
    assert weights.fetch("http-w") == path and len(server.state.seen) == 1  # present: no request
    weights.fetch("http-w", force=True, progress=False)  # force: downloaded again from byte 0
    assert [s.range for s in server.gets(PATH)] == [None, None]
    assert sha(path.read_bytes()) == payload_sha


def test_checksum_mismatch_leaves_no_file(server: FakeServer, isolated: Path, payload: bytes,
                                          payload_sha: str) -> None:
    wrong = "0" * 64
    url_spec("bad-sum", server.add(PATH, payload), wrong, len(payload))
    with pytest.raises(ChecksumError) as info:
        weights.fetch("bad-sum", progress=False)
    assert wrong in str(info.value) and payload_sha in str(info.value)
    assert files_in(isolated / "bad-sum") == []
    with pytest.raises(MissingWeightsError):
        weights.local_path("bad-sum")


def test_size_mismatch_is_refused_before_downloading(server: FakeServer, isolated: Path, payload: bytes) -> None:
    url_spec("bad-size", server.add(PATH, payload[:-5]), None, len(payload) - 10)
    with pytest.raises(ChecksumError, match=f"has {len(payload) - 5} bytes but {len(payload) - 10} were"):
        weights.fetch("bad-size", progress=False)
    assert files_in(isolated / "bad-size") == [] and len(server.gets(PATH)) == 1


def test_body_longer_than_recorded_size_is_deleted(server: FakeServer, isolated: Path, payload: bytes) -> None:
    """With no Content-Length the size is only known at the end: checked there, then deleted."""
    server.state.no_length = True
    url_spec("long", server.add(PATH, payload), None, len(payload) - 1)
    with pytest.raises(ChecksumError, match=f"gave {len(payload)} bytes but {len(payload) - 1} were expected"):
        weights.fetch("long", progress=False)
    assert files_in(isolated / "long") == []


def test_short_body_without_length_fails_the_size_check(tmp_path: Path, isolated: Path, payload: bytes) -> None:
    """file:// reports its true size, which differs from the spec: refused up front as well."""
    source = tmp_path / "short.pth"
    source.write_bytes(payload[:1000])
    url_spec("short", source.as_uri(), None, 2000)
    with pytest.raises(ChecksumError, match="has 1000 bytes but 2000 were expected"):
        weights.fetch("short", progress=False)
    assert files_in(isolated / "short") == []


def test_interrupted_download_resumes_with_range(server: FakeServer, isolated: Path, payload: bytes,
                                                 payload_sha: str) -> None:
    cut = 1_300_001
    url_spec("flaky", server.add(PATH, payload), payload_sha, len(payload))
    server.state.drop_after[PATH] = cut
    with pytest.raises(DownloadError, match=f"interrupted after {cut} bytes|ended after {cut} of"):
        weights.fetch("flaky", progress=False)
    folder = isolated / "flaky"
    assert files_in(folder) == ["w.pth.part"]
    assert (folder / "w.pth.part").read_bytes() == payload[:cut]
    with pytest.raises(MissingWeightsError):
        weights.local_path("flaky")
    path = weights.fetch("flaky", progress=False)
    assert [s.range for s in server.gets(PATH)] == [None, f"bytes={cut}-"]
    assert sha(path.read_bytes()) == payload_sha and files_in(folder) == ["w.pth"]


def test_server_ignoring_range_restarts_from_zero(server: FakeServer, isolated: Path, payload: bytes,
                                                  payload_sha: str) -> None:
    url_spec("no-range", server.add(PATH, payload), payload_sha, len(payload))
    server.state.ignore_range = True
    part = isolated / "no-range" / "w.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"\xab" * 5000)  # foreign bytes: must not survive a restart
    path = weights.fetch("no-range", progress=False)
    assert server.gets(PATH)[0].range == "bytes=5000-"
    assert sha(path.read_bytes()) == payload_sha and not part.exists()


def test_complete_part_is_published_without_a_request(server: FakeServer, isolated: Path, payload: bytes,
                                                      payload_sha: str) -> None:
    url_spec("done", server.add(PATH, payload), payload_sha, len(payload))
    part = isolated / "done" / "w.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payload)
    assert sha(weights.fetch("done", progress=False).read_bytes()) == payload_sha
    assert server.state.seen == []


def test_unknown_size_resume_hits_416(server: FakeServer, isolated: Path, payload: bytes,
                                      payload_sha: str) -> None:
    url_spec("nosize", server.add(PATH, payload), payload_sha, None)
    part = isolated / "nosize" / "w.pth.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payload)
    assert sha(weights.fetch("nosize", progress=False).read_bytes()) == payload_sha
    assert [s.range for s in server.gets(PATH)] == [f"bytes={len(payload)}-"]


def test_no_sha256_is_verified_by_size_only(server: FakeServer, isolated: Path, payload: bytes,
                                            caplog: pytest.LogCaptureFixture) -> None:
    url_spec("nosha", server.add(PATH, payload), None, len(payload))
    with caplog.at_level(logging.WARNING, logger="text2seg_widgets.models.download"):
        path = weights.fetch("nosha", progress=False)
    assert path.read_bytes() == payload
    assert "verified by size only" in caplog.text
    result = weights.verify("nosha")
    assert result.ok and result.message == "no sha256 recorded: size matches"


def test_http_404(server: FakeServer, isolated: Path) -> None:
    url_spec("gone", server.url("/nothing.pth"), None, None)
    with pytest.raises(DownloadError, match="HTTP 404"):
        weights.fetch("gone", progress=False)
    assert not (isolated / "gone" / "nothing.pth").exists()


@pytest.mark.parametrize("env", ["TEXT2SEG_OFFLINE", "HF_HUB_OFFLINE", None])
def test_offline_never_touches_the_network(server: FakeServer, isolated: Path, payload: bytes,
                                           monkeypatch: pytest.MonkeyPatch, env: str | None) -> None:
    url_spec("off", server.add(PATH, payload), sha(payload), len(payload))
    if env:
        monkeypatch.setenv(env, "1")
    with pytest.raises(MissingWeightsError) as info:
        weights.fetch("off", offline=None if env else True)
    message = str(info.value)
    assert "'off'" in message and str(isolated / "off" / "w.pth") in message
    assert "text2seg-widgets weights fetch off" in message and "Offline mode is on" in message
    assert server.state.seen == []


def test_verify_reports_a_corrupted_file(server: FakeServer, isolated: Path, payload: bytes,
                                         payload_sha: str) -> None:
    url_spec("rot", server.add(PATH, payload), payload_sha, len(payload))
    path = weights.fetch("rot", progress=False)
    path.write_bytes(b"\x00" + payload[1:])  # same size, one byte flipped
    result = weights.verify("rot")
    assert not result.ok and result.exists and result.sha256_actual == sha(b"\x00" + payload[1:])
    assert payload_sha in result.message and "--force" in result.message
    missing = weights.verify("sam-vit-b")
    assert (missing.exists, missing.ok) == (False, False)


def test_download_url_without_registry(server: FakeServer, tmp_path: Path, payload: bytes) -> None:
    dest = download_url(server.add(PATH, payload), tmp_path / "x" / "y.bin", sha256=sha(payload),
                        progress=False)
    assert dest.read_bytes() == payload
