"""core.gitfeed: where each new head came from, and WebhooksStale (pure, no clock)."""

from __future__ import annotations

from datetime import timedelta

from loopphase.api.status import LoopPhaseStatus
from loopphase.core.gitfeed import WEBHOOK_GRACE, settle_git_feed
from loopphase.core.observations import GitObservation

from tests.core.reconcile_helpers import T0

A, B, C = "a" * 40, "b" * 40, "c" * 40


def at_cursor(sha: str | None, base: LoopPhaseStatus | None = None) -> LoopPhaseStatus:
    status = (base or LoopPhaseStatus()).model_copy(deep=True)
    status.handoff.last_seen_sha = sha
    return status


def step(before: LoopPhaseStatus, obs: GitObservation, seconds: float) -> LoopPhaseStatus:
    after = at_cursor(obs.head, before)
    settle_git_feed(before, after, obs, T0 + timedelta(seconds=seconds))
    return after


def test_baseline_is_not_counted_and_webhook_heads_are() -> None:
    st = step(at_cursor(None), GitObservation(True, head=A, source="poll", webhooks_expected=True), 0)
    assert st.git.last_observation_source is None and st.git.heads_by_poll == 0
    hook = T0 + timedelta(seconds=9)
    st = step(st, GitObservation(True, head=B, source="webhook", webhook_at=hook,
                                 webhooks_expected=True), 10)
    assert (st.git.last_observation_source, st.git.heads_by_webhook, st.git.last_webhook_at) == (
        "webhook", 1, hook)
    assert st.condition("WebhooksStale").status == "False"
    assert st.condition("WebhooksStale").reason == "WebhookReceived"
    # nothing new: nothing written (an idle loop patches no status)
    again = step(st, GitObservation(True, head=B, source="webhook", webhook_at=hook,
                                    webhooks_expected=True), 11)
    assert again.git == st.git and again.conditions == st.conditions


def test_a_push_only_the_poll_saw_raises_webhooks_stale_after_the_grace() -> None:
    st = step(at_cursor(A), GitObservation(True, head=B, source="poll", webhooks_expected=True), 0)
    assert st.git.heads_by_poll == 1
    assert st.condition("WebhooksStale") is None  # a webhook may still be on its way
    later = step(st, GitObservation(True, head=B, source="poll", webhooks_expected=True),
                 WEBHOOK_GRACE + 0.1)
    condition = later.condition("WebhooksStale")
    assert (condition.status, condition.reason) == ("True", "PushMissedByWebhook")
    assert B[:12] in condition.message and "last webhook: never" in condition.message
    # the webhook arrives after all (late, or the next push's): the condition clears
    hooked = step(later, GitObservation(True, head=C, source="webhook",
                                        webhook_at=T0 + timedelta(seconds=20),
                                        webhooks_expected=True), 20)
    assert hooked.condition("WebhooksStale").status == "False"


def test_a_webhook_trailing_the_poll_within_the_grace_is_no_miss() -> None:
    st = step(at_cursor(A), GitObservation(True, head=B, source="poll", webhooks_expected=True), 0)
    st = step(st, GitObservation(True, head=B, source="webhook", webhook_at=T0 + timedelta(seconds=1),
                                 webhooks_expected=True), 1)
    st = step(st, GitObservation(True, head=B, source="webhook", webhook_at=T0 + timedelta(seconds=1),
                                 webhooks_expected=True), WEBHOOK_GRACE + 5)
    assert st.condition("WebhooksStale").status == "False"


def test_without_webhooks_no_condition_and_a_stale_one_is_cleared() -> None:
    st = step(at_cursor(A), GitObservation(True, head=B, source="poll"), 0)
    assert st.git.heads_by_poll == 1 and st.condition("WebhooksStale") is None
    st = step(st, GitObservation(True, head=B, source="poll", webhooks_expected=True), 10)
    assert st.condition("WebhooksStale").status == "True"
    st = step(st, GitObservation(True, head=B, source="poll"), 11)
    assert (st.condition("WebhooksStale").status, st.condition("WebhooksStale").reason) == (
        "False", "WebhooksNotConfigured")


def test_the_input_status_is_never_mutated() -> None:
    before = at_cursor(A)
    snapshot = before.model_copy(deep=True)
    after = before.model_copy()  # shares sub-models, like reconcile's copy
    settle_git_feed(before, after, GitObservation(True, head=B, source="poll",
                                                  webhooks_expected=True), T0)
    assert before == snapshot and after.git.heads_by_poll == 1
