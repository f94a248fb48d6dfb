"""Webhook URLs on a cluster: ``notify.webhooks[].urlSecretRef`` read from the LoopPhase's
namespace at delivery time (a rotated URL is used on the next notification).

Like git credentials, only a Secret labelled ``loopphase.dev/webhook=true`` is used: without
the label, creating a LoopPhase would let anyone make the operator send a Secret's value
(as a URL) somewhere. Every error names the Secret, never its value.
"""

from __future__ import annotations

import base64
import binascii

from loopphase.api.base import LABEL_PREFIX
from loopphase.api.notify import WebhookSpec
from loopphase.notify.deliver import WebhookConfigError, WebhookUnavailable
from loopphase.notify.urls import cluster_url_problem
from loopphase.operator.kubeapi import KubeApi, KubeApiError, core_ref

WEBHOOK_LABEL = f"{LABEL_PREFIX}webhook"


class SecretUrls:
    """``resolve(webhook) -> url`` for one namespace."""

    def __init__(self, api: KubeApi, namespace: str) -> None:
        self.api = api
        self.namespace = namespace

    async def resolve(self, hook: WebhookSpec, field: str) -> str:
        """The URL; ``field`` (``spec.notify.webhooks[i]``) leads every error message."""
        ref = hook.url_secret_ref
        problem = cluster_url_problem(hook, field)
        if problem is not None or ref is None:
            raise WebhookConfigError(": ".join(problem or (field, "has no urlSecretRef")))
        where = f"Secret {self.namespace}/{ref.name}"
        try:
            secret = await self.api.get(core_ref(self.namespace, "secrets", ref.name))
        except KubeApiError as err:
            raise WebhookUnavailable(f"{field}: reading {where} failed: HTTP {err.status}") from err
        if secret is None:
            raise WebhookUnavailable(f"{field}.urlSecretRef: {where} does not exist")
        labels = (secret.get("metadata") or {}).get("labels") or {}
        if labels.get(WEBHOOK_LABEL) != "true":
            raise WebhookConfigError(
                f"{field}.urlSecretRef: {where} is not labelled {WEBHOOK_LABEL}=true, so LoopPhase "
                f"does not use it: kubectl label secret -n {self.namespace} {ref.name} {WEBHOOK_LABEL}=true"
            )
        raw = (secret.get("data") or {}).get(ref.key)
        if not raw:
            raise WebhookConfigError(f"{field}.urlSecretRef: {where} has no key {ref.key!r}")
        try:
            return base64.b64decode(raw).decode("utf-8").strip()
        except (binascii.Error, UnicodeDecodeError) as err:
            raise WebhookConfigError(f"{field}.urlSecretRef: {where} key {ref.key!r} is not UTF-8 text") from err
