"""`text2seg-widgets weights list|fetch|verify|path` through click's CliRunner."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.weights.fake_server import FakeServer
from text2seg_widgets.cli import main
from text2seg_widgets.models import weights

PATH = "/w/cli.pth"


@pytest.fixture
def served_spec(server: FakeServer, payload: bytes, payload_sha: str, tmp_path: Path,
                monkeypatch: pytest.MonkeyPatch) -> str:
    """A spec named 'cli-weights' for the local server, declared in a TEXT2SEG_WEIGHTS_FILE."""
    url = server.add(PATH, payload)
    spec_file = tmp_path / "specs.yaml"
    spec_file.write_text(
        "- name: cli-weights\n  family: sam\n  arch: vit_b\n  kind: file\n"
        f"  source: {{url: '{url}', sha256: '{payload_sha}', size: {len(payload)}}}\n")
    monkeypatch.setenv(weights.WEIGHTS_FILE_ENV, str(spec_file))
    return "cli-weights"


def run(*args: str) -> "object":
    return CliRunner().invoke(main, ["weights", *args])


def test_list_shows_every_spec(isolated: Path) -> None:
    result = run("list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["NAME", "FAMILY", "CACHED", "SIZE", "PATH"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {s.name for s in weights.list_specs()}
    assert rows["litemedsam"].split()[1:3] == ["litemedsam", "yes"] and "37.5 MB" in rows["litemedsam"]
    sam_b = rows["sam-vit-b"].split()
    assert sam_b[1:3] == ["sam", "no"] and "357.7 MB (expected)" in rows["sam-vit-b"]
    assert sam_b[-1] == str(isolated / "sam-vit-b" / "sam_vit_b_01ec64.pth")


def test_fetch_then_verify(served_spec: str, server: FakeServer, isolated: Path, payload_sha: str) -> None:
    result = run("fetch", served_spec, "--quiet")
    assert result.exit_code == 0, result.output
    target = isolated / served_spec / "cli.pth"
    assert result.output.strip() == f"{served_spec}: {target}"
    assert hashlib.sha256(target.read_bytes()).hexdigest() == payload_sha
    listed = run("list").output
    assert any(line.split()[:3] == [served_spec, "sam", "yes"] for line in listed.splitlines())
    verified = run("verify", served_spec)
    assert verified.exit_code == 0 and f"{served_spec}: ok (sha256 matches)" in verified.output
    assert run("path", served_spec).output.strip() == str(target)
    everything = run("verify")
    assert everything.exit_code == 0 and "sam-vit-b: not cached" in everything.output
    assert f"{served_spec}: ok" in everything.output and "litemedsam: ok" in everything.output
    target.write_bytes(b"\xff" + target.read_bytes()[1:])
    broken = run("verify", served_spec)
    assert broken.exit_code == 1 and "FAILED" in broken.output and payload_sha in broken.output
    assert run("verify").exit_code == 1


def test_fetch_cache_dir_option(served_spec: str, tmp_path: Path) -> None:
    other = tmp_path / "other-cache"
    result = run("fetch", served_spec, "-q", "--cache-dir", str(other))
    assert result.exit_code == 0, result.output
    assert (other / served_spec / "cli.pth").is_file()


@pytest.mark.parametrize("args, fragment", [
    (("fetch", "sam-vit-bb"), "Did you mean 'sam-vit-b'"),
    (("verify", "nope"), "Unknown weight spec 'nope'"),
    (("path", "sam-vit-b"), "text2seg-widgets weights fetch sam-vit-b"),
    (("verify", "sam3"), "text2seg-widgets weights fetch sam3"),
])
def test_errors_exit_non_zero_without_traceback(isolated: Path, args: tuple[str, ...], fragment: str) -> None:
    result = run(*args)
    assert result.exit_code == 1
    assert result.output.startswith("Error: ") and fragment in result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)


def test_fetch_offline_flag(served_spec: str, server: FakeServer, isolated: Path) -> None:
    result = run("fetch", served_spec, "--offline")
    assert result.exit_code == 1 and "Offline mode is on" in result.output
    assert f"weights fetch {served_spec}" in result.output and server.state.seen == []


def test_fetch_checksum_failure_is_a_clean_error(server: FakeServer, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch, isolated: Path) -> None:
    spec_file = tmp_path / "s.json"
    spec_file.write_text('[{"name": "bad", "family": "sam", "arch": "vit_b", "kind": "file", '
                         f'"source": {{"url": "{server.add(PATH, b"abc")}", "sha256": "{"1" * 64}"}}}}]')
    monkeypatch.setenv(weights.WEIGHTS_FILE_ENV, str(spec_file))
    result = run("fetch", "bad", "-q")
    assert result.exit_code == 1 and "Checksum mismatch" in result.output
    assert hashlib.sha256(b"abc").hexdigest() in result.output
    assert not list((isolated / "bad").glob("*.pth*"))


def test_broken_specs_file_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec_file = tmp_path / "broken.yaml"
    spec_file.write_text("- {name: x, family: nope, kind: file, source: {url: 'https://h/x'}}\n")
    monkeypatch.setenv(weights.WEIGHTS_FILE_ENV, str(spec_file))
    for args in (("list",), ("fetch", "sam-vit-b")):
        result = run(*args)
        assert result.exit_code == 1 and "family 'nope' is not one of" in result.output


def test_unwritable_cache_is_a_clean_error(served_spec: str, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = run("fetch", served_spec, "-q", "--cache-dir", str(blocker / "cache"))
    assert result.exit_code == 1 and result.output.startswith("Error: ")
    assert isinstance(result.exception, SystemExit)
