"""Hard-limit banners by family (core/families.py, issue 11 fault 1).

Table tests on the minimal inputs and the rest of each kind, then two properties: banners
generated from the family grammar (who, what, shape, reset clause, separators, apostrophes,
zones, decorations, widths that wrap) are hard with the right reset and class; conversation
quoting them mid-line, or scrolled above the banner region, is not.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loopphase.core.families import match_banner
from loopphase.core.patterns import LIMIT_RE
from loopphase.core.screen import classify
from loopphase.sim.banners import clock, date_clock

NOW = datetime(2025, 10, 20, 15, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("line", "rule", "limit_class", "reset"),
    [
        # the minimal inputs
        ("You've hit your team's weekly usage limit", "limit.hit-weekly", "weekly", None),
        (
            "Your credit balance is too low to access the Anthropic API. Please go to Plans & "
            "Billing to upgrade or purchase credits.",
            "limit.credit", "spend", None,
        ),
        ("Sonnet limit reached · resets 4pm", "limit.reached-model", "model", "2025-10-21T14:00:00+00:00"),
        # the rest of the kind, as Claude Code 2.1.x and opencode 1.x draw them
        ("Credit balance too low · Add funds: https://platform.claude.com/settings/billing",
         "limit.credit", "spend", None),
        ('API Error: 400 {"type":"error","error":{"type":"invalid_request_error","message":"Your '
         'credit balance is too low to access the Anthropic API."}}', "limit.credit", "spend", None),
        ("You've hit your org's monthly spend limit · run /usage-credits to raise it",
         "limit.hit-spend", "spend", None),
        ("You've hit your monthly spend limit. /model to switch models.", "limit.hit-spend", "spend", None),
        ("You've hit your org's monthly usage limit · resets Nov 1, 12am", "limit.hit-monthly",
         "monthly", "2025-10-31T23:00:00+00:00"),
        ("You've hit your Opus limit · resets Oct 24, 9am (Europe/Berlin)", "limit.hit-model", "model",
         "2025-10-24T07:00:00+00:00"),
        ("You’ve hit your Fable 5 limit ∙ resets 9pm", "limit.hit-model", "model", "2025-10-20T19:00:00+00:00"),
        ("You've hit your 5-hour limit · resets 10:40pm (UTC)", "limit.hit-session", "session",
         "2025-10-20T22:40:00+00:00"),
        ("You've hit your usage limit · contact your admin to increase it", "limit.hit", "unknown", None),
        ("You have reached your weekly limit.", "limit.hit-weekly", "weekly", None),
        ("You're out of usage credits · resets 9pm", "limit.out-of-spend", "spend", "2025-10-20T19:00:00+00:00"),
        ("Your org is out of usage · add funds to continue", "limit.out-of-spend", "spend", None),
        ("Your group's usage limit is set to $0 · run /usage-credits to ask your admin", "limit.zero",
         "spend", None),
        ("Your usage allocation has been disabled by your admin", "limit.zero", "spend", None),
        ("Monthly spend limit reached", "limit.reached-spend", "spend", None),
        ("Weekly usage limit reached. It will reset in 2 days 3 hours. To continue using this model now, "
         "enable usage from your available balance", "limit.reached-weekly", "weekly",
         "2025-10-22T18:00:00+00:00"),
        ("Usage limit reached. It will reset in 3 hours 20 minutes.", "limit.reached", "unknown",
         "2025-10-20T18:20:00+00:00"),
        ("Opus weekly limit reached ∙ resets Oct 31, 9am", "limit.reached-model", "model",
         "2025-10-31T08:00:00+00:00"),
        ("Claude AI usage limit reached|1760004000", "limit.claude-epoch", "session", "2025-10-09T10:00:00+00:00"),
        ("You exceeded your current quota, please check your plan and billing details.", "limit.quota",
         "spend", None),
        ("Insufficient credits", "limit.insufficient", "spend", None),
        # not usage limits
        ("Context limit reached · /compact or /clear to continue", None, None, None),
        ("Subagent nesting limit reached (depth 3 of 3).", None, None, None),
        ("You've used 90% of your weekly limit · resets 9pm", None, None, None),
        ("You're now using extra usage · Your session limit resets 4pm", None, None, None),
        ("Approaching usage limit · resets at 2am", None, None, None),
        ("API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited",
         None, None, None),
        ("You've hit your limit, so I stopped and wrote the notes below.", None, None, None),
        ("Rate limit reached for gpt-4o", None, None, None),
        ("You've reached the limit.", None, None, None),
        ("You've reached the limit of what this parser can do.", None, None, None),
    ],
)
def test_banner_families(line: str, rule: str | None, limit_class: str | None, reset: str | None) -> None:
    reading = classify(f"● Working.\n  ⎿  {line}\n", NOW, BERLIN)
    assert (reading.limit.rule if reading.limit else None) == rule
    assert reading.limit_class == limit_class
    assert (reading.reset.at.isoformat() if reading.reset else None) == reset
    if rule is not None:
        assert LIMIT_RE.search(line), "the injected-text net must catch every banner"


def test_banner_match_names_rule_class_and_tail() -> None:
    found = match_banner("  ⎿  You've hit your team's weekly usage limit · resets 9pm (Asia/Singapore)")
    assert found is not None
    assert (found.rule, found.limit_class) == ("limit.hit-weekly", "weekly")
    assert found.tail.strip().startswith("· resets 9pm")


# ── the grammar, generated ───────────────────────────────────────────────────────────────────


@dataclass(frozen=True)
class Generated:
    line: str
    limit_class: str
    reset: datetime | None


WHO = ["your ", "your team's ", "your org’s ", "your organization's ", "your workspace's "]
WHAT = [
    ("session ", "session"), ("5-hour ", "session"), ("weekly ", "weekly"), ("weekly usage ", "weekly"),
    ("monthly ", "monthly"), ("monthly usage ", "monthly"), ("Opus ", "model"), ("Sonnet ", "model"),
    ("Fable 5 ", "model"), ("Opus weekly ", "model"), ("spend ", "spend"), ("monthly spend ", "spend"),
    ("credit ", "spend"), ("extra usage ", "spend"), ("", "unknown"), ("usage ", "unknown"),
]
SEPARATORS = [" · ", " ∙ ", " • ", " | ", " – ", " — "]
APOSTROPHES = ["'", "’"]
ZONES = [None, "UTC", "Asia/Singapore", "America/Los_Angeles", "Europe/Berlin", "Australia/Sydney"]
DECORATIONS = ["", "  ⎿  ", "● ", "│ ", "┃  ", "> "]


@st.composite
def banners(draw: st.DrawFn) -> Generated:
    apos = draw(st.sampled_from(APOSTROPHES))
    what, limit_class = draw(st.sampled_from(WHAT))
    shape = draw(st.sampled_from(["hit", "reached", "out-of"]))
    if shape == "reached" and not what:
        shape = "hit"
    if shape == "hit":
        verb = draw(st.sampled_from(["hit", "reached"]))
        who = draw(st.sampled_from(WHO)).replace("'", apos)
        head = f"You{apos}ve {verb} {who}{what}limit"
    elif shape == "reached":
        head = f"{what[0].upper()}{what[1:]}limit {draw(st.sampled_from(['reached', 'hit', 'exceeded']))}"
    else:
        head = f"You{apos}re out of {draw(st.sampled_from(['extra usage', 'usage credits', 'credits']))}"
        limit_class = "spend"
    clause = draw(st.sampled_from(["none", "time", "dated", "relative"]))
    if clause == "none":
        return Generated(head + draw(st.sampled_from(["", ".", "!"])), limit_class, None)
    minutes = draw(st.integers(min_value=2, max_value=23 * 60 if clause == "time" else 30 * 24 * 60))
    at = NOW + timedelta(minutes=minutes)
    sep = draw(st.sampled_from(SEPARATORS))
    if clause == "relative":
        hours, mins = divmod(minutes, 60)
        return Generated(f"{head}. It will reset in {hours} hours {mins} minutes", limit_class, at)
    zone = draw(st.sampled_from(ZONES))
    local = at.astimezone(ZoneInfo(zone) if zone else BERLIN)
    when = clock(local) if clause == "time" else date_clock(local, draw(st.sampled_from([", ", " at "])))
    suffix = f" ({zone})" if zone else ""
    return Generated(f"{head}{sep}resets {when}{suffix}", limit_class, at)


def _wrap(line: str, width: int) -> str:
    return "\n".join(line[i : i + width] for i in range(0, len(line), width))


@settings(max_examples=400, deadline=None)
@given(
    banner=banners(),
    decoration=st.sampled_from(DECORATIONS),
    width=st.one_of(st.none(), st.integers(min_value=20, max_value=120)),
    below=st.lists(st.sampled_from(["", "╭────╮", "│ >  │", "╰────╯", "  ? for shortcuts"]), max_size=4),
)
def test_generated_banners_are_hard_with_their_reset_and_class(
    banner: Generated, decoration: str, width: int | None, below: list[str]
) -> None:
    line = decoration + banner.line
    shown = _wrap(line, width) if width else line
    pane = "\n".join(["● Working.", shown, *below])  # (10 columns: never joined to the banner)
    reading = classify(pane, NOW, BERLIN, width=width)
    assert reading.limit is not None, pane
    assert reading.limit_class == banner.limit_class, pane
    if banner.reset is None:
        assert reading.reset is None, pane
    else:
        assert reading.reset is not None, pane
        assert reading.reset.at == banner.reset.replace(second=0, microsecond=0), pane


PROSE = [
    "● The CLI printed {banner} and then stopped",
    "● I think {banner} means we should pause.",
    "> why did it say {banner}?",
    "  ⎿  Read notes.md: the banner {banner} is parsed by screen.py",
    "● Summary: {banner}",
]


@settings(max_examples=400, deadline=None)
@given(banner=banners(), prose=st.sampled_from(PROSE), scrolled=st.integers(min_value=16, max_value=40))
def test_conversation_quoting_banners_is_not_a_limit(banner: Generated, prose: str, scrolled: int) -> None:
    quoted = prose.format(banner=banner.line)
    assert classify(f"{quoted}\n╭────╮\n│ >  │\n╰────╯\n", NOW, BERLIN).limit is None, quoted
    old = banner.line + "\n" + "\n".join(f"work {i}" for i in range(scrolled))
    assert classify(old, NOW, BERLIN).limit is None
