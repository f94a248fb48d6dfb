"""Hard usage-limit banners recognised by family, and the kind of limit each names.

A banner is read by its family, not its sentence (the CLIs keep inventing new sentences):

* who: you, your, your org/organization/team/workspace/group/account (any possessive:
  "your team's", "your org’s", "your workspace's");
* what: the words before "limit": a period (session, 5-hour, daily, weekly, 7-day, monthly), a
  model (Opus, Sonnet, Haiku, Fable 5, "Claude Opus 4"), spend, credit, extra usage, usage;
* shape: "You've hit|reached|exceeded|used up your … limit", "… limit reached|hit|exceeded",
  "You're|Your org is out of extra usage|usage credits|credits|usage", "credit balance (is)
  too low", "usage limit is set to $0", "quota exceeded";
* an optional tail after a separator (· ∙ • | – —) or a full stop: "resets 9pm
  (Asia/Singapore)", "Your limit will reset at 9am", "It will reset in 3 hours", "|1760004000".

Every shape is anchored to the whole line (only decoration such as "⎿", "●", "│" or quotes
before it) and needs a separator or a full stop before any tail, so an agent's prose that
mentions a limit mid-sentence is not a banner. "Context limit reached", "nesting limit
reached" and other limits that are not usage are never one: the words before "limit" must
be usage words.

The class (api.status.LimitClass) follows the words: spend words (spend, credit, balance,
extra usage, quota, $0) → spend; a model name → model; monthly → monthly; weekly → weekly;
session/5-hour/daily/"Claude usage" → session; anything else ("your limit", "usage limit")
→ unknown. Pure data and pure functions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import get_args

from loopphase.api.status import LimitClass
from loopphase.core.patterns import fold

__all__ = [
    "LIMIT_CLASSES",
    "BannerMatch",
    "class_of_words",
    "match_banner",
    "may_be_banner",
]

LIMIT_CLASSES: tuple[str, ...] = get_args(LimitClass)

LEAD = r"^[^\w\n]*?"  # decoration before a banner: ⎿ ● │ > quotes, spaces
SEP = r"\s*[∙·•|–—-]\s*"
# Claude Code under an API key prefixes the banner with the API error it came with:
# "API Error: Request rejected (429) · You've hit your 5-hour limit. Please try again later."
_API_PREFIX = rf"(?:API Error:?\s*(?:Request rejected\s*)?\(?\d{{3}}\)?{SEP})?"
END = r"[^\w]*$"  # decoration after it: full stop, closing quote, box border
APOS = r"['’‘ʼ`´]"
# Possessive who-words after "your": "your team's weekly", "your org’s monthly".
_WHO = (
    rf"(?:(?:org|organi[sz]ation|team|workspace|group|account|enterprise|company|plan)"
    rf"(?:{APOS}s|s{APOS}|{APOS})?\s+)"
)
_MODEL = r"(?:claude\s+)?(?:opus|sonnet|haiku|fable)(?:\s+\d+(?:\.\d+)?)?"
_PERIOD = r"(?:5-hour|five-hour|5h|session|daily|weekly|7-day|seven-day|monthly|30-day)"
# Words that may stand before "limit" in a usage banner (0-3 of them).
_WORD = rf"(?:{_MODEL}|{_PERIOD}|spend(?:ing)?|credits?|extra\s+usage|usage|free|plan)"
_WHAT = rf"(?:{_WORD}\s+){{0,3}}"
# What may follow a banner: after a separator anything (the reset clause, "/upgrade ..."); after
# a full stop or plain space only the CLIs' own continuations.
_CONTINUATION = (
    r"(?:resets?|your limit|it will reset|run\b|please|add funds|contact|raise|ask\b|switch|"
    r"upgrade|to continue|try again|continuing|until|buy|purchase|go to|visit|wait|/)"
)
_TAIL = rf"(?P<tail>{SEP}.*|\s*[.!:;,]?\s*\|\s*\d{{9,10}}.*|\s*[.!:;,]?\s+{_CONTINUATION}.*)?"


@dataclass(frozen=True)
class BannerMatch:
    """One hard-limit banner line: rule (``limit.<shape>-<class>``), class, the text after it."""

    rule: str
    limit_class: LimitClass
    tail: str


# (shape, pattern, class when the words name none). A shape whose words always name the same
# class gives the rule "limit.<shape>", the others "limit.<shape>-<class>". First match wins.
_SHAPES: tuple[tuple[str, re.Pattern[str], LimitClass], ...] = tuple(
    (shape, re.compile(LEAD + _API_PREFIX + body + END, re.IGNORECASE), fallback)
    for shape, body, fallback in (
        # Claude Code's headless form: "Claude AI usage limit reached|1760004000".
        ("claude-epoch", r"(?P<what>Claude (?:AI )?usage )limit reached\s*(?P<tail>\|\s*\d{9,10})", "session"),
        (
            "hit",
            rf"You(?:{APOS}ve|\s+have)\s+(?:hit|reached|exceeded|used\s+up|exhausted|run\s+out\s+of)\s+"
            rf"your\s+{_WHO}?(?P<what>{_WHAT})limit(?:\s+for\s+(?P<model>{_MODEL}))?" + _TAIL,
            "unknown",
        ),
        (
            "reached",
            rf"(?:(?:your|the)\s+{_WHO}?|{_WHO})?(?P<what>(?:claude\s+(?:ai\s+)?)?(?:{_WORD}\s+){{1,3}})"
            rf"limit\s+(?:reached|hit|exceeded|exhausted)\b" + _TAIL,
            "unknown",
        ),
        (
            "out-of",
            rf"(?:You(?:{APOS}re|\s+are)|(?:your\s+)?(?:org|organi[sz]ation|team|workspace|group|account)"
            rf"\s+is)\s+(?:now\s+)?out of\s+(?P<what>extra\s+usage|(?:usage\s+)?credits|usage|tokens|quota|funds)\b"
            + _TAIL,
            "spend",  # out of usage / funds: there is nothing to wait for
        ),
        (
            "credit",
            r"(?:API Error\b.{0,300}?)?(?P<what>(?:your\s+)?credit balance)\s+(?:is\s+)?too low\b.*",
            "spend",
        ),
        ("insufficient", r"(?:\w*Error:?\s*)?Insufficient (?P<what>credits|balance|funds|quota)\b.*", "spend"),
        (
            "quota",
            r"(?:\w*Error:?\s*)?(?:You exceeded your current (?P<what>quota)|(?P<what2>Quota) exceeded)\b.*",
            "spend",
        ),
        (
            "zero",
            rf"Your\s+{_WHO}?(?:(?P<what>usage limit) is set to \$0|usage allocation has been disabled)\b.*",
            "spend",
        ),
    )
)

_FIXED = frozenset({"claude-epoch", "credit", "insufficient", "quota", "zero"})
_SPEND_RE = re.compile(r"spend|credit|balance|extra\s+usage|quota|funds|\$0|free|allocation", re.I)
_MODEL_RE = re.compile(rf"\b{_MODEL}\b", re.I)
_MONTH_RE = re.compile(r"month|30-day", re.I)
_WEEK_RE = re.compile(r"week|7-day|seven-day", re.I)
_SESSION_RE = re.compile(r"session|5-hour|five-hour|\b5h\b|daily|claude", re.I)

# Every shape and the limit menu contain one of these words (in ``fold``ed text).
_KEYWORD_RE = re.compile(r"limit|out of|credit|quota|insufficient|allocation")


def class_of_words(words: str) -> LimitClass:
    """The class a banner's words name (see the module docstring)."""
    if _SPEND_RE.search(words):
        return "spend"
    if _MODEL_RE.search(words):
        return "model"
    if _MONTH_RE.search(words):
        return "monthly"
    if _WEEK_RE.search(words):
        return "weekly"
    if _SESSION_RE.search(words):
        return "session"
    return "unknown"


def may_be_banner(text: str) -> bool:
    """A cheap filter in front of ``match_banner`` (most pane lines are no banner), for one line
    or a whole region; never stricter than the shapes."""
    return _KEYWORD_RE.search(fold(text)) is not None


def match_banner(line: str) -> BannerMatch | None:
    """The hard-limit banner ``line`` is, or None. No pre-filter (see ``may_be_banner``)."""
    for shape, pattern, fallback in _SHAPES:
        found = pattern.match(line)
        if found is None:
            continue
        groups = found.groupdict()
        if shape in _FIXED:
            return BannerMatch(f"limit.{shape}", fallback, groups.get("tail") or "")
        words = " ".join(g for g in (groups.get("what"), groups.get("model")) if g)
        named = class_of_words(words)
        limit_class = fallback if named == "unknown" else named
        rule = f"limit.{shape}" if limit_class == "unknown" else f"limit.{shape}-{limit_class}"
        return BannerMatch(rule, limit_class, groups.get("tail") or "")
    return None
