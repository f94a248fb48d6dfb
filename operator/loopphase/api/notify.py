"""``spec.notify`` (webhooks for chosen kinds) and ``status.notifications`` (the durable outbox).

A notification is recorded in status in the same write as the decision it announces, and
leaves the outbox only when a webhook accepted it (2xx) or after ``MAX_ATTEMPTS``: a restart
in between re-sends it (at-least-once; receivers dedupe on ``id``).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator, model_validator

from loopphase.api.base import (
    DNS_LABEL_RE,
    K8S_NAME_RE,
    ApiModel,
    Timestamp,
    check_relative_path,
    shown,
)
from loopphase.api.errors import FieldError

NotifyKind = Literal[
    "limit-armed", "limit-lifted", "heal", "needs-attention", "circuit-open", "advance",
    "awaiting-approval", "complete",
]
NOTIFY_KINDS: tuple[NotifyKind, ...] = (
    "limit-armed", "limit-lifted", "heal", "needs-attention", "circuit-open", "advance",
    "awaiting-approval", "complete",
)
BodyFormat = Literal["generic", "slack"]
OUTBOX_LIMIT = 100
MAX_ATTEMPTS = 12
_ENV_RE = r"^[A-Za-z_][A-Za-z0-9_]{0,127}\Z"


class SecretKeyRef(ApiModel):
    name: str = Field(description="a Secret in the LoopPhase's namespace, labelled loopphase.dev/webhook=true")
    key: str = Field("url", description="the key holding the webhook URL")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not K8S_NAME_RE.match(value):
            raise ValueError(f"Secret name {shown(value)} must be a Kubernetes object name")
        return value


class WebhookSpec(ApiModel):
    """One receiver. Exactly one URL source: ``urlSecretRef`` (operator), ``urlFile`` or
    ``urlEnv`` (``loopphase run``). The URL is a secret (Slack's carries its token): it is never
    written to status, logs or Events."""

    name: str = Field(description="a DNS label naming this webhook in status")
    format: BodyFormat = Field("generic", description="generic JSON, or a Slack-compatible {text}")
    kinds: list[NotifyKind] = Field(
        default_factory=lambda: list(NOTIFY_KINDS), description="what to announce (default: all)"
    )
    url_secret_ref: SecretKeyRef | None = None
    url_file: str | None = Field(None, description="a file holding the URL (relative to the spec file)")
    url_env: str | None = Field(None, description="an environment variable holding the URL")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not DNS_LABEL_RE.match(value):
            raise ValueError(f"webhook name {shown(value)} must be a DNS label (e.g. ops-slack)")
        return value

    @field_validator("url_file")
    @classmethod
    def _file(cls, value: str | None) -> str | None:
        return None if value is None else check_relative_path(value, "urlFile")

    @field_validator("url_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        if value is not None and not re.match(_ENV_RE, value):
            raise ValueError(f"urlEnv {shown(value)} must be an environment variable name")
        return value

    @model_validator(mode="after")
    def _one_source(self) -> WebhookSpec:
        sources = [s for s in (self.url_secret_ref, self.url_file, self.url_env) if s is not None]
        if len(sources) != 1:
            raise ValueError(
                f"webhook {self.name!r}: give exactly one of urlSecretRef (on a cluster), "
                "urlFile or urlEnv (for `loopphase run`)"
            )
        if not self.kinds:
            raise FieldError((("kinds",), "is empty: omit it for all kinds"))
        return self


class NotifySpec(ApiModel):
    webhooks: list[WebhookSpec] = Field(default_factory=list, max_length=10)

    @model_validator(mode="after")
    def _unique(self) -> NotifySpec:
        names = [w.name for w in self.webhooks]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            first = names.index(dupes[0], names.index(dupes[0]) + 1)
            raise FieldError((("webhooks", first, "name"), f"duplicate name(s) {', '.join(dupes)}"))
        return self


class OutboxItem(ApiModel):
    id: int = Field(description="unique per LoopPhase, increasing; receivers dedupe on it")
    webhook: str
    kind: NotifyKind
    role: str | None = None
    rule: str = ""
    reason: str = ""
    phase: str = ""
    time: Timestamp
    attempts: int = 0
    next_attempt_at: Timestamp | None = None
    last_error: str = ""


class NotifyStatus(ApiModel):
    seq: int = Field(0, description="the last notification id handed out")
    outbox: list[OutboxItem] = Field(default_factory=list)
    delivered: int = 0
    failed: int = Field(0, description="given up after every attempt failed")
    dropped: int = Field(0, description="discarded because the outbox was full")
