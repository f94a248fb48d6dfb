"""Notifications: a real receiver on loopback that fails the first attempts; durable outbox."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from loopphase.api.notify import MAX_ATTEMPTS, OUTBOX_LIMIT
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import HistoryEntry, LoopPhaseStatus
from loopphase.metrics import LoopMetrics
from loopphase.notify.deliver import Notifier, body
from loopphase.notify.outbox import Outcome, apply, backoff, enqueue
from loopphase.runner.loop import Runner, TickReport
from loopphase.runner.specfile import load_spec

from tests.notify.receiver import Receiver, free_port
from tests.runner.test_local_e2e import QUIET_ADVERSARY, _write_spec, processes_under

SECRET = "T000-SECRET-PATH-b1e2"

CLAIM_THEN_DONE = """
phases:
  p1-handoff:
    - work: {seconds: 1}
    - git: {commit: "claim(p1): real work", files: {"src/a.txt": "a\\n"}, push: true}
    - work: {seconds: 1}
    - append_done: {commit: "done(p1)", push: true}
  p2-limits:
    - work: {seconds: 1}
    - append_done: {commit: "done(p2)", push: true}
"""
FATAL_THEN_DONE = """
phases:
  p1-handoff:
    - work: {seconds: 1}
    - fatal: {}
    - work: {seconds: 1}
    - append_done: {commit: "done(p1)", push: true}
"""


def _with_webhook(spec_path: Path, port: int, kinds: list[str], format_: str = "generic") -> None:
    manifest = yaml.safe_load(spec_path.read_text())
    (spec_path.parent / "hook-url").write_text(f"http://127.0.0.1:{port}/hook/{SECRET}\n")
    manifest["spec"]["notify"] = {"webhooks": [
        {"name": "ops", "format": format_, "kinds": kinds, "urlFile": "hook-url"}]}
    spec_path.write_text(yaml.safe_dump(manifest, sort_keys=False))


def _no_secret_under(root: Path) -> list[str]:
    return [str(p) for p in root.rglob("*") if p.is_file() and p.name != "hook-url"
            and SECRET in p.read_text(errors="replace")]


@pytest.mark.slow
def test_retried_until_delivered_and_never_blocking_a_tick(tmp_path: Path) -> None:
    port = free_port()
    receiver = Receiver(port, fail_first=2, hold_first=True).start()
    spec_path = _write_spec(tmp_path, CLAIM_THEN_DONE, QUIET_ADVERSARY)
    _with_webhook(spec_path, port, ["advance", "complete"])
    state = tmp_path / "state"
    metrics = LoopMetrics()
    runner = Runner(load_spec(spec_path), state, metrics=metrics)
    ticks_while_held: list[int] = []

    def on_tick(report: TickReport) -> None:
        if receiver.first_arrived.is_set() and not receiver.release.is_set():
            ticks_while_held.append(report.tick)
            if len(ticks_while_held) >= 3:  # the tick went on while the webhook hung
                receiver.release.set()

    runner.on_tick = on_tick
    try:
        final = asyncio.run(asyncio.wait_for(runner.run(exit_on_complete=True), timeout=180))
    finally:
        asyncio.run(runner.stop_everything())
        receiver.stop()
    assert len(ticks_while_held) >= 3
    assert final.completed_at is not None
    statuses = [status for _, _, status in receiver.requests]
    assert statuses[:2] == [500, 500] and statuses[2:] and set(statuses[2:]) == {200}
    delivered = receiver.delivered()
    assert sorted(b["kind"] for b in delivered) == ["advance", "complete"]
    assert len({b["id"] for b in delivered}) == 2  # each announced once
    assert all(path == f"/hook/{SECRET}" for path, _, _ in receiver.requests)
    assert delivered[0]["loopphase"] == "demo" and delivered[0]["rule"] == "done.marker"
    notes = runner.store.load().notifications
    assert notes.outbox == [] and notes.delivered == 2 and notes.failed == 0
    assert metrics.registry.get_sample_value("loopphase_notifications_total", {"outcome": "delivered"}) == 2
    assert _no_secret_under(state) == []
    assert processes_under(tmp_path) == []


@pytest.mark.slow
def test_a_heal_is_announced_after_a_restart_right_after_it(tmp_path: Path) -> None:
    port = free_port()  # nothing listens yet: the first process cannot deliver
    spec_path = _write_spec(tmp_path, FATAL_THEN_DONE, QUIET_ADVERSARY, phases=1)
    _with_webhook(spec_path, port, ["heal"], format_="slack")
    state = tmp_path / "state"
    metrics = LoopMetrics()
    first = Runner(load_spec(spec_path), state, metrics=metrics)

    def healed(report: TickReport) -> None:
        if any(a.rule.startswith("heal.") and a.role == "builder" for a in report.result.changed_actions):
            first.request_stop()  # "the process dies" right after the tick that healed

    first.on_tick = healed
    receiver = None
    try:
        asyncio.run(asyncio.wait_for(first.run(exit_on_complete=True), timeout=90))
        pending = first.store.load().notifications.outbox
        assert [(i.kind, i.role) for i in pending] == [("heal", "builder")]
        # The same heal, counted by tier in the metrics.
        assert metrics.registry.get_sample_value(
            "loopphase_heal_actions_total", {"role": "builder", "tier": "restart-cold"}) == 1

        receiver = Receiver(port).start()
        second = Runner(load_spec(spec_path), state)
        final = asyncio.run(asyncio.wait_for(second.run(exit_on_complete=True), timeout=120))
        assert final.completed_at is not None
        texts = [b["text"] for b in receiver.delivered()]
        assert len(texts) == 1 and texts[0].startswith("LoopPhase demo: heal builder")
        assert final.notifications.outbox == [] and final.notifications.delivered == 1
    finally:
        asyncio.run(first.stop_everything())
        if receiver is not None:
            receiver.stop()
    assert _no_secret_under(state) == []
    assert processes_under(tmp_path) == []


# -- the outbox rules (pure) ----------------------------------------------------------------

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _spec(kinds: list[str]) -> LoopPhaseSpec:
    return LoopPhaseSpec.model_validate({
        "repo": {"url": "/r.git"}, "phases": [{"id": "a", "plan": "p", "statusFile": "s"}],
        "notify": {"webhooks": [{"name": "ops", "urlEnv": "HOOK", "kinds": kinds}]},
    })


def _history(*kinds: str) -> LoopPhaseStatus:
    return LoopPhaseStatus(history=[HistoryEntry(seq=i + 1, time=T0, kind=k, role="builder")  # type: ignore[arg-type]
                                    for i, k in enumerate(kinds)], history_seq=len(kinds))


def test_enqueue_takes_only_new_subscribed_history() -> None:
    spec = _spec(["heal", "advance"])
    before = _history("nudge")
    after = _history("nudge", "restart-cold", "ping", "advance")
    out = enqueue(spec, before, after).notifications
    assert [(i.id, i.kind) for i in out.outbox] == [(1, "heal"), (2, "advance")]
    assert enqueue(spec, after, after) == after


def test_failures_back_off_then_give_up() -> None:
    spec = _spec(["heal"])
    status = enqueue(spec, LoopPhaseStatus(), _history("recreate"))
    assert [backoff(n) for n in (1, 2, 3, 9, 12)] == [2, 4, 8, 300, 300]
    for attempt in range(1, MAX_ATTEMPTS):
        status = apply(status, [Outcome(1, "ops", False, T0, "HTTP 503")])
        item = status.notifications.outbox[0]
        assert item.attempts == attempt and item.next_attempt_at == T0 + timedelta(seconds=backoff(attempt))
    status = apply(status, [Outcome(1, "ops", False, T0, "HTTP 503")])
    assert status.notifications.outbox == [] and status.notifications.failed == 1


def test_outbox_is_bounded() -> None:
    spec = _spec(["heal"])
    kinds = ["nudge"] * (OUTBOX_LIMIT + 5)
    out = enqueue(spec, LoopPhaseStatus(), _history(*kinds)).notifications
    assert len(out.outbox) == OUTBOX_LIMIT and out.dropped == 5 and out.outbox[0].id == 6


async def test_url_never_appears_in_errors_and_bad_schemes_are_final() -> None:
    spec = _spec(["heal"])
    status = enqueue(spec, LoopPhaseStatus(), _history("recreate"))
    port = free_port()

    async def refused(_hook):
        return f"http://127.0.0.1:{port}/hook/{SECRET}"

    async def bad(_hook):
        return f"file:///etc/{SECRET}"

    for resolver, final in ((refused, False), (bad, True)):
        notifier = Notifier("lp", resolver)
        assert notifier.submit(spec.notify, status.notifications.outbox, T0) == 1
        for _ in range(200):
            outcomes = notifier.drain()
            if outcomes:
                break
            await asyncio.sleep(0.02)
        await notifier.close()
        assert len(outcomes) == 1 and not outcomes[0].ok and outcomes[0].final is final
        assert SECRET not in outcomes[0].error and outcomes[0].error


def test_bodies() -> None:
    status = enqueue(_spec(["heal"]), LoopPhaseStatus(), _history("recreate"))
    item = status.notifications.outbox[0]
    generic = body("generic", "lp", item)
    assert generic["kind"] == "heal" and generic["id"] == 1 and generic["loopphase"] == "lp"
    assert body("slack", "lp", item) == {"text": "LoopPhase lp: heal builder: "}


def test_slack_bodies_escape_what_slack_would_act_on() -> None:
    """Text the agent printed reaches the reason; in a Slack body ``<!channel>`` would ping a
    channel and ``<url|label>`` disguise a link (a trial posted both). Escaped as Slack asks."""
    status = enqueue(_spec(["heal"]), LoopPhaseStatus(), _history("recreate"))
    item = status.notifications.outbox[0].model_copy(update={
        "reason": "Invalid API key · run /login <!channel> <https://evil.example/x|click> & more"})
    text = body("slack", "lp", item)["text"]
    assert "<!channel>" not in text and "<https://" not in text
    assert "&lt;!channel&gt; &lt;https://evil.example/x|click&gt; &amp; more" in text
    generic = body("generic", "lp", item)
    assert "<!channel>" in generic["reason"]  # JSON consumers get the text as it was
