"""Review of issue 13 (fault 8's kind, fault 7's promise): ``agents.<role>.env`` names any
Secret of the namespace, unchecked, and the agent pod gets its value in its environment.

The label check of fault 8 covers ``spec.repo.credentialsSecret`` only. A LoopPhase author can
still write ``env: [{name: T, secretKeyRef: {name: demo-adversary-shim-token, key: token}}]``
on the builder and the builder's agent reads the adversary shim's bearer token (the "one token
per role" defence), or name any other Secret of the namespace (another team's database
password): the operator is the confused deputy that creates the pod. What should happen: the
start is refused with a reason naming the field (as for credentialsSecret: only Secrets
labelled for LoopPhase use, and never a shim-token Secret), and no pod references it.

Fixed: env Secrets must be labelled ``loopphase.dev/agent-env: "true"`` and shim-token Secrets
are refused by name (runtime/kubernetes.py ``_env_refusal``).
"""

from __future__ import annotations

from typing import Any

import pytest
from loopphase.api.spec import LoopPhaseSpec
from loopphase.operator.kubeapi import KubeApi
from loopphase.runtime import k8s_objects as ko
from loopphase.runtime.kubernetes import KubernetesRuntime

from tests.operator.test_runtime_kmock import NS, OWNER, SPEC, Shims, plan, shims, to_obs  # noqa: F401


@pytest.mark.parametrize("secret", [ko.token_secret_name("demo", "adversary"), "team-db-password"])
async def test_agent_env_cannot_name_a_shim_token_or_an_unlabelled_secret(
    kmock: Any, kube: KubeApi, shims: Shims, secret: str  # noqa: F811
) -> None:
    wire = SPEC.model_dump(by_alias=True, exclude_none=True)
    builder = {**wire["agents"].get("builder", {}),
               "env": [{"name": "STOLEN", "secretKeyRef": {"name": secret, "key": "token"}}]}
    spec = LoopPhaseSpec.model_validate({**wire, "agents": {**wire["agents"], "builder": builder}})
    kmock.objects["v1/secrets", NS, "team-db-password"] = {
        "metadata": {"name": "team-db-password", "namespace": NS}, "data": {"token": "eA=="}}
    runtime = KubernetesRuntime(kube, OWNER, spec, ko.PodSettings(shim_port=8790),
                                shim_factory=shims, to_observation=to_obs)
    await runtime.token("adversary")  # the adversary's token Secret exists, as in a live run
    result = await runtime.start(plan())
    pod = kmock.objects["v1/pods", NS, "demo-builder"] if result.ok else None
    refs = [] if pod is None else [
        e["valueFrom"]["secretKeyRef"]["name"]
        for c in pod["spec"]["containers"] for e in c.get("env", []) if "valueFrom" in e]
    assert secret not in refs, f"the builder's pod reads Secret {secret} ({result})"
    assert not result.ok and "agents.builder.env" in result.detail


async def test_a_labelled_env_secret_is_used(kmock: Any, kube: KubeApi, shims: Shims) -> None:  # noqa: F811
    wire = SPEC.model_dump(by_alias=True, exclude_none=True)
    builder = {**wire["agents"].get("builder", {}),
               "env": [{"name": "ANTHROPIC_API_KEY", "secretKeyRef": {"name": "anthropic", "key": "apiKey"}}]}
    spec = LoopPhaseSpec.model_validate({**wire, "agents": {**wire["agents"], "builder": builder}})
    kmock.objects["v1/secrets", NS, "anthropic"] = {
        "metadata": {"name": "anthropic", "namespace": NS,
                     "labels": {"loopphase.dev/agent-env": "true"}}, "data": {"apiKey": "eA=="}}
    runtime = KubernetesRuntime(kube, OWNER, spec, ko.PodSettings(shim_port=8790),
                                shim_factory=shims, to_observation=to_obs)
    assert (await runtime.start(plan())).ok
