"""The metrics/notifications overhead benchmark runs at CI size and produces well-formed results.

No timing assertions: shape and sanity only (every mode timed, the eventful workload really
notifies and every notification reaches the real receiver, the steady one notifies nothing).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from loopphase.bench.main import main
from loopphase.bench.overhead import MODES, WORKLOADS


def test_overhead_benchmark_runs_at_ci_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "results.json"
    assert main(["--ci", "--only", "overhead", "--output", str(output)]) == 0
    results = json.loads(output.read_text())["overhead"]
    runs = results["runs"]
    assert [(r["loops"], r["workload"]) for r in runs] == [
        (loops, workload) for loops in (1, 3) for workload in WORKLOADS]
    delivered = 0
    for r in runs:
        assert set(r["modes"]) == set(MODES) and set(r["overhead"]) == set(MODES[1:])
        for mode, m in r["modes"].items():
            assert 0 < m["tick_us"]["p50"] <= m["tick_us"]["p95"], (r["workload"], mode)
            assert m["cpu_us_per_loop_tick"] > 0
            notifies = mode in ("notify", "both") and r["workload"] == "eventful"
            # eventful: a limit-armed or limit-lifted entry every tick but the first
            assert (m["notifications_submitted"] >= r["loops"] * (r["ticks"] - 1)) if notifies \
                else m["notifications_submitted"] == 0, (r["workload"], mode)
            assert m["notifications_delivered"] == m["notifications_submitted"]
            delivered += m["notifications_delivered"]
    assert results["receiver_posts"] == delivered > 0
    table = capsys.readouterr().out
    assert "tick overhead, eventful, 3 loops (6 agents)" in table
