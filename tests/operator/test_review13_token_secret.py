"""Review of issue 13 (fault 7): the shim token Secret is adopted by name only.

``<lp>-<role>-shim-token`` was read and used if it existed, whoever made it: anyone who may
create Secrets in the namespace (but not exec into pods) could plant one with a token they
know before the LoopPhase first starts, and drive its agent through the shim. Pods with our
name are already refused when not ours (test_foreign_pod_with_our_name_is_not_adopted); the
token Secret now gets the same check. Before the fix the start succeeded with the planted
token.
"""

from __future__ import annotations

import base64
from typing import Any

from loopphase.operator.kubeapi import KubeApi
from loopphase.runtime import k8s_objects as ko
from loopphase.runtime.kubernetes import KubernetesRuntime

from tests.operator.test_runtime_kmock import NS, OWNER, plan, runtime, shims  # noqa: F401

PLANTED = "known-to-the-attacker-0123456789abcdef"


async def test_a_planted_token_secret_is_refused_not_used(
    kmock: Any, kube: KubeApi, runtime: KubernetesRuntime  # noqa: F811
) -> None:
    name = ko.token_secret_name(OWNER.name, "builder")
    kmock.objects["v1/secrets", NS, name] = {
        "metadata": {"name": name, "namespace": NS},
        "data": {ko.TOKEN_KEY: base64.b64encode(PLANTED.encode()).decode()}}
    result = await runtime.start(plan())
    assert not result.ok, result.detail
    assert "not owned by this LoopPhase" in result.detail and name in result.detail
    assert runtime._tokens.get("builder") != PLANTED


async def test_our_own_token_secret_is_still_read_back(
    kmock: Any, kube: KubeApi, runtime: KubernetesRuntime  # noqa: F811
) -> None:
    first = await runtime.token("builder")
    runtime._tokens.clear()  # as after an operator restart: read it from the Secret
    assert await runtime.token("builder") == first
