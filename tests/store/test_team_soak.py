"""The team soak, short: four annotators and a reviewer as processes on one PostgreSQL project,
two annotators killed with SIGKILL (and restarted), the server crashed and restarted once:
no acknowledged action lost, never two leases on one image, integrity clean, every client
reconnected (benchmarks/bench_team.py runs the long version with eight annotators)."""

from __future__ import annotations

import time
from pathlib import Path

from tests.pg import start_cluster
from tests.store.team_soak import Team, journal_stats, live_double_leases, setup_project, verify

ANNOTATORS = ["a1", "a2", "a3", "a4"]


def test_team_survives_kills_and_a_server_crash(tmp_path: Path) -> None:
    cluster = start_cluster()
    try:
        url = cluster.new_url("soak")
        setup_project(url, tmp_path / "imgs", images=40, annotators=ANNOTATORS)
        team = Team(url, tmp_path, stop_at=time.time() + 24)
        for name in ANNOTATORS:
            team.start(name)
        team.start("rev", role="reviewer")
        doubles = 0
        events = {4.0: ("kill", "a2"), 8.0: ("restart-server", ""), 13.0: ("kill", "a3")}
        start = time.time()
        while time.time() < team.stop_at - 1:
            elapsed = time.time() - start
            for at, (what, name) in list(events.items()):
                if elapsed >= at:
                    del events[at]
                    if what == "kill":
                        team.kill(name)
                        time.sleep(0.3)
                        team.start(name)
                    else:
                        cluster.restart(mode="immediate", down_s=1.0)
            try:
                doubles += live_double_leases(url)
            except Exception:  # noqa: BLE001 - the server is down for a moment
                pass
            time.sleep(0.5)
        codes = team.wait(timeout=60)
        assert codes == {n: 0 for n in (*ANNOTATORS, "rev")}, codes
        result = verify(url, tmp_path)
        stats = journal_stats(tmp_path)
        assert result["lost"] == [] and result["integrity"] == "ok", result
        assert doubles == 0 and team.kills == 2
        assert stats["counts"].get("fin", 0) >= 10 and result["checked"] > 50, stats
        for name in ANNOTATORS:
            text = team.journal(name).read_text()
            assert text.rstrip().endswith("stopped")
            # the crash reached every client: each reconnected (or said it lost the server)
            assert "reconnects" in text or "lost" in text or "open-failed" in text, name
    finally:
        cluster.remove()
