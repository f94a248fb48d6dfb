"""The operator's webhook receiver under kopf against kmock: a push to one LoopPhase's remote,
announced by the real post-receive hook, makes that LoopPhase (and only it) observe at once,
while both poll only every 60 s; an unusable webhook Secret is a Warning Event naming it."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from loopphase.operator.kubeapi import KubeApi, core_ref
from loopphase.operator.webhooks import OperatorWebhooks
from loopphase.webhook.hook_cli import install
from operator_harness import (
    FakeShims,
    bare_repo,
    eventually,
    make_context,
    push_file,
    running_operator,
)
from test_operator_kopf import NS, create_lp, events, lp_body, obj, setup, shims  # noqa: F401

SECRET = b"operator-webhook-secret"
LP = "loopphase.dev/v1alpha1/loopphases"


def webhook_lp(name: str, url: str, secret_name: str = "hook") -> dict[str, Any]:
    body = lp_body(url)
    body["metadata"].update(name=name, uid=f"uid-{name}")
    body["spec"]["repo"]["webhook"] = {"secretRef": {"name": secret_name, "key": "secret"},
                                       "pollInterval": "60s"}
    return body


def git_status(kmock: Any, name: str) -> dict[str, Any]:
    return ((obj(kmock, LP, name) or {}).get("status") or {}).get("git") or {}


def watcher_of(ctx: Any, url: str) -> Any:
    return next(w for w in ctx.git_registry().watchers() if w.url == url)


async def test_a_push_webhook_wakes_only_the_matching_loopphase(
    setup: Any, kube: KubeApi, shims: FakeShims, tmp_path: Path  # noqa: F811
) -> None:
    kmock = setup
    origin_a, work_a = bare_repo(tmp_path / "a")
    origin_b, _ = bare_repo(tmp_path / "b")
    await kube.create(core_ref(NS, "secrets"), {
        "apiVersion": "v1", "kind": "Secret", "metadata": {"name": "hook", "namespace": NS},
        "data": {"secret": base64.b64encode(SECRET).decode()}})
    ctx = make_context(kube, shims, tmp_path)
    ctx.webhooks = OperatorWebhooks(("127.0.0.1", 0))
    (tmp_path / "secret").write_bytes(SECRET)
    async with running_operator(kmock, ctx):
        await create_lp(kube, webhook_lp("loop-a", str(origin_a)))
        await create_lp(kube, webhook_lp("loop-b", str(origin_b)))
        await eventually(lambda: len(ctx.webhooks.receiver.subscriptions()) == 2)
        # both have their baseline (the cursor) before the push
        await eventually(lambda: all(((obj(kmock, LP, n) or {}).get("status") or {})
                                     .get("handoff", {}).get("lastSeenSha") for n in ("loop-a", "loop-b")))
        watcher_a, watcher_b = watcher_of(ctx, str(origin_a)), watcher_of(ctx, str(origin_b))
        b_reads = watcher_b.ls_remotes
        install(origin_a, url=ctx.webhooks.receiver.url(), secret_file=tmp_path / "secret")

        push_file(work_a, origin_a, "src.txt", "x\n", "claim: gate 1")
        feed = await eventually(lambda: (g := git_status(kmock, "loop-a"))
                                and g.get("headsByWebhook") == 1 and g)
        assert feed["lastObservationSource"] == "webhook" and feed["lastWebhookAt"]
        assert watcher_a.reads_by["webhook"] == 1
        assert ctx.webhooks.receiver.counters.as_dict()["notified"] == 1
        # loop-b was neither woken nor polled (its 60 s safety-net poll is not due)
        assert watcher_b.ls_remotes == b_reads and watcher_b.hints == 0
        assert not git_status(kmock, "loop-b").get("lastWebhookAt")


async def test_a_missing_webhook_secret_is_a_warning_and_the_loop_polls(
    setup: Any, kube: KubeApi, shims: FakeShims, tmp_path: Path  # noqa: F811
) -> None:
    kmock = setup
    origin, _ = bare_repo(tmp_path)
    ctx = make_context(kube, shims, tmp_path)
    ctx.webhooks = OperatorWebhooks(("127.0.0.1", 0))
    async with running_operator(kmock, ctx):
        await create_lp(kube, webhook_lp("loop-c", str(origin), secret_name="absent"))
        found = await eventually(lambda: [e for e in events(kmock) if e.get("type") == "Warning"
                                          and e.get("reason") == "WebhookSecretMissing"])
        assert f"Secret {NS}/absent" in found[0]["message"]
        assert "spec.repo.webhook.secretRef" in found[0]["message"]
        assert ctx.webhooks.receiver.subscriptions() == []
