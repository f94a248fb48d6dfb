"""Credential redaction: nothing that leaves this package may carry a secret."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import unquote, urlsplit

MASK = "***"

# scheme://userinfo@host  (userinfo = anything up to the last '@' before the host part)
_URL_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*://)(?P<userinfo>[^/@\s]+)@")
# Authorization / token headers, e.g. "http.extraHeader=Authorization: Basic abc=="
_AUTH_HEADER = re.compile(r"(?i)(authorization:\s*)(?:(basic|bearer|token)\s+)?\S+")
# A private key block (PEM or OpenSSH), whole or cut off after its BEGIN line: ssh never prints
# one, but a Secret pasted into the wrong field (a URL, a header) must not reach a log either.
_PRIVATE_KEY = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----.*?(?:-----END [A-Z0-9 ]*PRIVATE KEY-----|\Z)",
    re.DOTALL,
)


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
    return _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", url)


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
    out = _PRIVATE_KEY.sub(f"-----{MASK} PRIVATE KEY-----", text)
    out = _URL_USERINFO.sub(lambda m: f"{m.group('scheme')}{MASK}@", out)
    out = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{MASK}", out)
    for needle in sorted(needles, key=len, reverse=True):
        out = out.replace(needle, MASK)
    return out
