"""The operator under kopf against the kmock emulator, with fake shims standing in for agents.

kmock limits (see conftest): no resourceVersion (status patches carry one anyway and kmock
merges it), no status-subresource isolation, no garbage collection (PVC/ConfigMap/Secret stay
after the owner is deleted here; a real API server removes them through ownerReferences).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from loopphase.operator.kubeapi import KubeApi, core_ref, custom_ref
from loopphase.testing.kmock_world import declare_resources
from operator_harness import (
    FakeShims,
    bare_repo,
    eventually,
    make_context,
    push_file,
    running_operator,
)

NS = "team-a"


def lp_body(url: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase",
        "metadata": {"name": "demo", "namespace": NS, "uid": "uid-demo", "generation": 1,
                     # kopf 1.45 patches with a JSON-patch "test" on it; kmock never bumps it
                     "resourceVersion": "1"},
        "spec": {
            "repo": {"url": url, "branch": "main"},
            "phases": [{"id": "p1", "plan": "PLAN-1.md", "statusFile": "STATUS-1.md"},
                       {"id": "p2", "plan": "PLAN-2.md", "statusFile": "STATUS-2.md"}],
            "agents": {"builder": {"backend": "sim", "simScenario": "phases: {default: []}\n"}},
            "timing": {"signalInterval": 0.2, "startGrace": 1},
        },
    }
    body["spec"].update(spec)
    return body


def obj(kmock: Any, resource: str, name: str) -> dict[str, Any] | None:
    try:
        found = kmock.objects[resource, NS, name]
    except KeyError:
        return None
    return None if found.deleted else dict(found.raw)


def events(kmock: Any) -> list[dict[str, Any]]:
    """Events as POSTed. (kmock ignores generateName, so it stores only the first of kopf's
    events under the name None and answers 409 to the rest; the requests show them all.)"""
    return [dict(r.data) for r in list(kmock) if r.method == "POST" and r.resource is not None
            and r.resource.plural == "events"]


def pod_creations(kmock: Any) -> int:
    return sum(1 for r in list(kmock) if r.method == "POST" and r.resource is not None
               and r.resource.plural == "pods")


@pytest.fixture()
def shims() -> FakeShims:
    return FakeShims()


@pytest.fixture()
def setup(kmock: Any, kube: KubeApi) -> Any:
    declare_resources(kmock)
    return kmock


async def create_lp(kube: KubeApi, body: dict[str, Any]) -> None:
    await kube.create(custom_ref("loopphase.dev", "v1alpha1", NS, "loopphases"), body)


async def test_invalid_spec_is_reported_and_nothing_is_created(
    setup: Any, kube: KubeApi, shims: FakeShims, tmp_path: Path
) -> None:
    kmock = setup
    body = lp_body("https://example.invalid/r.git")
    body["spec"]["phases"][0]["id"] = "Not A Label"
    ctx = make_context(kube, shims, tmp_path)
    async with running_operator(kmock, ctx):
        await create_lp(kube, body)
        lp = await eventually(lambda: (o := obj(kmock, "loopphase.dev/v1alpha1/loopphases", "demo"))
                              and (o.get("status") or {}).get("phase") == "Invalid" and o)
        degraded = [c for c in lp["status"]["conditions"] if c["type"] == "Degraded"][0]
        assert degraded["status"] == "True" and degraded["reason"] == "InvalidSpec"
        assert "spec.phases[0].id: " in degraded["message"]
        await eventually(lambda: any(e.get("reason") == "InvalidSpec" and e.get("type") == "Warning"
                                     for e in events(kmock)))
        # kopf writes its bookkeeping after the handler's own status write: wait for it on a
        # fresh read (the snapshot above may predate it).
        lp = await eventually(lambda: (o := obj(kmock, "loopphase.dev/v1alpha1/loopphases", "demo"))
                              and any(k.startswith("loopphase.dev/")
                                      for k in (o["metadata"].get("annotations") or {})) and o)
    assert pod_creations(kmock) == 0
    assert obj(kmock, "v1/secrets", "demo-builder-shim-token") is None
    assert obj(kmock, "v1/configmaps", "demo-prompts") is None
    # kopf's bookkeeping lives in annotations, not in .status (nothing for the schema to prune)
    assert "kopf" not in lp["status"]
    assert any(k.startswith("loopphase.dev/") for k in lp["metadata"].get("annotations", {}))


async def test_apply_pods_status_claim_ping_done_advance_and_restart_adopts(
    setup: Any, kube: KubeApi, shims: FakeShims, tmp_path: Path, kubelet: Any
) -> None:
    kmock = setup
    origin, work = bare_repo(tmp_path)
    ctx = make_context(kube, shims, tmp_path)
    async with running_operator(kmock, ctx):
        await create_lp(kube, lp_body(str(origin)))
        builder = await eventually(lambda: obj(kmock, "v1/pods", "demo-builder"))
        adversary = await eventually(lambda: obj(kmock, "v1/pods", "demo-adversary"))
        for pod, role in ((builder, "builder"), (adversary, "adversary")):
            assert pod["metadata"]["labels"]["loopphase.dev/role"] == role
            assert pod["metadata"]["labels"]["loopphase.dev/phase"] == "p1"
            assert pod["metadata"]["ownerReferences"][0]["uid"] == "uid-demo"
            assert pod["spec"]["automountServiceAccountToken"] is False
            assert obj(kmock, "v1/persistentvolumeclaims", f"demo-{role}-work")
        cm = obj(kmock, "v1/configmaps", "demo-prompts")
        assert cm and "kickoff-builder-p1.md" in cm["data"] and "p1" in cm["data"]["kickoff-builder-p1.md"]
        tokens = [obj(kmock, "v1/secrets", f"demo-{r}-shim-token") for r in ("builder", "adversary")]
        assert all(tokens) and tokens[0]["data"] != tokens[1]["data"]  # one token per role
        await eventually(lambda: any(e.get("reason") == "Start" for e in events(kmock)))

        # Play the kubelet: pods get loopback IPs; the (fake) shims answer "active".
        await kubelet.run(NS, "demo-builder", "127.0.0.2")
        await kubelet.run(NS, "demo-adversary", "127.0.0.3")
        lp = await eventually(lambda: (o := obj(kmock, "loopphase.dev/v1alpha1/loopphases", "demo"))
                              and (o.get("status") or {}).get("builder") == "Active"
                              and (o.get("status") or {}).get("adversary") == "Active" and o)
        assert lp["status"]["ready"] == "2/2"
        assert lp["status"]["current"]["id"] == "p1"

        # A claim commit pings the adversary through its shim (by pod IP).
        push_file(work, origin, "src.txt", "x\n", "claim: gate 1")
        await eventually(lambda: any(url == "http://127.0.0.3:8790" for url, _ in shims.sent))

        # DONE on the pushed branch advances: old pods gone before the new phase's exist.
        push_file(work, origin, "STATUS-1.md", "## DONE\n", "status: phase 1 done")
        await eventually(lambda: (p := obj(kmock, "v1/pods", "demo-builder"))
                         and p["metadata"]["annotations"]["loopphase.dev/phase-index"] == "1")
        versions = list(kmock.objects["v1/pods", NS, "demo-builder"].history)
        deleted_at = versions.index(None)
        assert all(v["metadata"]["annotations"]["loopphase.dev/phase-index"] == "0"
                   for v in versions[:deleted_at])
        assert all(v["metadata"]["annotations"]["loopphase.dev/phase-index"] == "1"
                   for v in versions[deleted_at + 1:] if v is not None)
        await kubelet.run(NS, "demo-builder", "127.0.0.4")
        await kubelet.run(NS, "demo-adversary", "127.0.0.5")
        await eventually(lambda: (o := obj(kmock, "loopphase.dev/v1alpha1/loopphases", "demo"))
                         and o["status"]["current"]["id"] == "p2"
                         and (o.get("status") or {}).get("builder") == "Active")

    created = pod_creations(kmock)
    # Operator restart: a fresh context (no memory), same world: adopt, no duplicate pod, the
    # phase and counters come from status.
    ctx2 = make_context(kube, shims, tmp_path)
    async with running_operator(kmock, ctx2):
        await eventually(lambda: "uid-demo" in ctx2.runtimes)
        await eventually(lambda: ctx2.runtimes["uid-demo"]._tokens)
        lp = obj(kmock, "loopphase.dev/v1alpha1/loopphases", "demo")
        assert lp is not None and lp["status"]["current"]["id"] == "p2"
    assert pod_creations(kmock) == created


async def test_delete_stops_pods_verified_before_the_finalizer_goes(
    setup: Any, kube: KubeApi, shims: FakeShims, tmp_path: Path
) -> None:
    kmock = setup
    origin, _ = bare_repo(tmp_path)
    ctx = make_context(kube, shims, tmp_path)
    async with running_operator(kmock, ctx):
        await create_lp(kube, lp_body(str(origin)))
        await eventually(lambda: obj(kmock, "v1/pods", "demo-adversary"))
        # kmock 0.8 never answers a DELETE of an object that has finalizers (it hangs), so mark
        # the deletion as the API server would: set deletionTimestamp via a patch (a watch
        # event); kmock drops the object once kopf removes its finalizer.
        await kube.merge_patch(
            custom_ref("loopphase.dev", "v1alpha1", NS, "loopphases", "demo"),
            {"metadata": {"deletionTimestamp": "2026-01-01T00:00:00Z"}})
        await eventually(lambda: obj(kmock, "loopphase.dev/v1alpha1/loopphases", "demo") is None)
        assert obj(kmock, "v1/pods", "demo-builder") is None
        assert obj(kmock, "v1/pods", "demo-adversary") is None


async def test_unusable_credentials_secret_is_a_warning_event_naming_it(
    setup: Any, kube: KubeApi, shims: FakeShims, tmp_path: Path
) -> None:
    """A credentials Secret with neither ``password`` nor ``ssh-privatekey`` is reported on the
    LoopPhase as a Warning Event (the tick goes on: git reads are unauthenticated)."""
    kmock = setup
    origin, _ = bare_repo(tmp_path)
    await kube.create(core_ref(NS, "secrets"),
                      {"apiVersion": "v1", "kind": "Secret",
                       "metadata": {"name": "git-creds", "namespace": NS,
                                    "labels": {"loopphase.dev/git-credentials": "true"}},
                       "data": {"token": "c2VjcmV0"}})
    body = lp_body(str(origin))
    body["spec"]["repo"]["credentialsSecret"] = "git-creds"
    ctx = make_context(kube, shims, tmp_path)
    async with running_operator(kmock, ctx):
        await create_lp(kube, body)
        found = await eventually(lambda: [e for e in events(kmock)
                                          if e.get("type") == "Warning"
                                          and "git-creds" in (e.get("message") or "")])
    assert found[0]["reason"].startswith("Credentials")
    assert "ssh-privatekey" in found[0]["message"] and "password" in found[0]["message"]
    assert "c2VjcmV0" not in found[0]["message"]  # the Secret's values are never echoed


async def test_a_limit_in_one_loopphase_holds_another_on_the_same_account(
    setup: Any, kube: KubeApi, shims: FakeShims, tmp_path: Path, kubelet: Any
) -> None:
    """Issue 11's account hold across LoopPhases of one operator: the handler publishes each
    LoopPhase's own holds and passes the others' in as observations."""
    kmock = setup
    origin, _ = bare_repo(tmp_path)
    ctx = make_context(kube, shims, tmp_path)
    agents = {"builder": {"backend": "sim", "account": "team-max",
                          "simScenario": "phases: {default: []}\n"}}
    ips = {"a": ("127.0.0.12", "127.0.0.13"), "b": ("127.0.0.14", "127.0.0.15")}
    for ip in (*ips["a"], *ips["b"]):
        shims.panes[f"http://{ip}:8790"] = "I pushed the claim and will wait for review.\n\n> "
    shims.panes[f"http://{ips['a'][0]}:8790"] = "Working\n\n5-hour limit reached ∙ resets 11:59pm\n> "
    async with running_operator(kmock, ctx):
        for name in ("a", "b"):
            body = lp_body(str(origin), agents=agents)
            body["metadata"].update({"name": name, "uid": f"uid-{name}"})
            await create_lp(kube, body)
        for name in ("a", "b"):
            # both pods (roles start concurrently: either may be created first)
            await eventually(lambda n=name: obj(kmock, "v1/pods", f"{n}-adversary")
                             and obj(kmock, "v1/pods", f"{n}-builder"))
            await kubelet.run(NS, f"{name}-builder", ips[name][0])
            await kubelet.run(NS, f"{name}-adversary", ips[name][1])
        b = await eventually(lambda: (o := obj(kmock, "loopphase.dev/v1alpha1/loopphases", "b"))
                             and (o.get("status") or {}).get("holds") and o)
        [hold] = b["status"]["holds"]
        assert (hold["account"], hold["loopPhase"], hold["startedBy"]) == (f"ns:{NS}/team-max", f"{NS}/a", "builder")
        condition = [c for c in b["status"]["conditions"] if c["type"] == "AccountHold"][0]
        assert condition["status"] == "True" and f"{NS}/a:builder" in condition["message"]
        await eventually(lambda: (o := obj(kmock, "loopphase.dev/v1alpha1/loopphases", "b"))
                         and o["status"]["builder"] == o["status"]["adversary"] == "Limited")
        await eventually(lambda: any(e.get("reason") == "HoldArmed" and f"{NS}/a:builder" in e.get("message", "")
                                     for e in events(kmock)))
        a = obj(kmock, "loopphase.dev/v1alpha1/loopphases", "a")
        assert a is not None and [h["startedBy"] for h in a["status"]["holds"]] == ["builder"]
        assert "loopPhase" not in a["status"]["holds"][0] or a["status"]["holds"][0]["loopPhase"] is None
    b_urls = {f"http://{ip}:8790" for ip in ips["b"]}
    assert not [text for url, text in shims.sent if url in b_urls]  # nothing typed into b
