"""Prometheus metrics scraped over HTTP from a real local run (real shims, sim agents, git)."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from loopphase.metrics import LoopMetrics, serve
from loopphase.runner.loop import Runner, TickReport
from loopphase.runner.specfile import load_spec
from prometheus_client.parser import text_string_to_metric_families

from tests.runner.test_local_e2e import QUIET_ADVERSARY, _write_spec, processes_under

pytestmark = pytest.mark.slow

CLAIM_THEN_DONE = """
phases:
  p1-handoff:
    - work: {seconds: 1}
    - git: {commit: "claim(p1): real work", files: {"src/a.txt": "a\\n"}, push: true}
    - work: {seconds: 2}
    - append_done: {commit: "done(p1)", push: true}
  p2-limits:
    - work: {seconds: 1}
    - append_done: {commit: "done(p2)", push: true}
"""


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """GET /metrics and parse it with prometheus_client's own parser: {(sample, labels): value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_scraped_metrics_follow_the_run(tmp_path: Path) -> None:
    spec_path = _write_spec(tmp_path, CLAIM_THEN_DONE, QUIET_ADVERSARY)
    metrics = LoopMetrics()
    server = serve(metrics, 0)
    port = server.server_port
    runner = Runner(load_spec(spec_path), tmp_path / "state", metrics=metrics)
    seen: list[str] = []
    checks: list[dict] = []

    def on_tick(report: TickReport) -> None:
        samples = scrape(port)
        for action, ok, _ in report.result.results:
            if action.rule == "handoff.claim" and ok:
                seen.append("claim")
                checks.append(dict(
                    what="claim",
                    pings=value(samples, "loopphase_pings_delivered_total", role="adversary", kind="claim"),
                    latency_count=value(samples, "loopphase_ping_delivery_seconds_count", kind="claim"),
                ))
            if getattr(action, "kind", "") in {"advance", "complete"} and action.rule == "done.marker":
                checks.append(dict(
                    what=action.kind,  # type: ignore[attr-defined]
                    advances=value(samples, "loopphase_phase_advances_total", kind="advance"),
                    completes=value(samples, "loopphase_phase_advances_total", kind="complete"),
                    durations=value(samples, "loopphase_phase_duration_seconds_count"),
                ))
        checks.append(dict(
            what="tick", ticks=value(samples, "loopphase_ticks_total"),
            tick_count=value(samples, "loopphase_tick_duration_seconds_count"),
            active=sum(value(samples, "loopphase_agents", role=r, state=s)
                       for r in ("builder", "adversary") for s in ("Active", "Idle", "Starting", "Waiting")),
            expected_tick=report.tick,
            agents=len(report.result.status.agents),
        ))

    runner.on_tick = on_tick
    try:
        final = asyncio.run(asyncio.wait_for(runner.run(exit_on_complete=True), timeout=150))
    finally:
        asyncio.run(runner.stop_everything())
        server.shutdown()
    assert final.completed_at is not None

    claim = [c for c in checks if c["what"] == "claim"]
    assert len(claim) == 1, checks
    assert claim[0]["pings"] == 1 and claim[0]["latency_count"] == 1
    advance = [c for c in checks if c["what"] == "advance"]
    complete = [c for c in checks if c["what"] == "complete"]
    assert len(advance) == 1 and len(complete) == 1
    assert advance[0]["advances"] == 1 and advance[0]["completes"] == 0
    assert advance[0]["durations"] == 1
    assert complete[0]["advances"] == 1 and complete[0]["completes"] == 1
    assert complete[0]["durations"] == 2
    ticks = [c for c in checks if c["what"] == "tick"]
    assert all(c["ticks"] == c["expected_tick"] == c["tick_count"] for c in ticks)
    # The agents gauge counts the roles the status holds, one state each.
    assert any(c["active"] == 2 == c["agents"] for c in ticks)
    assert processes_under(tmp_path) == []


def test_loopphase_run_serves_metrics_port(tmp_path: Path) -> None:
    """The CLI flag: `loopphase run --metrics-port 0` prints its port and serves loopphase_*."""
    spec_path = _write_spec(tmp_path, CLAIM_THEN_DONE, QUIET_ADVERSARY)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "loopphase.cli", "run", str(spec_path), "--state-dir", str(tmp_path / "state"),
         "--metrics-port", "0", "--keep-running"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r":(\d+)/metrics", line)
        assert match, line
        port = int(match.group(1))
        deadline = time.monotonic() + 120
        samples: dict = {}
        while time.monotonic() < deadline:
            samples = scrape(port)
            if value(samples, "loopphase_phase_advances_total", kind="complete") == 1:
                break
            time.sleep(0.5)
        assert value(samples, "loopphase_phase_advances_total", kind="complete") == 1, samples
        assert value(samples, "loopphase_pings_delivered_total", role="adversary", kind="claim") == 1
        assert value(samples, "loopphase_api_writes_total", kind="status") >= 1
        # A registry of our own: only loopphase_* series (no default process/gc collectors).
        assert all(name.startswith("loopphase_") for name, _ in samples)
        # No label ever carries a sha or free text: every label value is from a bounded set.
        for _name, labels in samples:
            for key, val in labels:
                assert key in {"role", "state", "tier", "class", "kind", "action", "outcome", "le"}, key
                assert not re.fullmatch(r"[0-9a-f]{7,40}", val), val
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        subprocess.run([sys.executable, "-m", "loopphase.cli", "run", str(spec_path), "--state-dir",
                        str(tmp_path / "state"), "--stop"], capture_output=True, timeout=60, check=False)
    assert processes_under(tmp_path) == []
