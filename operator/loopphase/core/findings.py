"""Screens a restart cannot fix, and the CLI's own promises: pure readers of the banner region.

* login: the CLI's credentials are missing, invalid, expired or revoked. Claude Code draws
  "Invalid API key · Please run /login", "Not logged in · Please run /login", "OAuth token
  revoked · Please run /login", or the API's 401 as "API Error: 401 {…"authentication_error"…
  "OAuth token has expired…"} · Please run /login"; opencode draws "Unauthorized: …" or the
  name of its ProviderAuthError / LoadAPIKeyError.
* dialog: a blocking selection dialog: a selection marker on an option ("❯ 1. No, exit") with
  a key-hint line below it ("Enter to confirm · Esc to cancel"). The excerpt is the dialog's
  title (the first line under the dialog's top rule, else the question above the options).
* context_full: the conversation no longer fits: "Prompt is too long", "Context limit reached ·
  /compact or /clear to continue", opencode's "Input exceeds context window of this model".
* auto_resume: the CLI promises to resend the turn itself: "Usage limit reached · continuing
  automatically at 10:41am · esc to cancel", then "Continuing shortly", then "Usage limit
  reset · Continuing automatically".
* transient: throttling the CLI retries, or that says it is not a usage limit: "Repeated 529
  Overloaded errors", "Server is temporarily limiting requests (not your usage limit)", "We are
  experiencing high demand for Opus 4.", opencode's "Provider is overloaded" / "Too Many
  Requests". Never a usage window.

``text`` is ``folded(region)`` when the caller has it already (one fold per pane).

Every rule is anchored at the start of a line (only decoration such as "⎿", "●", "│" before it,
as for the hard banners in core/screen.py), so conversation that mentions these words
mid-sentence is none of them. The shapes come from the CLIs' own message strings (Claude Code
2.1.x, opencode 1.x). Pure: regexes over lines already normalised by core/screen.py.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from loopphase.core.patterns import fold

__all__ = [
    "Finding",
    "auto_resume",
    "context_full",
    "dialog",
    "login",
    "transient",
]

LEAD = r"^[^\w\n]*?"  # decoration before a banner: ⎿ ● │ > quotes, spaces
SEP = r"\s*[∙·•|–—-]\s*"
# How far above the key hints a dialog's options and title may sit (non-blank lines).
DIALOG_LINES = 30
# How far above its options a dialog's title may sit (non-blank lines).
TITLE_LINES = 14


@dataclass(frozen=True)
class Finding:
    """A rule that matched one line; ``line`` is that line as shown (the caller cuts it)."""

    rule: str
    line: str


def folded(region: Sequence[str]) -> str:
    """The region as one ``fold``ed text, for substring pre-filters."""
    return fold("\n".join(region))


def _rules(*pairs: tuple[str, str]) -> tuple[tuple[str, re.Pattern[str]], ...]:
    return tuple((rule, re.compile(LEAD + body, re.IGNORECASE)) for rule, body in pairs)


def _lowest(region: Sequence[str], rules: tuple[tuple[str, re.Pattern[str]], ...]) -> Finding | None:
    """The first rule matching the lowest line any rule matches."""
    for line in reversed(region):
        for rule, pattern in rules:
            if pattern.match(line):
                return Finding(rule, line)
    return None


# ── login ────────────────────────────────────────────────────────────────────────────────────

# Every login rule contains one of these (in ``fold``ed text).
_LOGIN_WORDS = ("login", "api key", "apikey", "api_key", "api-key", "oauth", "401", "auth", "logged", "bearer", "disabled")
_RUN_LOGIN = r"(?:please\s+)?run\s+/login"
_LOGIN = _rules(
    ("login.not-logged-in", rf"Not logged in(?:{SEP}.*/login\b.*)?[^\w]*$"),
    # Claude Code's status line, right-aligned after the footer: "…  Not logged in · Run /login".
    ("login.status-line", rf".*?\s{{3,}}Not logged in{SEP}(?:please\s+)?run\s+/login[^\w]*$"),
    ("login.invalid-api-key", rf"(?:Invalid|Missing) API key\b(?:{SEP}.*)?[^\w]*$"),
    (
        "login.oauth-token",
        rf"OAuth token (?:has\s+)?(?:expired|been revoked|revoked)\b(?:[.!]|{SEP}|[^\w]*$)",
    ),
    (
        "login.api-error-401",
        rf"(?:{_RUN_LOGIN}{SEP})?API Error:?\s*(?:401\b|.{{0,300}}\bauthentication_error\b)",
    ),
    ("login.session-expired", rf"(?:Your\s+)?session (?:has\s+)?expired\W+{_RUN_LOGIN}"),
    (
        "login.org-disabled",
        r"Your (?:ANTHROPIC_API_KEY belongs to a disabled organization"
        r"|organization has disabled (?:API key authentication|Claude subscription access))",
    ),
    ("login.invalid-credentials", r"(?:\w*Error:?\s*)?Invalid (?:authentication|bearer) (?:credentials|token)\b"),
    # opencode: the provider's 401 ("Unauthorized: invalid x-api-key") or its auth error types.
    ("login.unauthorized", r"(?:\w*Error:?\s*)?(?:401\s+)?Unauthorized\b\s*(?::|$|" + SEP + ")"),
    ("login.provider-auth", r"(?:\w*Error:?\s*)?(?:AI_)?(?:ProviderAuthError|LoadAPIKeyError)\b"),
    # opencode shows the provider's own message in its error box: "┃  invalid x-api-key".
    (
        "login.provider-key",
        r"(?:\w*Error:?\s*)?(?:invalid x-api-key|incorrect api key provided|invalid_api_key"
        r"|api key (?:is )?(?:missing|invalid|not valid))\b",
    ),
)


def login(region: Sequence[str], text: str | None = None) -> Finding | None:
    """The lowest line saying the CLI's credentials are missing, invalid, expired or revoked."""
    text = folded(region) if text is None else text
    if not any(word in text for word in _LOGIN_WORDS):
        return None
    return _lowest(region, _LOGIN)


# ── context full ─────────────────────────────────────────────────────────────────────────────

_CONTEXT = _rules(
    ("context.prompt-too-long", r"(?:API Error\b.{0,300}?)?prompt is too long\b"),
    ("context.limit-reached", r"Context (?:window |limit )(?:reached|exceeded|is full)\b"),
    (
        "context.window-exceeded",
        r"(?:\w*Error:?\s*)?(?:Input exceeds (?:the )?context window\b|.{0,200}\bcontext_length_exceeded\b)",
    ),
)


def context_full(region: Sequence[str], text: str | None = None) -> Finding | None:
    """The lowest line saying the conversation no longer fits the model's context."""
    text = folded(region) if text is None else text
    if "context" not in text and "too long" not in text:
        return None
    return _lowest(region, _CONTEXT)


# ── the CLI's own automatic resume ───────────────────────────────────────────────────────────

_USAGE_PREFIX = rf"(?:(?:Claude\s+)?usage limit (?:reached|reset)\b[.!]?{SEP}|(?:Usage limit reset)\s*[.!]?\s*)?"
_RESUME = _rules(
    ("resume.continuing-at", _USAGE_PREFIX + r"continuing automatically\s+(?:at|after)\b"),
    ("resume.continuing-shortly", _USAGE_PREFIX + r"continuing shortly\b"),
    ("resume.continuing", _USAGE_PREFIX + r"continuing automatically\b"),
)


def auto_resume(region: Sequence[str], text: str | None = None) -> Finding | None:
    """The lowest line promising that the CLI resends the interrupted turn by itself."""
    if "continuing" not in (folded(region) if text is None else text):
        return None
    return _lowest(region, _RESUME)


# ── transient throttling ─────────────────────────────────────────────────────────────────────

_TRANSIENT = _rules(
    (
        "transient.overloaded",
        r"API Error\b.{0,200}?\bOverloaded\b|(?:\w*Error:?\s*)?Overloaded(?: error)?[^\w]*$"
        r"|\{.{0,80}\"overloaded_error\"",
    ),
    (
        "transient.not-usage-limit",
        r"API Error\b.{0,120}\(not your usage limit\)|Server is temporarily limiting requests\b",
    ),
    ("transient.high-demand", r"We are experiencing high demand\b|\w+ is experiencing high load\b"),
    ("transient.provider-overloaded", r"(?:\w*Error:?\s*)?Provider is overloaded\b"),
    # Claude Code's spinner line while it retries: "✻ API error · Retrying in 4s · attempt 4/10".
    ("transient.retrying", r"API error\b.{0,200}?\bRetrying in\b"),
    ("transient.too-many-requests", r"(?:\w*Error:?\s*)?(?:429\s+)?Too Many Requests\b"),
    (
        "transient.rate-limited",
        r"(?:API Error:?\s*)?Request rejected \(429\)|(?:API Error:?\s*)?(?:429\s+)?\{?.{0,80}"
        r"\brate_limit_error\b",
    ),
)


# Every transient rule contains one of these (in ``fold``ed text).
_TRANSIENT_WORDS = (
    "overload", "not your usage", "temporarily limiting", "high ", "too many", "retrying", "429",
    "rate_limit",
)


def transient(region: Sequence[str], text: str | None = None) -> Finding | None:
    """The lowest line of throttling the CLI retries or that is not a usage limit."""
    text = folded(region) if text is None else text
    if not any(w in text for w in _TRANSIENT_WORDS):
        return None
    return _lowest(region, _TRANSIENT)


# ── blocking dialogs ─────────────────────────────────────────────────────────────────────────

_KEY = r"(?:press\s+)?(?:enter|esc(?:ape)?|return|tab|space|⏎|↑\s*/?\s*↓|←\s*/?\s*→|ctrl\s*\+\s*\w)(?!\w)"
_HINT_PART = rf"{_KEY}[^·∙•\n]*"
_HINT_RE = re.compile(rf"^[^\w↑←⏎\n]*{_HINT_PART}(?:[·∙•]\s*{_HINT_PART})*$", re.IGNORECASE)
_HINT_VERB_RE = re.compile(
    r"\b(?:confirm|cancel|select|exit|go back|navigate|accept|continue|choose|decline)\b", re.I
)
# A selection marker on an option: "❯ 1. No, exit", "› Yes", "> 2. Upgrade" ("> " alone is the
# input prompt, so the ASCII marker needs an option number).
_MARKER_RE = re.compile(
    r"^[\s│┃|]*(?:[❯›▶►➤]\s*(?:\d{1,2}[.)]\s*)?|>\s*\d{1,2}[.)]\s*)(?P<label>\w.*)$"
)
_OPTION_RE = re.compile(r"^[\s│┃|]*(?:[❯›▶►➤>]\s*)?\d{1,2}[.)]\s+\w")
_RULE_LINE_RE = re.compile(r"^\s*[╭┌╒╓]?[─━═╌┄┈]{3,}")
_BORDER_RE = re.compile(r"^[\s│┃|╭╮╰╯┌┐└┘─━═]+|[\s│┃|╭╮╰╯┌┐└┘─━═]+$")
_KINDS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (rule, re.compile(pattern, re.IGNORECASE))
    for rule, pattern in (
        ("dialog.bypass-permissions", r"Bypass Permissions"),
        ("dialog.mcp-server", r"\bMCP server"),
        ("dialog.folder-trust", r"\btrust (?:this|the) (?:folder|files|project|workspace)"),
        ("dialog.login-method", r"\blogin method\b|\bsign in\b|\blog in\b"),
        ("dialog.theme", r"\btext style\b|\btheme\b"),
    )
)


def _is_hint(line: str) -> bool:
    return bool(_HINT_RE.match(line)) and bool(_HINT_VERB_RE.search(line))


def _clean(line: str) -> str:
    return _BORDER_RE.sub("", line).strip()


def dialog(lines: Sequence[str], region_size: int) -> Finding | None:
    """A blocking selection dialog at the bottom: ``Finding(rule, title)``.

    ``lines`` are the pane's non-blank lines (top to bottom). The key hints must be among the
    bottom ``region_size`` of them, the selected option above the hints; the title is looked
    for up to DIALOG_LINES above.
    """
    window = list(lines[-DIALOG_LINES:])
    bottom = max(len(window) - max(region_size, 0), 0)
    hint = next((i for i in range(len(window) - 1, bottom - 1, -1) if _is_hint(window[i])), None)
    if hint is None:
        return None
    marker = next((i for i in range(hint - 1, bottom - 1, -1) if _MARKER_RE.match(window[i])), None)
    if marker is None:
        return None
    first_option = marker
    while first_option > 0 and _OPTION_RE.match(window[first_option - 1]):
        first_option -= 1
    block_start = max(first_option - TITLE_LINES, 0)
    block = "\n".join(window[block_start : hint + 1])
    kind = next(((rule, pattern) for rule, pattern in _KINDS if pattern.search(block)), None)
    title = _title(window[block_start:first_option], kind[1] if kind else None)
    return Finding(kind[0] if kind else "dialog.selection", title or _clean(window[marker]))


def _title(above: list[str], kind: re.Pattern[str] | None) -> str:
    """The dialog's title among the lines ``above`` its options (top to bottom).

    The line under the dialog's top rule; without a rule, the topmost line naming the dialog's
    kind, else the nearest question ("Do you want to proceed?"), else the nearest line.
    """
    for index in range(len(above) - 1, -1, -1):
        if _RULE_LINE_RE.match(above[index]):
            inline = _clean(above[index])
            below = [_clean(x) for x in above[index + 1 :] if _clean(x)]
            return inline or (below[0] if below else "")
    texts = [_clean(x) for x in above if _clean(x)]
    if kind is not None:
        named = next((text for text in texts if kind.search(text)), None)
        if named:
            return named
    question = next((text for text in reversed(texts) if text.endswith(("?", ":"))), None)
    return question or (texts[-1] if texts else "")
