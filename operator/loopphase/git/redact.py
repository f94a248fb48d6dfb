"""Credential redaction: nothing that leaves this package may carry a secret."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

from loopphase.outbound import MASK, QUERY_SECRET_RE, URL_USERINFO_RE, redact_patterns


def _userinfo(url: str) -> str | None:
    """The userinfo part of ``url`` (``user:token``), or None when there is none."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return None
    if "@" not in netloc:
        return None
    return netloc.rsplit("@", 1)[0] or None


def redact_url(url: str) -> str:
    """``https://user:token@host/x`` → ``https://***@host/x``; other URLs unchanged."""
    out = URL_USERINFO_RE.sub(lambda m: f"{m.group('scheme')}{MASK}@", url)
    return QUERY_SECRET_RE.sub(lambda m: f"{m.group('name')}{MASK}", out)


def redact(text: str, url: str | None = None, secrets: Iterable[str] = ()) -> str:
    """Remove credentials from ``text``.

    Strips userinfo from every ``scheme://user:pass@`` URL, masks ``Authorization:`` header
    values and private key blocks, and masks every literal occurrence of the userinfo of ``url`` (raw and
    percent-decoded, and its password part on its own) and of each string in ``secrets``.
    """
    needles: set[str] = {s for s in secrets if s and len(s) >= 4}
    if url:
        info = _userinfo(url)
        if info:
            for variant in (info, unquote(info)):
                if ":" in variant:
                    needles.add(variant)
                    password = variant.partition(":")[2]
                    if len(password) >= 4:
                        needles.add(password)
                elif len(variant) >= 8:
                    needles.add(variant)  # token-as-username (https://TOKEN@host); not "git"
    out = redact_patterns(text)
    for needle in sorted(needles, key=len, reverse=True):
        out = out.replace(needle, MASK)
    return out
