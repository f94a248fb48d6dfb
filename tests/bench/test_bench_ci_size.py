"""CI size: the latency and limit benchmarks run end to end so they cannot rot.

Only the shape of the results and correctness facts (zero kills inside windows) are asserted;
no timing figure is, by design (figures are for `loopphase bench`, not for pass/fail).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from loopphase.bench.main import main

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is required for real shims"),
]


def test_latency_and_limits_run_at_ci_size(tmp_path: Path) -> None:
    output = tmp_path / "results.ci.json"
    assert main(["--ci", "--only", "latency", "limits", "--output", str(output)]) == 0
    results = json.loads(output.read_text())
    assert results["meta"]["size"] == "ci"
    for name in ("latency", "limits"):
        block = results[name]
        assert set(block) >= {"fast", "reference", "ratios"}, block.keys()
    latency = results["latency"]
    for run in ("fast", "reference"):
        block = latency[run]
        assert block["completed"] is True, block["per_replica"]
        for metric in ("handoff", "inbox_handoff", "phase_advance"):
            assert block[metric]["n"] > 0, (run, metric)
        assert block["handoff_unmatched"] == 0 and block["inbox_unmatched"] == 0
    assert latency["reference"]["timing"]["doneOnPush"] is False
    assert set(latency["ratios"]) == {"handoff", "inbox_handoff", "phase_advance"}
    for run in ("fast", "reference"):
        assert results["limits"][run]["windows_seen"] == results["limits"]["workload"]["windows"]
        assert set(results["limits"][run]["minute"]) >= {"n_windows", "first_probe_after_reset"}
    text = json.dumps(results)
    assert '"kills_in_windows": 0' in text or '"kills": 0' in text, "no kill may happen in a window"
