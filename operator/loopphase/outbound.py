"""One path for every text that leaves the process: credentials masked, terminal controls shown.

Texts that reach logs, status, the action log, Kubernetes Events and ``loopphase status`` carry
words other people wrote: git's error output (which quotes the remote URL, credentials
included), commit subjects (any bytes an agent chose, escape sequences included), shim and API
errors. ``scrub`` is applied where such text enters (the controller tick's observations and
action results) and again where it leaves (the logging filter, Event messages), so a path
nobody thought of is still covered by the last one.

Pure functions; no state. Secret values known only at run time (a Secret's password) are
masked by ``loopphase.git.redact.redact`` on top of this.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import urlsplit

MASK = "***"

# scheme://userinfo@host: userinfo runs to the LAST '@' before the path, so a password with an
# '@' in it ("p@ss") is masked whole, not cut at its first '@'.
# The scheme starts where no scheme character precedes it and is at most 32 characters: an
# unanchored "[A-Za-z][A-Za-z0-9+.-]*://" retried the whole run from every letter of a long
# word (quadratic: 40 KB of "a" took 3 s, a 1 MB commit subject would stall a tick for ages).
URL_USERINFO_RE = re.compile(
    r"(?P<scheme>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,31}://)(?P<userinfo>[^/?#\s]*)@"
)
# The same URL percent-encoded, as it appears when passed inside another URL's query
# ("?redirect=https%3A%2F%2Fu%3Apass%40host%2F…"): the userinfo runs to the last "%40" before an
# encoded or plain "/", so "p%40ss" is masked whole.
ENCODED_URL_USERINFO_RE = re.compile(
    r"(?i)(?P<scheme>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]{0,31}%3A%2F%2F)"
    r"(?P<userinfo>(?:(?!%2F)[^/?#&\s]){0,512})%40"
)
# scp-like git remotes with a password ("user:pass@host:path", what git prints back when such a
# remote was configured): the part between the first ":" and the last "@" before the host.
SCP_PASSWORD_RE = re.compile(
    r"(?P<user>(?<![A-Za-z0-9_.+\-:/@])[A-Za-z0-9_.+\-]{1,64}:)(?P<password>[^\s/:]{1,256})"
    r"@(?P<host>[A-Za-z0-9][A-Za-z0-9.\-]{0,253}:)"
)
# Token-like query (and fragment) parameters: any name containing a credential word
# (?access_token=…, &private-token=…, &X-Amz-Security-Token=…, #access_token=… of an OAuth
# redirect, ?jwt=…, ?key=…, &sig=…). Masking a harmless "?author=" is the cheaper mistake.
QUERY_SECRET_RE = re.compile(
    r"(?P<name>[?&;#][A-Za-z0-9_.\-]{0,64}?(?:token|auth|key|password|passwd|pwd|secret|sig|"
    r"credential|session|jwt|code)[A-Za-z0-9_.\-]{0,64}=)[^&#\s\"'<>]+",
    re.IGNORECASE,
)
# The same inside a percent-encoded URL: "%3Faccess_token%3D…" up to the next encoded "&"/"#".
ENCODED_QUERY_SECRET_RE = re.compile(
    r"(?P<name>%(?:3F|26|23|3B)[A-Za-z0-9_.\-]{0,64}?(?:token|auth|key|password|passwd|pwd|"
    r"secret|sig|credential|session|jwt|code)[A-Za-z0-9_.\-]{0,64}%3D)"
    r"(?:(?!%(?:26|23|3B))[^&#\s\"'<>]){1,2048}",
    re.IGNORECASE,
)
# Authorization and token headers, e.g. "http.extraHeader=Authorization: Basic abc==",
# GitLab's "PRIVATE-TOKEN: glpat-…", "X-Api-Key: …".
AUTH_HEADER_RE = re.compile(
    r"(?i)((?:authorization|private-token|job-token|deploy-token|x-api-key|api-key|"
    r"x-auth-token|x-goog-api-key|cookie):\s*)(?:(basic|bearer|token)\s+)?\S+"
)
# Well-known token shapes on their own (GitHub, GitLab, Anthropic/OpenAI-style, Slack).
TOKEN_SHAPE_RE = re.compile(
    r"\b(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_\-]{20,}|"
    r"sk-(?:ant-)?[A-Za-z0-9_\-]{20,}|xox[abposr]-[A-Za-z0-9\-]{10,})"
)
# A private key block (PEM or OpenSSH), whole or cut off after its BEGIN line.
PRIVATE_KEY_RE = re.compile(
    r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
    r"(?:-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)",
    re.DOTALL,
)
# C0 controls except TAB and LF, DEL, and C1 controls: a terminal acts on them (erases lines,
# moves the cursor, writes the clipboard through OSC 52) instead of showing them.
# Bidirectional overrides/isolates and the line/paragraph separators are shown too: they make
# "loopphase status" and kubectl show text in another order or on another line than it is.
CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u2028-\u202e\u2066-\u2069]")


def redact_patterns(text: str) -> str:
    """Mask credentials recognisable by their shape (URL userinfo, plain, percent-encoded or in
    an scp-like ``user:pass@host:path`` remote; token query parameters, plain or encoded;
    Authorization and token headers, private key blocks, well-known token prefixes)."""
    out = PRIVATE_KEY_RE.sub(f"-----{MASK} PRIVATE KEY-----", text)
    out = URL_USERINFO_RE.sub(lambda m: f"{m.group('scheme')}{MASK}@", out)
    out = ENCODED_URL_USERINFO_RE.sub(lambda m: f"{m.group('scheme')}{MASK}%40", out)
    out = SCP_PASSWORD_RE.sub(lambda m: f"{m.group('user')}{MASK}@{m.group('host')}", out)
    out = TOKEN_SHAPE_RE.sub(MASK, out)
    out = QUERY_SECRET_RE.sub(lambda m: f"{m.group('name')}{MASK}", out)
    out = ENCODED_QUERY_SECRET_RE.sub(lambda m: f"{m.group('name')}{MASK}", out)
    return AUTH_HEADER_RE.sub(lambda m: f"{m.group(1)}{MASK}", out)


def show_controls(text: str) -> str:
    """Control characters as visible ``\\xNN`` text (ESC becomes ``\\x1b``), bidi and line
    separator characters as ``\\uNNNN``."""
    return CONTROL_RE.sub(_shown, text)


def _shown(match: re.Match[str]) -> str:
    code = ord(match.group(0))
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def scrub(text: str) -> str:
    """``text`` safe to log, store in status or show on a terminal."""
    if not text:
        return text
    return show_controls(redact_patterns(text))


def scrub_optional(text: str | None) -> str | None:
    return None if text is None else scrub(text)


def url_credentials(url: str) -> list[str]:
    """What in a repository URL looks like a credential (for a validation warning)."""
    found: list[str] = []
    if "://" not in url and SCP_PASSWORD_RE.search(url):
        return ["a password in the URL's user part"]
    try:
        parts = urlsplit(url)
    except ValueError:
        return found
    if parts.password is not None:
        found.append("a password in the URL's user part")
    elif parts.username and parts.username not in {"git", "ssh"} and len(parts.username) >= 20:
        found.append("a token as the URL's user name")
    if QUERY_SECRET_RE.search("?" + parts.query if parts.query else ""):
        found.append("a token in the URL's query string")
    if QUERY_SECRET_RE.search("#" + parts.fragment if parts.fragment else ""):
        found.append("a token in the URL's fragment")
    return found


class ScrubFilter(logging.Filter):
    """Scrubs every log record's final message (installed on the root handlers by the CLI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        clean = scrub(message)
        if clean != message:
            record.msg, record.args = clean, None
        return True


def install_log_scrubbing() -> None:
    """Attach ``ScrubFilter`` to every handler of the root logger (call after basicConfig)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, ScrubFilter) for f in handler.filters):
            handler.addFilter(ScrubFilter())
