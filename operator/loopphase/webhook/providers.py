"""Which git host sent a request, how it authenticates, and what a push payload names.

Providers, in detection order (Gitea and Forgejo also send GitHub's headers, so they come first):

- Forgejo: ``X-Forgejo-Event``; ``X-Forgejo-Signature`` (hex HMAC-SHA256 of the raw body),
  ``X-Gitea-Signature`` or ``X-Hub-Signature-256``; delivery id ``X-Forgejo-Delivery``.
- Gitea: ``X-Gitea-Event``; ``X-Gitea-Signature`` (hex) or ``X-Hub-Signature-256``;
  delivery id ``X-Gitea-Delivery``.
- GitLab: ``X-Gitlab-Event: Push Hook``; ``X-Gitlab-Token`` is the secret itself (GitLab does
  not sign); delivery id ``Idempotency-Key`` (GitLab 17.4+) or ``X-Gitlab-Event-UUID``.
- GitHub (and ``loopphase hook install``'s post-receive hook): ``X-GitHub-Event``;
  ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body>``; ``X-GitHub-Delivery``.

Every comparison is ``hmac.compare_digest`` over the exact bytes received, before the body is
parsed.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

ProviderName = Literal["github", "gitlab", "gitea", "forgejo"]


def sign_github(secret: bytes, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def _hex_hmac(secret: bytes, body: bytes) -> str:
    return hmac.new(secret, body, hashlib.sha256).hexdigest()


def _get(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value.strip() if value else None


@dataclass(frozen=True)
class Provider:
    """How one kind of git host labels, authenticates and identifies its deliveries."""

    name: ProviderName
    event_header: str
    delivery_headers: tuple[str, ...]

    def event(self, headers: Mapping[str, str]) -> str:
        return _get(headers, self.event_header) or ""

    def is_push(self, headers: Mapping[str, str]) -> bool:
        event = self.event(headers).lower()
        return event in {"push", "push hook"}

    def is_ping(self, headers: Mapping[str, str]) -> bool:
        return self.event(headers).lower() == "ping"

    def delivery(self, headers: Mapping[str, str]) -> str | None:
        for header in self.delivery_headers:
            value = _get(headers, header)
            if value:
                return value[:200]
        return None

    def credential(self, headers: Mapping[str, str]) -> str | None:
        """The signature or token the request carries (None: unauthenticated)."""
        if self.name == "gitlab":
            return _get(headers, "X-Gitlab-Token")
        if self.name == "github":
            return _get(headers, "X-Hub-Signature-256")
        own = "X-Forgejo-Signature" if self.name == "forgejo" else "X-Gitea-Signature"
        for header in (own, "X-Gitea-Signature", "X-Hub-Signature-256"):
            value = _get(headers, header)
            if value:
                return value
        return None

    def verify(self, credential: str, body: bytes, secret: bytes) -> bool:
        """Constant-time check of ``credential`` against ``secret`` (and the raw ``body``)."""
        given = credential.encode("utf-8", "replace")
        if self.name == "gitlab":
            return hmac.compare_digest(given, secret)
        expected = _hex_hmac(secret, body).encode()
        if given.startswith(b"sha256="):
            given = given[len(b"sha256="):]
        return hmac.compare_digest(given.lower(), expected)


PROVIDERS: tuple[Provider, ...] = (
    Provider("forgejo", "X-Forgejo-Event", ("X-Forgejo-Delivery", "X-Gitea-Delivery")),
    Provider("gitea", "X-Gitea-Event", ("X-Gitea-Delivery",)),
    Provider("gitlab", "X-Gitlab-Event", ("Idempotency-Key", "X-Gitlab-Event-UUID")),
    Provider("github", "X-GitHub-Event", ("X-GitHub-Delivery",)),
)


def detect(headers: Mapping[str, str]) -> Provider | None:
    """The provider whose event header the request carries (None: not a known webhook)."""
    for provider in PROVIDERS:
        if _get(headers, provider.event_header):
            return provider
    return None


@dataclass(frozen=True)
class PushEvent:
    """What a verified push payload *claims*: which repository (every URL it names) and which
    branch moved, to which sha. Used only to decide whom to wake; never as content."""

    urls: tuple[str, ...]
    branch: str | None  # None: not a branch (a tag, a note ref)
    after: str | None
    deleted: bool = False


_URL_FIELDS = ("clone_url", "ssh_url", "git_url", "html_url", "url", "git_http_url",
               "git_ssh_url", "http_url", "web_url", "homepage", "svn_url")


def push_event(payload: Any) -> PushEvent:
    """Read a GitHub/GitLab/Gitea/Forgejo push payload; raises ValueError naming the field."""
    if not isinstance(payload, dict):
        raise ValueError("push payload must be a JSON object")
    ref = payload.get("ref")
    if not isinstance(ref, str) or not ref:
        raise ValueError("push payload has no 'ref'")
    urls: list[str] = []
    for section in ("repository", "project"):
        block = payload.get(section)
        if isinstance(block, dict):
            for name in _URL_FIELDS:
                value = block.get(name)
                if isinstance(value, str) and value and value not in urls:
                    urls.append(value)
    if not urls:
        raise ValueError("push payload names no repository URL (repository.clone_url, "
                         "project.git_http_url, ...)")
    after = payload.get("after") or payload.get("checkout_sha")
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    zero = isinstance(after, str) and set(after) == {"0"}
    return PushEvent(urls=tuple(urls), branch=branch,
                     after=after if isinstance(after, str) and not zero else None,
                     deleted=bool(payload.get("deleted")) or zero)
