"""The operator's side of issue 15 under kopf + kmock: metrics scraped over HTTP, an approval
by annotation, notifications from a labelled Secret's URL to a real receiver on loopback."""

from __future__ import annotations

import base64
import urllib.request
from pathlib import Path
from typing import Any

from loopphase.metrics import serve
from loopphase.operator.kubeapi import KubeApi, core_ref, custom_ref
from loopphase.operator.webhook_secret import WEBHOOK_LABEL
from operator_harness import (
    CountingShimFactory,
    FakeShims,
    bare_repo,
    eventually,
    make_context,
    push_file,
    running_operator,
)
from prometheus_client.parser import text_string_to_metric_families
from test_operator_kopf import NS, create_lp, events, lp_body, obj, setup, shims  # noqa: F401

from tests.notify.receiver import Receiver, free_port

LP = "loopphase.dev/v1alpha1/loopphases"
SLOW = 45.0  # deadlines for a loaded CI machine (polled, not slept)


def scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_approval_annotation_and_notifications(
    setup: Any, kube: KubeApi, shims: FakeShims, tmp_path: Path, kubelet: Any  # noqa: F811
) -> None:
    kmock = setup
    origin, work = bare_repo(tmp_path)
    port = free_port()
    receiver = Receiver(port, fail_first=1).start()
    await kube.create(core_ref(NS, "secrets"), {
        "apiVersion": "v1", "kind": "Secret",
        "metadata": {"name": "hook", "namespace": NS, "labels": {WEBHOOK_LABEL: "true"}},
        "data": {"url": base64.b64encode(f"http://127.0.0.1:{port}/hook/T0K".encode()).decode()},
    })
    body = lp_body(str(origin), notify={"webhooks": [{
        "name": "ops", "kinds": ["awaiting-approval", "advance"], "urlSecretRef": {"name": "hook"}}]})
    body["spec"]["phases"][0]["approval"] = "manual"
    ctx = make_context(kube, shims, tmp_path)
    server = serve(ctx.metrics, 0)
    try:
        async with running_operator(kmock, ctx):
            await create_lp(kube, body)
            await eventually(lambda: obj(kmock, "v1/pods", "demo-adversary"), timeout=SLOW)
            await kubelet.run(NS, "demo-builder", "127.0.0.2")
            await kubelet.run(NS, "demo-adversary", "127.0.0.3")
            await eventually(lambda: (o := obj(kmock, LP, "demo")) and o["status"].get("ready") == "2/2", timeout=SLOW)

            push_file(work, origin, "src.txt", "x\n", "claim: gate 1")
            await eventually(lambda: value(scrape(server.server_port), "loopphase_pings_delivered_total",
                                           role="adversary", kind="claim") == 1, timeout=SLOW)
            samples = scrape(server.server_port)
            assert value(samples, "loopphase_ping_delivery_seconds_count", kind="claim") == 1
            assert value(samples, "loopphase_api_writes_total", kind="status") >= 1
            assert value(samples, "loopphase_api_writes_total", kind="event") >= 1
            assert value(samples, "loopphase_agents", role="builder", state="Active") == 1

            # DONE waits for approval: display phase, condition, Event, notification.
            push_file(work, origin, "STATUS-1.md", "## DONE\n", "status: phase 1 done")
            lp = await eventually(lambda: (o := obj(kmock, LP, "demo"))
                                  and o["status"].get("phase") == "AwaitingApproval" and o, timeout=SLOW)
            cond = next(c for c in lp["status"]["conditions"] if c["type"] == "AwaitingApproval")
            assert cond["status"] == "True" and cond["reason"] == "PhaseDone"
            # kopf posts Events from a background queue: wait for it rather than assume it.
            await eventually(lambda: any(e.get("reason") == "AwaitingApproval" for e in events(kmock)),
                             timeout=SLOW)
            await eventually(lambda: [b["kind"] for b in receiver.delivered()] == ["awaiting-approval"],
                             timeout=30)
            assert lp["status"]["current"]["id"] == "p1"

            # kubectl annotate lp demo loopphase.dev/approve=p1
            await kube.merge_patch(custom_ref("loopphase.dev", "v1alpha1", NS, "loopphases", "demo"),
                                   {"metadata": {"annotations": {"loopphase.dev/approve": "p1"}}})
            await eventually(lambda: (o := obj(kmock, LP, "demo")) and o["status"]["current"]["id"] == "p2", timeout=SLOW)
            await eventually(lambda: value(scrape(server.server_port), "loopphase_phase_advances_total",
                                           kind="advance") == 1, timeout=SLOW)
            await eventually(lambda: [b["kind"] for b in receiver.delivered()]
                             == ["awaiting-approval", "advance"], timeout=SLOW)
            # The outcome is folded into status at the tick after the delivery.
            final = await eventually(lambda: (o := obj(kmock, LP, "demo"))
                                     and o["status"]["notifications"]["delivered"] == 2 and o,
                                     timeout=SLOW)
            assert final["status"]["notifications"]["outbox"] == []
            assert "T0K" not in str(final["status"])
    finally:
        server.shutdown()
        receiver.stop()


async def test_reject_annotation_pings_the_builder_once_and_keeps_the_phase(
    setup: Any, kube: KubeApi, tmp_path: Path, kubelet: Any  # noqa: F811
) -> None:
    """`kubectl annotate --overwrite lp demo loopphase.dev/reject="..."` on a phase awaiting
    approval: the builder's shim is sent the message once (the annotation, left in place, is
    consumed: recorded in approvalsHandled and not acted on again), the phase stays, and the
    rejected DONE is ignored until the builder pushes again."""
    kmock = setup
    origin, work = bare_repo(tmp_path)
    body = lp_body(str(origin))
    body["spec"]["phases"][0]["approval"] = "manual"
    fake = FakeShims()
    counted = CountingShimFactory(fake)  # one client per running pod per tick: a tick counter
    ctx = make_context(kube, counted, tmp_path)  # type: ignore[arg-type]
    message = "the migration has no rollback; add one"
    async with running_operator(kmock, ctx):
        await create_lp(kube, body)
        await eventually(lambda: obj(kmock, "v1/pods", "demo-adversary"), timeout=SLOW)
        await kubelet.run(NS, "demo-builder", "127.0.0.2")
        await kubelet.run(NS, "demo-adversary", "127.0.0.3")
        await eventually(lambda: (o := obj(kmock, LP, "demo")) and o["status"].get("ready") == "2/2",
                         timeout=SLOW)
        push_file(work, origin, "STATUS-1.md", "## DONE\n", "status: phase 1 done")
        await eventually(lambda: (o := obj(kmock, LP, "demo"))
                         and o["status"].get("phase") == "AwaitingApproval", timeout=SLOW)

        await kube.merge_patch(custom_ref("loopphase.dev", "v1alpha1", NS, "loopphases", "demo"),
                               {"metadata": {"annotations": {"loopphase.dev/reject": message}}})

        def rejections() -> list[tuple[str, str]]:
            return [(url, text) for url, text in fake.sent if message in text]

        sent = await eventually(rejections, timeout=SLOW)
        assert [url for url, _ in sent] == ["http://127.0.0.2:8790"]  # the builder's shim
        assert sent[0][1].startswith("LoopPhase: phase p1 was NOT approved by a human reviewer")
        lp = await eventually(lambda: (o := obj(kmock, LP, "demo"))
                              and o["status"]["current"].get("rejection") is None
                              and any(h.startswith("annotation/reject/p1/")
                                      for h in o["status"]["current"]["approvalsHandled"]) and o,
                              timeout=SLOW)
        assert lp["status"]["current"]["id"] == "p1"
        # Several more ticks with the annotation still in place: no second ping, no advance,
        # and the rejected DONE does not put the phase back to waiting for approval.
        ticks = counted.count("127.0.0.2")
        await eventually(lambda: counted.count("127.0.0.2") >= ticks + 5, timeout=SLOW)
        assert len(rejections()) == 1
        lp = obj(kmock, LP, "demo")
        assert lp is not None and lp["status"]["current"]["id"] == "p1"
        assert lp["status"]["phase"] != "AwaitingApproval"
        assert (lp["metadata"]["annotations"] or {}).get("loopphase.dev/reject") == message
        # kopf posts Events from a background queue: wait for it rather than assume it.
        await eventually(lambda: [e["message"] for e in events(kmock) if e.get("reason") == "Rejected"]
                         == [f"builder: [approval.reject] phase p1 not approved: {message}; "
                             "the builder is told, the phase stays"], timeout=SLOW)

        # A new push with DONE: the phase waits for approval again.
        push_file(work, origin, "STATUS-1.md", "## DONE\nrollback added\n", "status: done again")
        await eventually(lambda: (o := obj(kmock, LP, "demo"))
                         and o["status"].get("phase") == "AwaitingApproval", timeout=SLOW)
