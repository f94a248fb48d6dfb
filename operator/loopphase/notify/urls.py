"""Webhook URLs for ``loopphase run``: from a file beside the spec or an environment variable.

``local_url_problem`` / ``cluster_url_problem`` say why a webhook's URL source cannot work on
this machine / on a cluster: `loopphase validate` and `run` check them before anything starts,
and delivery raises the same text (``spec.notify.webhooks[i].urlEnv: ...``).
"""

from __future__ import annotations

import os
from pathlib import Path

from loopphase.api.notify import WebhookSpec
from loopphase.notify.deliver import WebhookConfigError

SECRET_FORM = "urlSecretRef: {name: SECRET, key: url} (a Secret labelled loopphase.dev/webhook=true)"


def _read_file(spec_dir: Path, hook: WebhookSpec, field: str) -> tuple[str | None, tuple[str, str] | None]:
    """(URL, None) from ``urlFile``, or (None, (field, message)) when it cannot be had."""
    assert hook.url_file is not None
    path = spec_dir / hook.url_file
    try:
        text = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as err:
        reason = getattr(err, "strerror", None) or str(err)
        return None, (f"{field}.urlFile", f"cannot read {path}: {reason}: write the webhook URL "
                                          "into that file (paths are relative to the spec file)")
    if not text:
        return None, (f"{field}.urlFile", f"{path} is empty: write the webhook URL into it")
    return text, None


def local_url_problem(hook: WebhookSpec, field: str, spec_dir: Path) -> tuple[str, str] | None:
    """(field path, message with the fix) when ``hook``'s URL cannot be had by `loopphase run`
    on this machine now, else None. ``field``: e.g. ``spec.notify.webhooks[1]``."""
    if hook.url_file is not None:
        return _read_file(spec_dir, hook, field)[1]
    if hook.url_env is not None:
        if os.environ.get(hook.url_env):
            return None
        return (f"{field}.urlEnv", f"${hook.url_env} is not set: export {hook.url_env}=URL in the "
                                   "shell that runs `loopphase run`")
    return (f"{field}.urlSecretRef", "a Secret exists only on a cluster; for `loopphase run` use "
                                     "urlFile (a file holding the URL) or urlEnv (a variable)")


def cluster_url_problem(hook: WebhookSpec, field: str) -> tuple[str, str] | None:
    """(field path, message) when ``hook``'s URL source cannot work for the operator, else None."""
    if hook.url_secret_ref is not None:
        return None
    which = "urlFile" if hook.url_file is not None else "urlEnv"
    return (f"{field}.{which}", f"works with `loopphase run` only: the operator reads neither "
                                f"files nor its environment for URLs; on a cluster use {SECRET_FORM}")


class LocalUrls:
    """``resolve(webhook, field) -> url``; WebhookConfigError naming the field and the fix."""

    def __init__(self, spec_dir: Path) -> None:
        self.spec_dir = spec_dir

    async def resolve(self, hook: WebhookSpec, field: str) -> str:
        if hook.url_file is not None:
            url, problem = _read_file(self.spec_dir, hook, field)
            if url is not None:
                return url
        elif hook.url_env is not None and os.environ.get(hook.url_env):
            return os.environ[hook.url_env]
        else:
            problem = local_url_problem(hook, field, self.spec_dir)
        assert problem is not None
        raise WebhookConfigError(f"{problem[0]}: {problem[1]}")
