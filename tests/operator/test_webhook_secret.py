"""Webhook URLs from a Secret (kmock API server), delivered to a real receiver on loopback."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime
from typing import Any

import pytest
from loopphase.api.notify import WebhookSpec
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import HistoryEntry, LoopPhaseStatus
from loopphase.notify import Notifier
from loopphase.notify.deliver import WebhookConfigError, WebhookUnavailable
from loopphase.notify.outbox import enqueue
from loopphase.operator.kubeapi import KubeApi, core_ref
from loopphase.operator.webhook_secret import WEBHOOK_LABEL, SecretUrls

from tests.notify.receiver import Receiver, free_port

NS = "team"


async def _secret(kube: KubeApi, name: str, url: str, labelled: bool) -> None:
    labels = {WEBHOOK_LABEL: "true"} if labelled else {}
    await kube.create(core_ref(NS, "secrets"), {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": name, "namespace": NS, "labels": labels},
        "data": {"url": base64.b64encode(url.encode()).decode()},
    })


def _hook(secret: str) -> WebhookSpec:
    return WebhookSpec.model_validate({"name": "ops", "urlSecretRef": {"name": secret}, "kinds": ["heal"]})


async def test_labelled_secret_is_read_unlabelled_refused_missing_retried(kube: KubeApi) -> None:
    urls = SecretUrls(kube, NS)
    await _secret(kube, "hook", "https://hooks.example.com/T0/SECRET ", labelled=True)
    await _secret(kube, "other", "https://hooks.example.com/T0/OTHER", labelled=False)
    assert await urls.resolve(_hook("hook"), "spec.notify.webhooks[0]") == "https://hooks.example.com/T0/SECRET"
    with pytest.raises(WebhookConfigError, match=f"kubectl label secret -n {NS} other {WEBHOOK_LABEL}=true") as refused:
        await urls.resolve(_hook("other"), "spec.notify.webhooks[0]")
    assert "OTHER" not in str(refused.value)
    with pytest.raises(WebhookUnavailable, match="does not exist"):
        await urls.resolve(_hook("absent"), "spec.notify.webhooks[0]")
    local = WebhookSpec.model_validate({"name": "ops", "urlEnv": "HOOK"})
    with pytest.raises(WebhookConfigError, match="urlSecretRef"):
        await urls.resolve(local, "spec.notify.webhooks[0]")


async def test_notifier_posts_to_the_url_in_the_secret(kube: KubeApi) -> None:
    port = free_port()
    receiver = Receiver(port, fail_first=1).start()
    try:
        await _secret(kube, "hook", f"http://127.0.0.1:{port}/slack/T0/SECRET", labelled=True)
        spec = LoopPhaseSpec.model_validate({
            "repo": {"url": "/r.git"}, "phases": [{"id": "a", "plan": "p", "statusFile": "s"}],
            "notify": {"webhooks": [{"name": "ops", "format": "slack", "kinds": ["heal"],
                                     "urlSecretRef": {"name": "hook"}}]},
        })
        now = datetime.now(UTC)
        after = LoopPhaseStatus(history=[HistoryEntry(seq=1, time=now, kind="recreate", role="builder",
                                                      rule="heal.dead", reason="agent process gone")],
                                history_seq=1)
        outbox = enqueue(spec, LoopPhaseStatus(), after).notifications.outbox
        notifier = Notifier("lp", SecretUrls(kube, NS).resolve)
        outcomes: list[Any] = []
        for _attempt in range(2):  # the receiver fails the first, accepts the second
            notifier.submit(spec.notify, outbox, datetime.now(UTC))
            for _ in range(250):
                got = notifier.drain()
                if got:
                    outcomes += got
                    break
                await asyncio.sleep(0.02)
        await notifier.close()
        assert [o.ok for o in outcomes] == [False, True] and outcomes[0].error == "HTTP 500"
        assert receiver.delivered() == [{"text": "LoopPhase lp: heal builder: agent process gone"}]
        assert all(path == "/slack/T0/SECRET" for path, _, _ in receiver.requests)
    finally:
        receiver.stop()
