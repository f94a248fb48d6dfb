"""CI size: the webhook benchmark runs end to end (three modes side by side) and its counts are
right. No timing figure is asserted (figures are for `loopphase bench`); the idle request
counts are a schedule on a simulated clock, so they are exact."""

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


def test_webhook_benchmark_runs_at_ci_size(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "results.ci.json"
    assert main(["--ci", "--only", "webhooks", "--output", str(output)]) == 0
    block = json.loads(output.read_text())["webhooks"]
    assert block["order"] == ["poll-1s", "poll-3s", "webhook+poll-60s"]
    for name in block["order"]:
        mode = block["modes"][name]
        assert mode["completed"] is True, (name, mode["final_phase"])
        assert mode["handoff"]["n"] == block["workload"]["handoffs_per_mode"], name
        assert mode["handoff_unmatched"] == 0
    hook = block["modes"]["webhook+poll-60s"]
    # every push was announced (one webhook each) and no head waited for the 60 s poll
    assert hook["webhooks"]["accepted"] == hook["pushes"] and hook["webhooks"]["forbidden"] == 0
    assert hook["heads_by_poll"] == 0 and 1 <= hook["heads_by_webhook"] <= hook["pushes"]
    assert 1 <= hook["run_git_requests"]["head_reads_by_cause"]["webhook"] <= hook["pushes"]
    # idle: one request per poll interval (simulated clock, 300 s)
    idle = {name: block["modes"][name]["idle"]["per_hour"] for name in block["order"]}
    assert idle == {"poll-1s": 3600.0, "poll-3s": 1200.0, "webhook+poll-60s": 60.0}
    table = capsys.readouterr().out
    assert all(f"webhooks: {name}" in table for name in block["order"])
