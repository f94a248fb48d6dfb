"""The classifier's fast paths (whole-text stripping, substring pre-filters) read every pane
exactly like the straightforward per-line reading they replaced, which is kept here as the
reference. A pre-filter that drops a real finding makes these properties fail."""

from __future__ import annotations

import re
from datetime import datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from loopphase.core import families, screen
from loopphase.core.patterns import WAIT_RE
from loopphase.core.screen import classify, normalise

from tests.core.test_screen import BERLIN, NOWS, PANES

LINE_PANES = st.lists(
    st.sampled_from([
        "Claude usage limit reached|1760004000", "5-hour limit reached ∙ resets 3pm",
        "You're out of extra usage · resets 4pm", "❯ 1. Stop and wait for limit to reset",
        "Approaching usage limit · resets 2am", "⠙ Thinking… (esc to interrupt)",
        "API Error: thinking blocks cannot be modified", "WAITING-UNTIL: 2025-10-20T16:00:00Z",
        "plain prose about a limit", "CLAUDE USAGE LIMIT REACHED|1760004000",
        "You've Hit Your LIMIT · resets 3pm", "YOU'RE OUT OF CREDITS",
        "Your credit balance is too low", "Quota exceeded", "Insufficient funds",
        "Your usage allocation has been disabled", "Credit balance too low · Add funds",
        "INSUFFICIENT FUNDS", "Quota exceeded", "Your credit balance is too low",
        "You've hit your team's weekly usage limit", "Sonnet limit reached · resets 4pm",
        "Claude usage l\u0131mit reached|1760004000", "5-hour L\u0130MIT reached ∙ resets 3pm",
        "Insuffıcient credits", "Your usage allocatıon has been disabled", "Credıt balance too low",
        "Quota exceeded", "YOU'RE OUT OF EXTRA U\u017fAGE", "out of",
        "   ", "  \x07", "> ", "", "  ", "\t", "\x1b[2mdim\x1b[0m", "a\rb",
        "   ■■■■⬝⬝⬝⬝ x", "[RETRYING in 4s", "RUNNING TOOL", "ESC INTERRUPT", "▣  Build · m · 4.8s",
        "(12s · 3.4k tokens)", "Esc \u0131nterrupt", "esc again to \u0130nterrupt", "· 12s",
        "You've used 90% of your weekly l\u0131mit", "API Error: blocks CANNOT BE MODIFIED",
    ]),
    max_size=25,
).map("\n".join)


def reference_normalise(pane: str, width: int | None = None) -> list[str]:
    text = screen._ANSI_RE.sub("", pane.replace("\r\n", "\n"))
    lines: list[str] = []
    carry = ""
    for raw in text.split("\n"):
        line = screen._strip_line(raw)
        if width is not None and width > 0 and screen.display_width(line) == width:
            carry += line
            continue
        lines.append((carry + line).rstrip())
        carry = ""
    if carry:
        lines.append(carry.rstrip())
    while lines and not lines[-1].strip():
        lines.pop()
    return lines


def reference_lowest(region: list[str], rules: tuple[tuple[str, re.Pattern[str]], ...]) -> str | None:
    for line in reversed(region):
        for rule, pattern in rules:
            if pattern.search(line):
                return rule
    return None


def reference_banner_rule(region: list[str]) -> str | None:
    menu = None
    for line in reversed(region):
        found = families.match_banner(line)
        if found:
            return menu or found.rule
        if menu is None and screen._MENU_RE.match(line):
            menu = "limit.menu"
    return menu


def reference_wait_marker(lines: list[str]) -> str | None:
    for line in reversed(lines):
        for found in reversed(list(WAIT_RE.finditer(line))):
            if screen.parse_wait_timestamp(found.group(1)) is not None:
                return found.group(0)
    return None


@settings(max_examples=500, deadline=None)
@given(pane=st.one_of(PANES, LINE_PANES), width=st.one_of(st.none(), st.integers(-2, 120)))
def test_normalise_equals_the_per_line_reference(pane: str, width: int | None) -> None:
    assert normalise(pane, width) == reference_normalise(pane, width)


@settings(max_examples=500, deadline=None)
@given(pane=st.one_of(PANES, LINE_PANES), now=NOWS)
def test_prefiltered_findings_equal_the_unfiltered_reference(pane: str, now: datetime) -> None:
    reading = classify(pane, now, BERLIN)
    lines = reference_normalise(pane)
    region = screen._region(lines, 15)
    assert (reading.active.rule if reading.active else None) == reference_lowest(region, screen._ACTIVE)
    assert (reading.limit.rule if reading.limit else None) == reference_banner_rule(region)
    fatal = reference_lowest([x for x in region if screen.FATAL_RE.search(x)], screen._FATAL)
    assert (reading.fatal.rule if reading.fatal else None) == fatal
    soft = next((m.group(0) for x in reversed(region) if (m := screen._SOFT_RE.search(x))), None)
    assert (reading.soft_warning is not None) == (soft is not None)
    marker = reference_wait_marker(lines)
    assert (reading.waiting_match.excerpt if reading.waiting_match else None) == (
        screen._excerpt(marker) if marker else None)


def test_blank_lines_exactly_as_wide_as_the_pane_are_not_joined() -> None:
    """Found by review: a whitespace-only line of exactly ``width`` columns stays a blank line."""
    assert normalise("   \nabc", 3) == reference_normalise("   \nabc", 3) == ["", "abc"]


def test_dotted_and_dotless_i_count_like_the_case_insensitive_banner_patterns() -> None:
    now = datetime.fromisoformat("2025-10-20T15:00:00+00:00")
    for pane in ("Claude usage l\u0131mit reached|1760004000\n", "5-hour L\u0130MIT reached\n"):
        assert reference_banner_rule(reference_normalise(pane)) is not None
        assert classify(pane, now, BERLIN).limit is not None


def test_the_reference_sees_what_a_broken_prefilter_would_miss() -> None:
    """The properties can fail: a banner in capitals still passes the lower-cased filter."""
    pane = "work\nCLAUDE USAGE LIMIT REACHED|1760004000\n"
    assert reference_banner_rule(reference_normalise(pane)) == "limit.claude-epoch"
    assert classify(pane, datetime.fromisoformat("2025-10-20T15:00:00+00:00"), BERLIN).limit


FINDING_PANES = st.lists(
    st.sampled_from([
        "Invalid API K\u212aey · Please run /login", "  ⎿  OAuth token revoked · Please run /login",
        "API Error: 401 {}", "Unauthorized: bad key", "Prompt is too long", "CONTEXT LIMIT REACHED",
        "Usage limit reached · continuing automatically at 10:41am · esc to cancel",
        "Continuing shortly", "API Error: Repeated 529 Overloaded errors", "Provider is overloaded",
        "Do you want to proceed?", "❯ 1. Yes", "  2. No", "Enter to confirm · Esc to cancel",
        "⏎ to select", "plain prose", "", "  ", '{"error":{"type":"rate_limit_error"}}',
        "Server is temporarily limiting requests", "✻ API error · Retrying in 4s · attempt 4/10",
        "Opus is experiencing high load", "Too Many Requests", "Input exceeds context window",
        "context_length_exceeded", "Not logged in", "ProviderAuthError", "Missing API key",
        "Your ANTHROPIC_API_KEY belongs to a disabled organization", "AI_LoadAPIKeyError: no key",
        "Your organization has disabled Claude subscription access", "Invalid bearer token",
        "Your session has expired. Please run /login to sign in again.",
    ]),
    max_size=25,
).map("\n".join)


@settings(max_examples=500, deadline=None)
@given(pane=st.one_of(PANES, FINDING_PANES))
def test_finding_prefilters_equal_the_unfiltered_rules(pane: str) -> None:
    """The substring pre-filters in front of findings.* never drop a finding."""
    from loopphase.core import findings

    reading = classify(pane, datetime.fromisoformat("2025-10-20T15:00:00+00:00"), BERLIN)
    region = screen._region(reference_normalise(pane), 15)
    for field, rules in (
        ("login", findings._LOGIN), ("context_full", findings._CONTEXT),
        ("auto_resume", findings._RESUME), ("transient", findings._TRANSIENT),
    ):
        expected = findings._lowest(region, rules)
        if field == "transient" and reading.limit is not None:
            expected = None  # a hard limit on screen is the limit, not throttling
        found = getattr(reading, field)
        assert (found.rule if found else None) == (expected.rule if expected else None), field
    dialog = findings.dialog(screen._region(reference_normalise(pane), findings.DIALOG_LINES), 15)
    assert (reading.dialog.rule if reading.dialog else None) == (dialog.rule if dialog else None)
