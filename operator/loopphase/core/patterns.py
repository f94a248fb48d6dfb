"""Detector patterns shared by the screen classifier and spec validation.

Pure data and pure functions. Every text the supervisor types into an agent (pings, probes,
nudges, wake prompts, bootstrap lines) must match none of the detectors below: a probe that
said "usage limit has reset" once matched the limit detector and kept a limit window alive
forever (REFERENCE.md lesson 1). ``injected_text_violations`` is the single check used both at
spec validation and in tests.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Activity: a turn is running (spinner glyphs, Claude Code's "esc to interrupt", opencode's
# prompt footer). The spinner glyphs are braille dots the CLIs animate. Each alternative has a
# rule name so the screen classifier can log which one matched; ACTIVE_RE is their union.
# opencode draws its working state in the prompt footer only: "■■■■⬝⬝⬝⬝ [retrying in 45s
# attempt #3] esc interrupt" ("esc again to interrupt" after one Esc). The "▣ Build · <model> ·
# 12.7s" line it leaves under every finished answer is a message footer, not activity, so the
# timer rule skips lines that start with "▣".
ACTIVE_PARTS: tuple[tuple[str, str], ...] = (
    ("active.esc-to-interrupt", r"esc to interrupt"),
    ("active.spinner", r"[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏]"),
    ("active.running-tool", r"Running tool"),
    ("active.opencode-interrupt", r"\besc (?:again to )?interrupt\b"),
    # its 8-cell block spinner ("■■■■⬝⬝⬝⬝"); a long retry note pushes "esc interrupt" off a
    # narrow pane and cuts "[retrying in 41s attemp…" short
    ("active.opencode-spinner", r"[■⬝]{4,}"),
    ("active.opencode-retry", r"\[retrying\b"),
    ("active.timer", r"^(?![^\w\n]*▣).*?·\s\d+(?:\.\d+)?[ks]?\s*(?:tokens|s\b)"),
)
ACTIVE_FLAGS = re.IGNORECASE | re.MULTILINE
ACTIVE_RE = re.compile("|".join(part for _, part in ACTIVE_PARTS), ACTIVE_FLAGS)

# Hard usage limits: the agent cannot work until the window resets. Deliberately broad: it is
# the validation net for injected texts, a superset of the anchored banner shapes the screen
# classifier recognises (core/screen.py), including the limit menu's "wait for limit to reset".
LIMIT_RE = re.compile(
    r"spend limit|usage limit|limit (?:reached|hit|exceeded|exhausted)"
    r"|(?:hit|reached|exceeded|used up|exhausted|run out of) (?:your|the) .{0,60}limit"
    r"|out of (?:usage|credits|tokens|extra usage|quota|funds)|limit (?:will|to) reset"
    r"|credit balance|quota exceeded|exceeded your current quota|insufficient (?:credits|balance|funds)"
    r"|usage allocation|limit is set to \$0",
    re.IGNORECASE,
)

# Soft warnings look like banners but do not block ("Approaching usage limit · resets 2am").
SOFT_LIMIT_RE = re.compile(r"approaching (?:your )?(?:\w+ )?(?:usage |spend )?limit", re.IGNORECASE)

# Fatal session-state errors: the conversation is wedged; restart cold, never resume.
FATAL_RE = re.compile(
    r"redacted_thinking|blocks cannot be modified|cannot be modified",
    re.IGNORECASE,
)

# A declared wait: the agent prints this before sleeping on purpose.
WAIT_RE = re.compile(r"WAITING-UNTIL:\s*(\S+)")


def fold(text: str) -> str:
    """``text`` lower-cased for substring pre-filters in front of case-insensitive regexes.

    Those regexes also match look-alikes that ``str.lower`` keeps apart: "ı" (dotless i) and
    "İ" (lower-cased to "i" + U+0307) for i, "ſ" (long s) for s ("K", the Kelvin sign, already
    lowers to k). They are folded here so a filter is never stricter than its regexes.
    """
    low = text.lower()
    if low.isascii():
        return low
    return low.replace("\u0131", "i").replace("i\u0307", "i").replace("\u017f", "s")


@dataclass(frozen=True)
class Detector:
    rule: str
    pattern: re.Pattern[str]


DETECTORS: tuple[Detector, ...] = (
    Detector("active", ACTIVE_RE),
    Detector("limit", LIMIT_RE),
    Detector("soft-limit", SOFT_LIMIT_RE),
    Detector("fatal", FATAL_RE),
    Detector("waiting-until", WAIT_RE),
)


def injected_text_violations(text: str) -> list[tuple[str, str]]:
    """Return (rule, matched text) for every detector the text would trigger."""
    hits: list[tuple[str, str]] = []
    for detector in DETECTORS:
        match = detector.pattern.search(text)
        if match:
            hits.append((detector.rule, match.group(0)))
    return hits


# Claude Code's StopFailure hook reports an error type; these mean "cannot work until a reset".
# Overload (529) and server errors are transient and deliberately not in this list.
LIMIT_ERROR_TYPE_RE = re.compile(r"rate.?limit|usage.?limit|quota|spend|billing|credit", re.IGNORECASE)
