"""The operator under kopf against kmock, with REAL shims (sim agents) standing in for the pods.

The fake kubelet (fake_kubelet.py) runs ``loopphase shim`` for every agent pod the operator
creates, each on its own loopback address 127.0.0.N with all shims on the same port, so the
operator's podIP:port addressing, the shim token from the Secret and the pod's argv are
exercised unchanged. kmock limits: see conftest.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fake_kubelet import FakeKubelet, free_port
from loopphase.operator.context import OperatorContext
from loopphase.operator.kubeapi import KubeApi, custom_ref
from loopphase.runtime import k8s_objects as ko
from loopphase.testing.kmock_world import declare_resources
from operator_harness import bare_repo, eventually, running_operator

NS = "team-a"
LP = "loopphase.dev/v1alpha1/loopphases"

LIMITED_BUILDER = """\
phases:
  default:
    - say: {text: "starting the builder"}
    - banner: {style: five_hour, reset_in: 600, tz: UTC}
"""
WAITING_ADVERSARY = """\
phases:
  default:
    - say: {text: "nothing to review yet"}
    - wait_until: {seconds: 300}
"""
WORKING = """\
phases:
  default:
    - work: {seconds: 120}
"""


def lp_body(url: str, builder: str, adversary: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
        "metadata": {"name": "demo", "namespace": NS, "uid": "uid-demo", "generation": 1,
                     "resourceVersion": "1"},
        "spec": {
            "repo": {"url": url, "branch": "main"},
            "phases": [{"id": "p1", "plan": "PLAN-1.md", "statusFile": "STATUS-1.md"}],
            "agents": {"builder": {"backend": "sim", "simScenario": builder},
                       "adversary": {"backend": "sim", "simScenario": adversary}},
            "timing": {"signalInterval": 0.3, "startGrace": 2, "heavyInterval": 5},
            "timeZone": "UTC",
        },
    }
    body["spec"].update(spec)
    return body


def real_context(tmp: Path, port: int) -> OperatorContext:
    """Default shim factory (the real ShimClient over HTTP), pods on the shared port."""
    return OperatorContext(pod_settings=ko.PodSettings(shim_port=port),
                           git_cache=tmp / "git-cache", delete_timeout=20.0, shim_timeout=5.0)


def lp_status(kmock: Any) -> dict[str, Any]:
    try:
        stored = kmock.objects[LP, NS, "demo"]
    except KeyError:
        return {}
    return {} if stored.deleted else dict(stored.raw.get("status") or {})


def pod(kmock: Any, name: str) -> dict[str, Any] | None:
    try:
        stored = kmock.objects["v1/pods", NS, name]
    except KeyError:
        return None
    return None if stored.deleted else dict(stored.raw)


async def create_lp(kube: KubeApi, body: dict[str, Any]) -> None:
    await kube.create(custom_ref("loopphase.dev", "v1alpha1", NS, "loopphases"), body)


def limited_and_waiting(kmock: Any) -> dict[str, Any] | None:
    st = lp_status(kmock)
    agents = st.get("agents") or {}
    b, a = agents.get("builder") or {}, agents.get("adversary") or {}
    if b.get("state") == "Limited" and a.get("state") == "Waiting":
        return st
    return None


@pytest.mark.slow
async def test_status_follows_real_sim_agents_limited_and_waiting(
    kmock: Any, kube: KubeApi, fake_kubelet: FakeKubelet, tmp_path: Path
) -> None:
    declare_resources(kmock)
    origin, _ = bare_repo(tmp_path)
    port = free_port()
    ctx = real_context(tmp_path, port)
    async with running_operator(kmock, ctx):
        before = datetime.now(UTC)
        await create_lp(kube, lp_body(str(origin), LIMITED_BUILDER, WAITING_ADVERSARY))
        st = await eventually(lambda: limited_and_waiting(kmock), timeout=30)

    # The shims really ran where the pods say: own loopback address, one shared port.
    shims = {s.name: s for s in fake_kubelet.started}
    assert set(shims) == {"demo-builder", "demo-adversary"}
    assert len(fake_kubelet.started) == 2, "no pod was recreated"
    for name, shim in shims.items():
        p = pod(kmock, name)
        assert p is not None and p["status"]["podIP"] == shim.ip
        assert shim.ip.startswith("127.0.0.") and shim.ip != "127.0.0.1"
        assert shim.args[shim.args.index("--port") + 1] == str(port)
    assert shims["demo-builder"].ip != shims["demo-adversary"].ip

    builder, adversary = st["agents"]["builder"], st["agents"]["adversary"]
    limit = builder["limit"]
    assert limit["parsed"] is True, limit
    until = datetime.fromisoformat(limit["until"].replace("Z", "+00:00"))
    # reset_in 600 s, rounded up to the minute by the banner: the window is ~10 minutes out.
    assert before + timedelta(seconds=590) <= until <= before + timedelta(seconds=720), limit
    waiting_until = datetime.fromisoformat(adversary["waitingUntil"].replace("Z", "+00:00"))
    assert before + timedelta(seconds=290) <= waiting_until <= before + timedelta(seconds=330)
    # printer-column fields follow
    assert st["builder"] == "Limited"
    assert st["adversary"] == "Waiting"
    assert st["ready"] == "2/2"
    assert st["phase"] == "Limited"  # an agent in a usage-limit window: the loop is limited
    assert st["progress"] == "0/1"  # phases done / phases
    assert st["current"]["id"] == "p1"
    limited = [c for c in st["conditions"] if c["type"] == "Limited"][0]
    assert limited["status"] == "True" and limited["reason"] == "UsageLimitWindow"


@pytest.mark.slow
async def test_status_follows_a_working_sim_agent_active(
    kmock: Any, kube: KubeApi, fake_kubelet: FakeKubelet, tmp_path: Path
) -> None:
    declare_resources(kmock)
    origin, _ = bare_repo(tmp_path)
    ctx = real_context(tmp_path, free_port())
    async with running_operator(kmock, ctx):
        await create_lp(kube, lp_body(str(origin), WORKING, WORKING))
        st = await eventually(
            lambda: (s := lp_status(kmock)).get("builder") == "Active"
            and s.get("adversary") == "Active" and s, timeout=30)
    assert st["agents"]["builder"]["state"] == "Active"
    assert st["agents"]["builder"].get("limit") is None
    assert st["ready"] == "2/2"
    assert st["phase"] == "Running" and st["progress"] == "0/1"
    assert len(fake_kubelet.started) == 2
