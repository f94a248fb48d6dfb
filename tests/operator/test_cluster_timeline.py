"""`loopphase timeline --cluster NAME`: a LoopPhase's status on the API emulator, read through the
kubernetes client with a kubeconfig, drawn to PNG, opened and checked lane by lane."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loopphase.operator.kubeapi import KubeApi, custom_ref
from loopphase.testing.kmock_world import declare_resources
from loopphase.timeline.cluster import from_status, limit_class_of
from loopphase.timeline.model import NoHistory
from loopphase.timeline.render import LIMIT_COLORS, STATE_COLORS, render
from matplotlib import colors as mcolors
from matplotlib import image as mimage

NS = "team-a"
LP = custom_ref("loopphase.dev", "v1alpha1", NS, "loopphases")


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def history_status(t0: datetime) -> dict[str, Any]:
    """A status as the operator writes it: the builder started, hit a weekly limit that
    lifted, claimed (ping to the adversary); the adversary was restarted warm once."""
    def entry(seq: int, at: int, kind: str, role: str | None, rule: str, reason: str) -> dict[str, Any]:
        out = {"seq": seq, "time": iso(t0 + timedelta(seconds=at)), "kind": kind, "rule": rule,
               "reason": reason}
        return out | ({"role": role} if role else {})

    return {
        "phase": "Running",
        "history": [
            entry(1, 0, "start", None, "phase.init", "starting at phase p1"),
            entry(2, 0, "start", "builder", "converge.no-host", "no host; starting cold"),
            entry(3, 0, "start", "adversary", "converge.no-host", "no host; starting cold"),
            entry(4, 40, "limit-armed", "builder", "limit.claude.weekly",
                  "banner says reset 10:00; holding until 10:01 (time reset of a weekly limit) "
                  "[window.stated-reset]; no restarts inside the window"),
            entry(5, 90, "limit-lifted", "builder", "limit.lifted", "agent active again after 1 probe(s)"),
            entry(6, 100, "ping", "adversary", "handoff.claim", "claim 1a2b3c4 pushed"),
            entry(7, 110, "restart-warm", "adversary", "heal.dead", "the agent process exited"),
        ],
        "historySeq": 7,
        "agents": {
            "builder": {"state": "Active", "since": iso(t0 + timedelta(seconds=90)),
                        "activeSince": iso(t0 + timedelta(seconds=90))},
            "adversary": {"state": "Active", "since": iso(t0 + timedelta(seconds=115)),
                          "activeSince": iso(t0 + timedelta(seconds=115))},
        },
    }


def test_the_model_rebuilds_lanes_windows_heals_and_pings_from_status() -> None:
    t0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    tl = from_status(history_status(t0), t0 + timedelta(seconds=120))
    assert tl.roles == ["builder", "adversary"]
    states = [(s.role, s.label, int((s.start - t0).total_seconds()), int((s.end - t0).total_seconds()))
              for s in tl.states]
    assert states == [("builder", "Starting", 0, 40), ("builder", "Limited", 40, 90),
                      ("builder", "Active", 90, 120),
                      ("adversary", "Starting", 0, 115), ("adversary", "Active", 115, 120)]
    assert [(s.role, s.label) for s in tl.limits] == [("builder", "weekly")]
    assert [(m.role, m.label) for m in tl.heals] == [("adversary", "restart-warm")]
    assert [(m.role, m.label, m.source) for m in tl.pings] == [("adversary", "claim", "builder")]
    assert [label for _, label in tl.phases] == ["start"]


def test_an_open_window_takes_its_class_from_the_agent_and_runs_to_now() -> None:
    t0 = datetime(2026, 11, 30, 10, 0, tzinfo=UTC)
    status = {"history": [{"seq": 1, "time": iso(t0), "kind": "limit-armed", "role": "builder",
                           "rule": "limit.menu", "reason": "the banner states no reset time"}],
              "agents": {"builder": {"state": "Limited", "since": iso(t0), "limit": {
                  "until": iso(t0 + timedelta(hours=1)), "parsed": False, "armedAt": iso(t0),
                  "limitClass": "session"}}}}
    tl = from_status(status, t0 + timedelta(minutes=5))
    assert [(s.label, s.end) for s in tl.limits] == [("session", t0 + timedelta(minutes=5))]
    assert limit_class_of("a spend limit with no reset to wait for") == "spend"
    assert limit_class_of("banner's reset 10:00 already passed") == "unknown"
    with pytest.raises(NoHistory, match="status.history is empty"):
        from_status({}, t0)


def kubeconfig(path: Path, server: str) -> Path:
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "emulator",
        "clusters": [{"name": "emulator", "cluster": {"server": server}}],
        "users": [{"name": "me", "user": {"token": "t"}}],
        "contexts": [{"name": "emulator", "context": {"cluster": "emulator", "user": "me",
                                                      "namespace": NS}}],
    }))
    return path


async def cli(tmp_path: Path, server: str, *args: str) -> tuple[int, str, str]:
    """`loopphase timeline ...` as a process, with a kubeconfig for the emulator; awaited
    without blocking the loop the emulator serves from."""
    env = dict(os.environ, KUBECONFIG=str(kubeconfig(tmp_path / "kubeconfig", server)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loopphase.cli", "timeline", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), timeout=120)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


def share(row: np.ndarray, colour: str) -> float:
    """The fraction of a pixel row within a small distance of ``colour``."""
    return float((np.abs(row[:, :3] - np.array(mcolors.to_rgb(colour))).max(axis=1) < 0.03).mean())


async def test_cli_draws_a_cluster_loopphase_from_its_status(
    kmock: Any, kube: KubeApi, tmp_path: Path
) -> None:
    declare_resources(kmock)
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=120)
    await kube.create(LP, {"apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
                           "metadata": {"name": "demo", "namespace": NS}, "spec": {}})
    status = history_status(t0)
    await kube.merge_patch(custom_ref("loopphase.dev", "v1alpha1", NS, "loopphases", "demo",
                                      "status"), {"status": status})

    out = tmp_path / "cluster.png"
    code, stdout, stderr = await cli(tmp_path, str(kmock.url), "--cluster", "demo", "-o", str(out))
    assert code == 0, stderr
    assert f"wrote {out} (2 lanes" in stdout

    # Where the lanes are: the same figure for the same roles (the layout depends on them only).
    model = from_status(status, datetime.now(UTC))
    layout = render(model, tmp_path / "layout.png")
    pixels = mimage.imread(out)
    assert pixels.shape[:2] == (layout.height, layout.width)
    builder = pixels[layout.rows["builder"], layout.x_start:layout.x_end]
    adversary = pixels[layout.rows["adversary"], layout.x_start:layout.x_end]
    total = (model.end - model.start).total_seconds()
    # builder: Starting 40 s, Limited 50 s, Active from 90 s on; adversary: Starting 115 s
    assert share(builder, STATE_COLORS["Limited"]) > 0.5 * 50 / total
    assert share(builder, STATE_COLORS["Active"]) > 0.2
    assert share(builder, STATE_COLORS["Starting"]) > 0.5 * 40 / total
    assert share(adversary, STATE_COLORS["Starting"]) > 0.5 * 115 / total
    assert share(adversary, STATE_COLORS["Limited"]) < 0.01
    for state in ("Fatal", "Dead", "NeedsAttention", "Stopped"):
        assert share(builder, STATE_COLORS[state]) < 0.01 and share(adversary, STATE_COLORS[state]) < 0.01
    gap = (layout.rows["builder"] + layout.rows["adversary"]) // 2
    assert share(pixels[gap, layout.x_start:layout.x_end], "#ffffff") > 0.9
    band_row = layout.rows["builder"] - int(0.375 * (layout.rows["adversary"] - layout.rows["builder"]))
    band = pixels[band_row - 3: band_row + 4, layout.x_start:layout.x_end].reshape(-1, pixels.shape[2])
    assert share(band, LIMIT_COLORS["weekly"]) > 0.02


async def test_cli_names_a_missing_loopphase_and_the_namespace(
    kmock: Any, kube: KubeApi, tmp_path: Path
) -> None:
    declare_resources(kmock)
    code, _, stderr = await cli(tmp_path, str(kmock.url), "--cluster", "nope", "-n", "other",
                                "-o", str(tmp_path / "x.png"))
    assert code == 1 and "lp other/nope: not found" in stderr and "-n NAMESPACE" in stderr
    code, _, stderr = await cli(tmp_path, str(kmock.url), "--cluster", "x", "--state-dir", "d")
    assert code == 2 and "give no spec FILE or --state-dir" in stderr


async def test_cli_without_cluster_credentials_says_so(tmp_path: Path) -> None:
    env = dict(os.environ, KUBECONFIG=str(tmp_path / "missing-kubeconfig"))
    env.pop("KUBERNETES_SERVICE_HOST", None)  # not in a pod either
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "loopphase.cli", "timeline", "--cluster", "demo", env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 2
    assert "no cluster credentials" in err.decode() and "KUBECONFIG" in err.decode()
