"""Smoke: the core-throughput and footprint benchmarks run and produce well-formed results.

No timing assertions: only shape and sanity (positive numbers, cleanup verified).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from loopphase.bench.main import main


@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is required for the shim footprint")
def test_smoke_core_and_footprint_write_well_formed_results(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "results.smoke.json"
    assert main(["--smoke", "--only", "core", "footprint", "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    assert results["meta"]["size"] == "smoke"

    core = results["core"]
    assert core["status_shape"]["window_armed"] is True
    assert core["status_shape"]["pending_pings"] > 0
    for name in ("changing", "idempotent"):
        assert core[name]["calls"] > 0
        assert core[name]["calls_per_s"] > 0
        assert core[name]["us_per_call"] > 0
    assert core["changing"]["actions_per_call"] > 0
    assert core["idempotent"]["no_actions_and_equal_status"] is True

    fp = results["footprint"]
    assert fp["cleaned_up"] is True
    assert "sim-agent" in fp["agent_processes"]
    for group in ("shim", "tmux", "agent", "total"):
        assert fp[group]["rss_mib"] > 0
        assert fp[group]["cpu_pct"] >= 0
    assert isinstance(fp["shim_within_target"], bool)

    table = capsys.readouterr().out
    assert "core reconcile (idempotent)" in table
    assert "idle shim RSS" in table


def test_smoke_scale_writes_well_formed_results(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Operator scale at smoke size (3 LoopPhases × 3 agents against kmock, ~25 s)."""
    output = tmp_path / "results.smoke.json"
    assert main(["--smoke", "--only", "scale", "--output", str(output)]) == 0
    scale = json.loads(output.read_text())["scale"]
    (run,) = scale["runs"]
    assert "error" not in run, run
    assert run["agents"] == 9 and run["ticks"] > 0 and run["tick_errors"] == 0
    assert run["cpu_ms_per_tick_per_agent"] > 0 and run["steady_rss_mib"] > 0
    assert run["api_requests_per_tick"] and run["shim_unknown_pod"] == 0
    assert run["kubelet_errors"] == []
    assert isinstance(scale["extrapolation"]["cpu_within_target"], bool)
    assert "scale N=3" in capsys.readouterr().out
