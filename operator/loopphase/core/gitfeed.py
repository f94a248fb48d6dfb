"""How pushes reached the controller (webhook or poll), and the ``WebhooksStale`` condition.

Pure: ``settle_git_feed(before, status, git, now)`` edits ``status.git`` and the condition from
the tick's git observation; no I/O, no clock reads.

``WebhooksStale`` follows the Kubernetes convention for abnormal-true conditions (like
``Stalled`` and ``Degraded`` here): it is set only for LoopPhases that expect webhooks, and is
``True`` when the safety-net poll found a new head and no webhook for that remote arrived within
``WEBHOOK_GRACE`` seconds of it (a webhook racing the poll by a moment does not count). It turns
``False`` (reason ``WebhookReceived``) as soon as a webhook arrives after that head. When
webhooks stop being expected it turns ``False`` with reason ``WebhooksNotConfigured``.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from loopphase.api.status import LoopPhaseStatus
from loopphase.core.conditions import set_condition
from loopphase.core.observations import GitObservation

WEBHOOK_GRACE = 5.0  # seconds a webhook may trail the poll that found its push
CONDITION = "WebhooksStale"


def settle_git_feed(
    before: LoopPhaseStatus, st: LoopPhaseStatus, git: GitObservation | None, now: datetime
) -> None:
    """Record how this tick's git observation learnt its head; update ``WebhooksStale``."""
    if git is None:
        return
    feed = st.git = st.git.model_copy()  # reconcile's copy shares sub-models it never edits
    if git.webhook_at is not None and (feed.last_webhook_at is None
                                       or git.webhook_at > feed.last_webhook_at):
        feed.last_webhook_at = git.webhook_at
    cursor = before.handoff.last_seen_sha
    moved = git.reachable and git.head is not None and git.head != cursor
    if moved and cursor is not None and git.source is not None:  # not the first baseline
        feed.last_observation_source = git.source
        feed.last_observation_at = now
        feed.last_observed_head = git.head
        if git.source == "webhook":
            feed.heads_by_webhook += 1
        else:
            feed.heads_by_poll += 1
    if not git.webhooks_expected:
        existing = st.condition(CONDITION)
        if existing is not None and existing.status != "False":
            set_condition(st, CONDITION, False, "WebhooksNotConfigured",
                          "no webhook receiver is configured for this LoopPhase", now)
        return
    missed_head = (
        feed.last_observation_source == "poll"
        and feed.last_observation_at is not None
        and (feed.last_webhook_at is None or feed.last_webhook_at < feed.last_observation_at)
    )
    if missed_head and feed.last_observation_at is not None:
        if now - feed.last_observation_at < timedelta(seconds=WEBHOOK_GRACE):
            return  # the webhook may still be on its way: decide later
        last = feed.last_webhook_at.isoformat() if feed.last_webhook_at else "never"
        set_condition(
            st, CONDITION, True, "PushMissedByWebhook",
            f"the poll found head {(feed.last_observed_head or '?')[:12]} at "
            f"{feed.last_observation_at.isoformat()} and no webhook announced it (last webhook: "
            f"{last}); check the webhook's recent deliveries on the git host, its URL and secret",
            now,
        )
    else:
        set_condition(st, CONDITION, False, "WebhookReceived" if feed.last_webhook_at
                      else "NoPushMissed", "", now)
