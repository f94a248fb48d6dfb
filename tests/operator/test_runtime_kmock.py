"""KubernetesRuntime against the kmock API emulator, with a recording fake shim."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from loopphase.api.spec import LoopPhaseSpec
from loopphase.core.observations import AgentObservation
from loopphase.operator.kubeapi import KubeApi, core_ref
from loopphase.runtime import k8s_objects as ko
from loopphase.runtime.base import LaunchPlan
from loopphase.runtime.kubernetes import KubernetesRuntime

NS = "team-a"
OWNER = ko.Owner(name="demo", namespace=NS, uid="uid-1")
SPEC = LoopPhaseSpec.model_validate({
    "repo": {"url": "https://git.example/r.git"},
    "phases": [{"id": "p1", "plan": "P1.md", "statusFile": "S1.md"},
               {"id": "p2", "plan": "P2.md", "statusFile": "S2.md"}],
    "agents": {"builder": {"backend": "sim", "simScenario": "phases: {default: []}\n"}},
})


@dataclass
class FakeShim:
    url: str
    token: str
    calls: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)
    fail: bool = False

    async def state(self) -> dict[str, Any]:
        self.calls.append(("state", ()))
        if self.fail:
            raise OSError("connection refused")
        return {"alive": True, "pane": "hello"}

    async def send(self, text: str) -> bool:
        self.calls.append(("send", (text,)))
        return True

    async def restart(self, *args: Any) -> dict[str, Any]:
        self.calls.append(("restart", args))
        return {"ok": True}

    async def stop(self) -> None:
        self.calls.append(("stop", ()))


class Shims:
    def __init__(self) -> None:
        self.made: list[FakeShim] = []
        self.fail = False

    def __call__(self, url: str, token: str, timeout: float) -> FakeShim:
        shim = FakeShim(url, token, fail=self.fail)
        self.made.append(shim)
        return shim


def to_obs(role: Any, state: Any, error: str | None) -> AgentObservation:
    return AgentObservation(role=role, present=True, alive=bool(state and state["alive"]),
                            pane=state["pane"] if state else "", error=error)


def plan(role: Any = "builder", index: int = 0, mode: Any = "cold") -> LaunchPlan:
    return LaunchPlan(role=role, phase_index=index, phase_id=SPEC.phases[index].id, mode=mode,
                      kickoff=f"kickoff {role} {index}", continuation="continue", model=None)


@pytest.fixture()
def shims() -> Shims:
    return Shims()


@pytest.fixture()
def runtime(kube: KubeApi, shims: Shims) -> KubernetesRuntime:
    return KubernetesRuntime(kube, OWNER, SPEC, ko.PodSettings(shim_port=8790),
                             shim_factory=shims, to_observation=to_obs, delete_timeout=5.0,
                             poll_interval=0.01)


async def test_start_creates_secret_configmap_pvc_and_pod(kmock: Any, runtime: KubernetesRuntime) -> None:
    result = await runtime.start(plan())
    assert result.ok, result.detail
    pod = kmock.objects["v1/pods", NS, "demo-builder"]
    assert pod["metadata"]["annotations"]["loopphase.dev/phase-index"] == "0"
    assert "--scenario" in pod["spec"]["containers"][0]["args"]
    cm = kmock.objects["v1/configmaps", NS, "demo-prompts"]
    assert cm["data"] == {"kickoff-builder-p1.md": "kickoff builder 0",
                          "scenario-builder.yaml": "phases: {default: []}\n"}
    assert kmock.objects["v1/persistentvolumeclaims", NS, "demo-builder-work"]["spec"]
    token = ko.read_token(dict(kmock.objects["v1/secrets", NS, "demo-builder-shim-token"]))
    assert token and len(token) >= 32

    # A second role adds its key to the same ConfigMap and gets a token of its own.
    assert (await runtime.start(plan("adversary"))).ok
    cm = kmock.objects["v1/configmaps", NS, "demo-prompts"]
    assert cm["data"]["kickoff-adversary-p1.md"] == "kickoff adversary 0"
    assert cm["data"]["kickoff-builder-p1.md"] == "kickoff builder 0"
    other = ko.read_token(dict(kmock.objects["v1/secrets", NS, "demo-adversary-shim-token"]))
    assert other and other != token
    policy = kmock.objects["networking.k8s.io/v1/networkpolicies", NS, "demo-agents"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"loopphase.dev/name": "demo"}


async def test_start_twice_adopts_and_never_creates_a_second_pod(
    kmock: Any, runtime: KubernetesRuntime, kube: KubeApi, shims: Shims
) -> None:
    assert (await runtime.start(plan())).ok
    # A fresh runtime (an operator restart) re-reads the token and adopts on 409.
    again = KubernetesRuntime(kube, OWNER, SPEC, shim_factory=shims, to_observation=to_obs)
    result = await again.start(plan())
    assert result.ok and "adopted" in result.detail
    creates = [r for r in list(kmock) if r.method == "POST" and r.resource
               and r.resource.plural == "pods"]
    assert len(creates) == 2  # the second POST got 409; no second pod exists
    assert await again.token("builder") == await runtime.token("builder")


async def test_foreign_pod_with_our_name_is_not_adopted(kmock: Any, runtime: KubernetesRuntime) -> None:
    kmock.objects["v1/pods", NS, "demo-builder"] = {
        "metadata": {"name": "demo-builder", "namespace": NS,
                     "ownerReferences": [{"uid": "old-uid", "controller": True}]}}
    result = await runtime.start(plan())
    assert not result.ok and "another owner" in result.detail
    obs = await runtime.observe("builder")
    assert obs.present and obs.terminating and not obs.alive


async def test_observe_absent_pending_running_and_unreachable(
    kmock: Any, kubelet: Any, runtime: KubernetesRuntime, shims: Shims
) -> None:
    assert await runtime.observe("builder") == AgentObservation(role="builder", present=False)
    await runtime.start(plan(index=1))
    pending = await runtime.observe("builder")
    assert pending.present and not pending.alive and "no IP" in (pending.error or "")
    assert pending.phase_index == 1 and pending.host_pending
    # the kubelet says why: the reason reaches the observation (and the agent's status message)
    await kubelet.api.merge_patch(core_ref(NS, "pods", "demo-builder"), {"status": {
        "phase": "Pending",
        "containerStatuses": [{"restartCount": 0, "state": {"waiting": {
            "reason": "ImagePullBackOff", "message": "Back-off pulling image loopphase-agent:dev"}}}],
    }})
    pulling = await runtime.observe("builder")
    assert pulling.host_pending
    assert "ImagePullBackOff: Back-off pulling image loopphase-agent:dev" in (pulling.error or "")
    await kubelet.run(NS, "demo-builder", "127.0.0.7")
    running = await runtime.observe("builder")
    assert running.alive and running.pane == "hello" and running.phase_index == 1
    assert running.pod_name == "demo-builder"
    assert shims.made[-1].url == "http://127.0.0.7:8790"
    assert shims.made[-1].token == await runtime.token("builder")
    shims.fail = True
    down = await runtime.observe("builder")
    assert down.present and not down.alive and "connection refused" in (down.error or "")
    assert not down.host_pending  # Running with an IP and no shim: a real failure
    # Found by review: a pod gets its IP before its init container (the clone) and the agent
    # image pull are done; still Pending, so still the platform's business, not a failure.
    await kubelet.api.merge_patch(core_ref(NS, "pods", "demo-builder"), {"status": {
        "phase": "Pending", "podIP": "127.0.0.7",
        "initContainerStatuses": [{"restartCount": 0, "state": {"running": {}}}],
        "containerStatuses": [{"restartCount": 0, "state": {"waiting": {
            "reason": "PodInitializing"}}}],
    }})
    cloning = await runtime.observe("builder")
    assert cloning.host_pending and "PodInitializing" in (cloning.error or "")


async def test_observe_terminating_and_failed(kmock: Any, kubelet: Any, runtime: KubernetesRuntime) -> None:
    await runtime.start(plan())
    await kubelet.run(NS, "demo-builder", "127.0.0.2", phase="Failed")
    failed = await runtime.observe("builder")
    assert failed.present and not failed.alive and "Failed" in (failed.error or "")
    kmock.objects["v1/pods", NS, "demo-builder"].patch(
        {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})
    assert (await runtime.observe("builder")).terminating


async def test_stop_deletes_and_verifies_gone_pvc_stays(kmock: Any, runtime: KubernetesRuntime) -> None:
    await runtime.start(plan())
    result = await runtime.stop("builder")
    assert result.ok and "gone" in result.detail
    assert kmock.objects["v1/pods", NS, "demo-builder"].deleted
    assert not kmock.objects["v1/persistentvolumeclaims", NS, "demo-builder-work"].deleted
    assert (await runtime.stop("builder")).ok  # idempotent


async def test_stop_times_out_when_pod_never_goes(kmock: Any, runtime: KubernetesRuntime) -> None:
    await runtime.start(plan())
    # A finalizer keeps the pod in kmock (a kubelet that never confirms the kill).
    kmock.objects["v1/pods", NS, "demo-builder"].patch({"metadata": {"finalizers": ["x/y"]}})
    runtime.delete_timeout = 0.05
    result = await runtime.stop("builder")
    assert not result.ok and "still exists" in result.detail
    start = await runtime.start(plan())  # and no second pod is created meanwhile
    assert not start.ok and "terminating" in start.detail


async def test_send_restart_and_recreate(kmock: Any, kubelet: Any, runtime: KubernetesRuntime, shims: Shims) -> None:
    await runtime.start(plan())
    assert not (await runtime.send("builder", "hi")).ok  # no IP yet
    await kubelet.run(NS, "demo-builder", "127.0.0.3")
    assert (await runtime.send("builder", "hi")).ok
    assert ("send", ("hi",)) in shims.made[-1].calls
    restarted = await runtime.restart(plan(mode="warm"))
    assert restarted.ok
    assert shims.made[-1].calls == [("restart", ("warm", "kickoff builder 0", "continue", 0, "p1"))]

    recreated = await runtime.recreate(plan(mode="warm"))
    assert recreated.ok, recreated.detail
    pod = kmock.objects["v1/pods", NS, "demo-builder"]
    assert pod["metadata"]["annotations"]["loopphase.dev/spawn-mode"] == "warm"
    history = kmock.objects["v1/pods", NS, "demo-builder"].history
    assert [v is None for v in history].count(True) == 1  # deleted exactly once in between


async def test_restart_of_dead_pod_recreates(kmock: Any, kubelet: Any, runtime: KubernetesRuntime, shims: Shims) -> None:
    await runtime.start(plan())
    await kubelet.run(NS, "demo-builder", "127.0.0.4", phase="Failed")
    result = await runtime.restart(plan(mode="cold"))
    assert result.ok and "recreated" in result.detail
    assert not any(c[0] == "restart" for s in shims.made for c in s.calls)


async def test_a_scenario_path_cannot_start_on_a_cluster(kmock: Any, runtime: KubernetesRuntime) -> None:
    """A one-line simScenario names a file `loopphase run` reads; a pod would get the path as
    its scenario and never start: CannotStart before any pod is created."""
    runtime.spec = LoopPhaseSpec.model_validate({**SPEC.to_wire(), "agents": {"builder": {"backend": "sim",
                                                 "simScenario": "scenarios/builder.yaml"}}})
    obs = await runtime.observe("builder")
    assert not obs.present
    assert obs.cannot_start is not None
    assert "agents.builder.simScenario names a file (scenarios/builder.yaml)" in obs.cannot_start


async def test_pods_never_mount_a_secret_not_labelled_for_loopphase(
    kmock: Any, kube: KubeApi, shims: Shims
) -> None:
    spec = LoopPhaseSpec.model_validate({**SPEC.model_dump(by_alias=True, exclude_none=True),
                                         "repo": {"url": "https://git.example.invalid/r.git",
                                                  "credentialsSecret": "team-db-password"}})
    kmock.objects["v1/secrets", NS, "team-db-password"] = {
        "metadata": {"name": "team-db-password", "namespace": NS}, "data": {"password": "eA=="}}
    runtime = KubernetesRuntime(kube, OWNER, spec, ko.PodSettings(shim_port=8790),
                                shim_factory=shims, to_observation=to_obs)
    refused = await runtime.start(plan())
    assert not refused.ok and "loopphase.dev/git-credentials=true" in refused.detail
    assert ("v1/pods", NS, "demo-builder") not in kmock.objects  # nothing mounts it
    kmock.objects["v1/secrets", NS, "team-db-password"] = {
        "metadata": {"name": "team-db-password", "namespace": NS,
                     "labels": {"loopphase.dev/git-credentials": "true"}},
        "data": {"password": "eA=="}}
    assert (await runtime.start(plan())).ok
