"""Webhook URLs for ``loopphase run``: from a file beside the spec or an environment variable."""

from __future__ import annotations

import os
from pathlib import Path

from loopphase.api.notify import WebhookSpec
from loopphase.notify.deliver import WebhookConfigError


class LocalUrls:
    """``resolve(webhook) -> url``; WebhookConfigError naming the field and the fix."""

    def __init__(self, spec_dir: Path) -> None:
        self.spec_dir = spec_dir

    async def resolve(self, hook: WebhookSpec) -> str:
        if hook.url_file is not None:
            path = self.spec_dir / hook.url_file
            try:
                return path.read_text(encoding="utf-8").strip()
            except OSError as err:
                raise WebhookConfigError(
                    f"notify.webhooks[{hook.name}].urlFile: cannot read {path}: {err.strerror}"
                ) from err
        if hook.url_env is not None:
            value = os.environ.get(hook.url_env)
            if not value:
                raise WebhookConfigError(
                    f"notify.webhooks[{hook.name}].urlEnv: ${hook.url_env} is not set"
                )
            return value
        raise WebhookConfigError(
            f"notify.webhooks[{hook.name}].urlSecretRef works on a cluster only; "
            "for `loopphase run` use urlFile or urlEnv"
        )
