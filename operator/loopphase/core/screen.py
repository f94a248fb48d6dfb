"""Pure classification of an agent's terminal pane: the base of every supervision rule.

The pane is normalised first (ANSI stripped, wrapped lines joined when the width is known,
trailing blank lines dropped), then read in three places:

* the banner region, the last ``banner_region_lines`` non-blank lines: usage-limit banners,
  soft warnings, activity and fatal errors are printed at the bottom, while scrollback holds
  conversation that may quote any of them (REFERENCE.md lesson 4);
* the input area, the last ``input_area_lines`` lines: where typed-but-unsent text sits
  (lesson 2: never look for it in scrollback);
* the whole pane for ``WAITING-UNTIL:`` markers, which the agent prints mid-conversation.

Hard banners are matched by family (core/families.py: who, what, shape, optional reset clause),
anchored to the whole line (only decoration such as "⎿", "●", "│" or quotes around them), so an
agent's prose that mentions a limit is not one. The same holds for the findings a restart
cannot fix (core/findings.py: login, blocking dialog, full context), the CLI's promise to resume
by itself, and throttling that is no usage limit. Every finding carries the rule name and a
short excerpt for logging (lesson 17).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo

from loopphase.core import families, findings
from loopphase.core.patterns import ACTIVE_FLAGS, ACTIVE_PARTS, FATAL_RE, WAIT_RE, fold
from loopphase.core.resettime import ResetHint, parse_reset
from loopphase.outbound import scrub

__all__ = [
    "EXCERPT_MAX",
    "Match",
    "ResetHint",
    "ScreenReading",
    "already_typed",
    "classify",
    "input_area",
    "normalise",
    "typed_in",
]

EXCERPT_MAX = 160
TYPED_PREFIX_CHARS = 28


@dataclass(frozen=True)
class Match:
    rule: str
    excerpt: str


@dataclass(frozen=True)
class ScreenReading:
    active: Match | None
    limit: Match | None
    soft_warning: Match | None
    reset: ResetHint | None
    fatal: Match | None
    waiting_until: datetime | None
    waiting_match: Match | None
    input_area: str
    # The kind of limit ``limit`` names (api.status.LimitClass: session, weekly, monthly, model,
    # spend, unknown); None without a limit. Never "transient": throttling is ``transient``
    # below and never a ``limit``.
    limit_class: str | None = None
    # States a restart cannot fix (NeedsAttention): an expired/invalid login, a blocking dialog
    # (excerpt: the dialog's title), a full context.
    login: Match | None = None
    dialog: Match | None = None
    context_full: Match | None = None
    # The CLI promises to resume by itself ("continuing automatically at 10:41am").
    auto_resume: Match | None = None
    # Throttling the CLI retries or that says it is not a usage limit (529 Overloaded, "not
    # your usage limit"): limit class "transient", never a usage window, so never ``limit``.
    transient: Match | None = None

    def matches(self) -> tuple[Match, ...]:
        """Every finding, for one log line per classification."""
        found = (
            self.active, self.limit, self.soft_warning, self.fatal, self.waiting_match,
            self.login, self.dialog, self.context_full, self.auto_resume, self.transient,
        )
        return tuple(m for m in found if m is not None)


# ── normalisation ────────────────────────────────────────────────────────────────────────────

_ANSI_RE = re.compile(
    r"\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC (titles, hyperlinks)
    r"|\x1b[P^_][^\x1b]*(?:\x1b\\)?"  # DCS / PM / APC strings
    r"|(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"  # CSI (colours, cursor moves)
    r"|\x1b[ -/]*[0-~]"  # two-byte escapes, charset selection
)
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x1b]")


def _strip_line(raw: str) -> str:
    """One line without escapes or controls; after a bare CR the later text overwrote the line."""
    segments = [s for s in raw.split("\r") if s.strip()]
    line = segments[-1] if segments else ""
    return _CONTROL_RE.sub("", line.replace("\t", " "))


def display_width(text: str) -> int:
    """Terminal columns: wide (CJK) characters take two, combining marks none."""
    width = 0
    for char in text:
        if unicodedata.combining(char):
            continue
        width += 2 if unicodedata.east_asian_width(char) in ("W", "F") else 1
    return width


def normalise(pane: str, width: int | None = None) -> list[str]:
    """Logical lines: ANSI stripped, wraps joined, trailing blank lines and spaces dropped.

    With ``width``, a line exactly ``width`` columns wide continues on the next line (tmux
    wraps long banners mid-word on a narrow pane). Without it, lines are taken as they are.
    """
    text = pane.replace("\r\n", "\n")
    if "\x1b" in text or "\x9b" in text:  # plain captures (tmux without -e) have no escapes
        text = _ANSI_RE.sub("", text)
    if "\r" in text or (width is not None and width > 0):
        # overwrites to resolve, or wraps to join (a blank line must count as empty there)
        stripped = [_strip_line(raw) for raw in text.split("\n")]
    else:  # the usual capture: strip the whole text at once
        text = text.replace("\t", " ")
        if not text.replace("\n", "").isprintable():  # controls are never printable
            text = _CONTROL_RE.sub("", text)
        stripped = text.split("\n")
    if width is None or width <= 0:
        lines = [line.rstrip() for line in stripped]
        while lines and not lines[-1]:
            lines.pop()
        return lines
    lines = []
    carry = ""
    for line in stripped:
        if display_width(line) == width:
            carry += line
            continue
        lines.append((carry + line).rstrip())
        carry = ""
    if carry:
        lines.append(carry.rstrip())
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def _region(lines: list[str], size: int) -> list[str]:
    """The last ``size`` non-blank lines, top to bottom."""
    region: list[str] = []
    for line in reversed(lines):
        if len(region) >= max(size, 0):
            break
        if line.strip():
            region.append(line)
    region.reverse()
    return region


def _excerpt(text: str) -> str:
    """One line of screen text for status, Events and logs: whitespace folded, credentials
    masked and display controls shown (``outbound.scrub``: the agent draws whatever it likes,
    and excerpts are the one piece of the pane that leaves the process), then clipped."""
    text = scrub(" ".join(text.split()))
    return text if len(text) <= EXCERPT_MAX else text[: EXCERPT_MAX - 1] + "…"


# ── hard banners ─────────────────────────────────────────────────────────────────────────────

_LEAD = r"^[^\w]*?"  # decoration before a banner: ⎿ ● │ > quotes, spaces
_SEP = families.SEP
_MENU_RE = re.compile(
    _LEAD + r"\d[.)]\s*Stop and wait for (?:the |your )?limit to reset\b.*$", re.IGNORECASE
)


@dataclass(frozen=True)
class _Banner:
    match: Match
    limit_class: str
    tail: str


_may_be_limit = families.may_be_banner  # every banner shape and the limit menu pass it


def _hard_banner(line: str) -> _Banner | None:
    if not _may_be_limit(line):
        return None
    found = families.match_banner(line)
    if found is None:
        return None
    return _Banner(Match(found.rule, _excerpt(line)), found.limit_class, found.tail)


def _limit(
    region: list[str], now: datetime, tz: tzinfo, *, guess_wraps: bool
) -> tuple[Match | None, ResetHint | None, str | None]:
    """The lowest hard-limit line (banner or limit menu), the reset of the lowest banner, and
    the limit's class (the menu's is the banner's above it, else "unknown").

    The menu states no time, so the reset comes from the latest banner proper.
    """
    limit: Match | None = None
    if not _may_be_limit("\n".join(region)):
        return None, None, None
    for index in range(len(region) - 1, -1, -1):
        if not _may_be_limit(region[index]):
            continue
        banner = _hard_banner(region[index])
        if banner is not None:
            following = region[index + 1] if guess_wraps and index + 1 < len(region) else None
            reset = _banner_reset(banner, following, now, tz)
            limit_class = banner.limit_class
            above = _hard_banner(region[index - 1]) if index > 0 else None
            if above is not None and limit_class in ("unknown", above.limit_class):
                # One limit drawn as two lines ("You've hit your 5-hour limit · resets 10:40am"
                # over "Usage limit reached · continuing automatically at 10:41am"): the line
                # right above tells what the lowest one leaves out.
                limit_class = above.limit_class
                if reset is None:
                    reset = _banner_reset(above, None, now, tz)
            if limit_class == "unknown" or (reset is not None and not _ZONED_RE.search(banner.tail)):
                limit_class, reset = _restated(region, index, banner, limit_class, reset, now, tz)
            return limit or banner.match, reset, limit_class
        if limit is None and _MENU_RE.match(region[index]):
            limit = Match("limit.menu", _excerpt(region[index]))
    return limit, None, None if limit is None else "unknown"


_ZONED_RE = re.compile(r"\(\s*[A-Za-z][\w+-]*(?:/[\w+-]+)*\s*\)")
_TIME_TOKEN_RE = re.compile(r"\b\d{1,2}(?::\d\d)?\s*[ap]\.?m\b|\b\d{1,2}:\d\d\b", re.IGNORECASE)


def _time_token(tail: str) -> str | None:
    found = _TIME_TOKEN_RE.search(tail)
    return None if found is None else "".join(found.group(0).lower().replace(".", "").split())


def _restated(
    region: list[str], index: int, banner: _Banner, limit_class: str, reset: ResetHint | None,
    now: datetime, tz: tzinfo,
) -> tuple[str, ResetHint | None]:
    """A generic restatement of a limit drawn above it (Claude Code's bottom box "⚠ Usage limit
    reached · limit resets 2pm" under the transcript's "You've hit your 5-hour limit · resets
    2pm (Europe/Berlin)"): when the nearest banner above with a known class states the same
    time (or the lowest states none), the lowest takes its class, and its zone-named reset."""
    own = _time_token(banner.tail)
    for line in reversed(region[:index]):
        above = _hard_banner(line) if _may_be_limit(line) else None
        if above is None or above.limit_class == "unknown":
            continue
        if own is not None and own != _time_token(above.tail):
            break
        stated = _banner_reset(above, None, now, tz)
        if stated is not None and (reset is None or _ZONED_RE.search(above.tail)):
            reset = stated
        return (above.limit_class if limit_class == "unknown" else limit_class), reset
    return limit_class, reset


def _banner_reset(
    banner: _Banner, following: str | None, now: datetime, tz: tzinfo
) -> ResetHint | None:
    """Parse the banner's reset clause.

    With the pane width unknown, the clause may have wrapped onto the next line ("resets 12" /
    ":50am (America/Los_Angeles)"), so that join is tried first, without and with a space.
    """
    tails = [banner.tail]
    if following is not None and banner.tail and _hard_banner(following) is None:
        rest = following.strip()
        tails = [banner.tail + rest, f"{banner.tail} {rest}", banner.tail]
    for tail in tails:
        reset = parse_reset(tail, now, tz, rule=banner.match.rule, excerpt=banner.match.excerpt)
        if reset is not None:
            return reset
    return None


# ── soft warning, activity, fatal ────────────────────────────────────────────────────────────

# Not anchored: Claude Code may show it right-aligned in the status line, and it never blocks.
# Claude Code 2.1.x also warns "You've used 90% of your weekly limit · resets 9pm" and "You're
# close to your usage limit".
_SOFT_RE = re.compile(
    r"(?:(?P<approaching>Approaching (?:your )?(?:[\w-]+ ){0,2}(?:usage |spend )?limit)"
    r"|(?P<used>You(?:'|’)ve used \d{1,3}% of your (?:[\w'’-]+ ){0,3}limit)"
    r"|(?P<close>You(?:'|’)re close to your (?:[\w'’-]+ ){0,3}limit))"
    r"(?:" + _SEP + r"resets?\b.*)?",
    re.IGNORECASE,
)
_ACTIVE: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (rule, re.compile(part, ACTIVE_FLAGS)) for rule, part in ACTIVE_PARTS
)
# FATAL_RE narrowed: a bare "cannot be modified" only counts on an API error or thinking line,
# so an agent writing "this file cannot be modified" does not get its session restarted cold.
_FATAL: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("fatal.redacted-thinking", re.compile(r"redacted_thinking", re.IGNORECASE)),
    (
        "fatal.thinking-blocks",
        re.compile(r"thinking\W.{0,80}blocks?\b.{0,80}cannot be modified", re.IGNORECASE),
    ),
    ("fatal.api-error", re.compile(r"API Error\b.{0,300}cannot be modified", re.IGNORECASE)),
)


def _lowest(region: list[str], rules: tuple[tuple[str, re.Pattern[str]], ...]) -> Match | None:
    """The first rule matching the lowest line that any rule matches."""
    for line in reversed(region):
        for rule, pattern in rules:
            if pattern.search(line):
                return Match(rule, _excerpt(line))
    return None


# Every activity rule needs one of these in its line (``fold``ed): a substring test per line is
# far cheaper than the rules' regexes, which then run on the few lines that pass.
_ACTIVE_TRIGGERS = ("interrupt", "running tool", "[retrying", "■", "⬝", "·", *"⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")


def _active(region: list[str], text: str) -> Match | None:
    """``_lowest(region, _ACTIVE)``; ``text`` is ``fold``ed region."""
    if not any(trigger in text for trigger in _ACTIVE_TRIGGERS):
        return None
    for line in reversed(region):
        low = fold(line)
        if not any(trigger in low for trigger in _ACTIVE_TRIGGERS):
            continue
        for rule, pattern in _ACTIVE:
            if pattern.search(line):
                return Match(rule, _excerpt(line))
    return None


def _fatal(region: list[str], text: str) -> Match | None:
    if "cannot be modified" not in text and "redacted_thinking" not in text:  # FATAL_RE's words
        return None
    if not FATAL_RE.search("\n".join(region)):
        return None
    candidates = [line for line in region if FATAL_RE.search(line)]
    return _lowest(candidates, _FATAL)


# ── declared waits ───────────────────────────────────────────────────────────────────────────

_TRAILING_PUNCT = ".,;:!?)]}>'\"`"
_WAIT_MARK = "WAITING-UNTIL:"  # WAIT_RE's literal part (case-sensitive, like the pattern)


def parse_wait_timestamp(token: str) -> datetime | None:
    """An ISO-8601 instant as UTC; naive means UTC; None when unparsable or out of range."""
    for candidate in (token, token.rstrip(_TRAILING_PUNCT)):
        try:
            stamp = datetime.fromisoformat(candidate)
            if stamp.tzinfo is None:
                stamp = stamp.replace(tzinfo=UTC)
            return stamp.astimezone(UTC)
        except (ValueError, OverflowError):
            continue
    return None


def _waiting(lines: list[str]) -> tuple[datetime | None, Match | None]:
    """The lowest *valid* marker: an unparsable later marker does not hide an earlier one."""
    for line in reversed(lines):
        if _WAIT_MARK not in line:
            continue
        for found in reversed(list(WAIT_RE.finditer(line))):
            stamp = parse_wait_timestamp(found.group(1))
            if stamp is not None:
                return stamp, Match("waiting.until", _excerpt(found.group(0)))
    return None, None


# ── public API ───────────────────────────────────────────────────────────────────────────────


def classify(
    pane: str,
    now: datetime,
    tz: tzinfo,
    *,
    width: int | None = None,
    banner_region_lines: int = 15,
    input_area_lines: int = 8,
) -> ScreenReading:
    """Read one pane capture. ``tz`` is the zone for banners that name none.

    ``now`` must be tz-aware (raises ValueError otherwise); any pane text is accepted.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("classify needs a tz-aware now")
    lines = normalise(pane, width)
    region = _region(lines, banner_region_lines)
    limit, reset, limit_class = _limit(region, now, tz, guess_wraps=width is None)
    waiting_until, waiting_match = _waiting(lines)
    text = findings.folded(region)
    dialog = None
    if limit is None or limit.rule != "limit.menu":  # the limit menu is the limit's business
        dialog = _dialog(lines, banner_region_lines)
    return ScreenReading(
        active=_active(region, text),
        limit=limit,
        soft_warning=_soft(region, text),
        reset=reset,
        fatal=_fatal(region, text),
        waiting_until=waiting_until,
        waiting_match=waiting_match,
        input_area=_input_area(lines, input_area_lines),
        limit_class=limit_class,
        login=_found(findings.login(region, text)),
        dialog=dialog,
        context_full=_found(findings.context_full(region, text)),
        auto_resume=_found(findings.auto_resume(region, text)),
        # throttling is only told apart when no hard limit is shown ("API Error: Request
        # rejected (429) · You've hit your 5-hour limit" is the limit)
        transient=None if limit is not None else _found(findings.transient(region, text)),
    )


def _found(finding: findings.Finding | None) -> Match | None:
    return None if finding is None else Match(finding.rule, _excerpt(finding.line))


_DIALOG_KEYS = ("enter", "esc", "↑", "←", "⏎", "return", "tab", "space", "ctrl")


def _dialog(lines: list[str], region_size: int) -> Match | None:
    """A blocking dialog at the bottom; the excerpt is its title (findings.dialog)."""
    bottom = _region(lines, findings.DIALOG_LINES)
    tail = findings.folded(bottom[-region_size:]) if region_size > 0 else ""
    if not any(key in tail for key in _DIALOG_KEYS):
        return None
    return _found(findings.dialog(bottom, region_size))


def _soft(region: list[str], text: str) -> Match | None:
    if "limit" not in text or not _SOFT_RE.search("\n".join(region)):  # every form says "limit"
        return None
    for line in reversed(region):
        found = _SOFT_RE.search(line)
        if found:
            return Match(f"soft.{found.lastgroup or 'approaching'}", _excerpt(found.group(0)))
    return None


def _input_area(lines: list[str], size: int) -> str:
    return "\n".join(lines[-size:]) if size > 0 else ""


def input_area(pane: str, lines: int = 8, *, width: int | None = None) -> str:
    """The bottom ``lines`` lines (trailing blank lines ignored): the CLI's input box."""
    return _input_area(normalise(pane, width), lines)


_BOX_RE = re.compile(r"[\u2500-\u257f]")  # box-drawing borders of the input box


def _squash(text: str) -> str:
    return "".join(_BOX_RE.sub(" ", text).split())


def already_typed(pane: str, text: str, lines: int = 8, *, width: int | None = None) -> bool:
    """Whether ``text`` already sits in the input area (its first 28 characters).

    Whitespace and box borders are ignored on both sides, so a prefix wrapped inside the input
    box still counts. Scrollback never counts: a submitted text that scrolled up is not typed.
    """
    return typed_in(input_area(pane, lines, width=width), text)


def typed_in(area: str, text: str) -> bool:
    """``already_typed`` on an input area already cut out (``ScreenReading.input_area``)."""
    prefix = _squash(" ".join(text.split())[:TYPED_PREFIX_CHARS])
    return bool(prefix) and prefix in _squash(area)
