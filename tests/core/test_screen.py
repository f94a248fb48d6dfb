"""Screen classifier: the banner corpus as table tests, plus properties (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from loopphase.api.spec import SAMPLE_PLACEHOLDERS, OrchestratorSpec, TextsSpec, render_text
from loopphase.core.patterns import injected_text_violations
from loopphase.core.screen import (
    EXCERPT_MAX,
    ScreenReading,
    already_typed,
    classify,
    input_area,
    normalise,
)

CORPUS_PATH = Path(__file__).with_name("banner_corpus.yaml")
EXPECTATION_KEYS = (
    "limit", "class", "reset", "kind", "soft", "active", "fatal", "waiting",
    "login", "dialog", "title", "context", "resume", "transient",
)
NOW = datetime(2025, 10, 20, 15, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")


@dataclass(frozen=True)
class Case:
    id: str
    pane: str
    now: datetime
    tz: ZoneInfo
    width: int | None
    expected: dict[str, Any]


def _load_corpus() -> list[Case]:
    data = yaml.safe_load(CORPUS_PATH.read_text(encoding="utf-8"))
    defaults = data["defaults"]
    cases = []
    for raw in data["cases"]:
        merged = {**defaults, **raw}
        expected = {
            key: merged.get(key)
            for key in EXPECTATION_KEYS
        }
        cases.append(
            Case(
                id=merged["id"],
                pane=merged["pane"],
                now=datetime.fromisoformat(merged["now"]),
                tz=ZoneInfo(merged["tz"]),
                width=merged.get("width"),
                expected=expected,
            )
        )
    return cases


CORPUS = _load_corpus()


def _observed(reading: ScreenReading) -> dict[str, Any]:
    def rule(match: Any) -> str | None:
        return None if match is None else match.rule

    return {
        "limit": rule(reading.limit),
        "reset": None if reading.reset is None else reading.reset.at.isoformat(),
        "kind": None if reading.reset is None else reading.reset.kind,
        "soft": rule(reading.soft_warning),
        "active": rule(reading.active),
        "fatal": rule(reading.fatal),
        "waiting": None if reading.waiting_until is None else reading.waiting_until.isoformat(),
        "class": reading.limit_class,
        "login": rule(reading.login),
        "dialog": rule(reading.dialog),
        "title": None if reading.dialog is None else reading.dialog.excerpt,
        "context": rule(reading.context_full),
        "resume": rule(reading.auto_resume),
        "transient": rule(reading.transient),
    }


def test_corpus_ids_are_unique_and_cover_every_banner_family() -> None:
    ids = [case.id for case in CORPUS]
    assert len(ids) == len(set(ids))
    limit_rules = {case.expected["limit"] for case in CORPUS}
    assert {
        "limit.claude-epoch",
        "limit.reached-session",
        "limit.reached-weekly",
        "limit.reached-model",
        "limit.hit",
        "limit.hit-session",
        "limit.hit-weekly",
        "limit.out-of-spend",
        "limit.hit-spend",
        "limit.menu",
    } <= limit_rules
    assert {case.expected["kind"] for case in CORPUS} >= {"time", "dated", "epoch"}


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_banner_corpus(case: Case) -> None:
    reading = classify(case.pane, case.now, case.tz, width=case.width)
    assert _observed(reading) == case.expected


@pytest.mark.parametrize("case", CORPUS, ids=[case.id for case in CORPUS])
def test_findings_carry_rule_and_short_excerpt(case: Case) -> None:
    reading = classify(case.pane, case.now, case.tz, width=case.width)
    for match in reading.matches():
        assert match.rule and match.excerpt
        assert len(match.excerpt) <= EXCERPT_MAX
    if reading.reset is not None:
        assert reading.reset.at.utcoffset() == timedelta(0)
        assert reading.reset.rule == reading.reset.rule.strip() and reading.reset.excerpt


@pytest.mark.parametrize(
    "case",
    [c for c in CORPUS if c.expected["limit"]],
    ids=[c.id for c in CORPUS if c.expected["limit"]],
)
def test_every_banner_is_caught_by_the_injected_text_net(case: Case) -> None:
    """LIMIT_RE (spec validation) must be a superset of what classify calls a banner."""
    reading = classify(case.pane, case.now, case.tz, width=case.width)
    assert reading.limit is not None
    rules = {rule for rule, _ in injected_text_violations(reading.limit.excerpt)}
    assert "limit" in rules


def test_soft_warning_never_sets_limit_even_with_every_decoration() -> None:
    for line in (
        "Approaching usage limit · resets at 2am",
        "  ⎿  Approaching your weekly limit · resets Oct 31, 9am",
        "│ Approaching usage limit │",
    ):
        reading = classify(line, NOW, BERLIN)
        assert reading.limit is None and reading.reset is None
        assert reading.soft_warning is not None


def test_banner_region_size_is_a_parameter() -> None:
    pane = "Session limit reached ∙ resets 8pm\n" + "\n".join(f"work {i}" for i in range(5))
    assert classify(pane, NOW, BERLIN, banner_region_lines=6).limit is not None
    assert classify(pane, NOW, BERLIN, banner_region_lines=5).limit is None


def test_region_counts_non_blank_lines() -> None:
    pane = "Session limit reached ∙ resets 8pm\n" + "\n\n".join(f"work {i}" for i in range(5))
    assert classify(pane, NOW, BERLIN, banner_region_lines=6).limit is not None


def test_naive_now_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="tz-aware"):
        classify("", datetime(2025, 1, 1), BERLIN)


# ── normalisation ──────────────────────────────────────────────────────────────────────────


def test_normalise_strips_ansi_joins_wraps_and_drops_trailing_blanks() -> None:
    pane = "\x1b[31mabcde\x1b[0m\nfg\n\nxyz\n\n  \n"
    assert normalise(pane, width=5) == ["abcdefg", "", "xyz"]
    assert normalise(pane) == ["abcde", "fg", "", "xyz"]


def test_normalise_counts_wide_characters_as_two_columns() -> None:
    assert normalise("ab日本\ncd", width=6) == ["ab日本cd"]
    assert normalise("ab日本\ncd", width=4) == ["ab日本", "cd"]


def test_carriage_return_keeps_the_overwriting_text() -> None:
    assert normalise("⠋ Working\r⠙ Working\r\nnext") == ["⠙ Working", "next"]


# ── input area and "already typed?" ────────────────────────────────────────────────────────

PROBE = render_text(TextsSpec().limit_probe, **SAMPLE_PLACEHOLDERS)


def _box(text: str, inner: int = 60) -> str:
    rows = [text[i : i + inner] for i in range(0, len(text), inner)] or [""]
    body = "\n".join(f"│ {row.ljust(inner)} │" for row in rows)
    return f"╭{'─' * (inner + 2)}╮\n{body}\n╰{'─' * (inner + 2)}╯\n  ? for shortcuts\n"


def test_input_area_is_the_bottom_lines_ignoring_trailing_blanks() -> None:
    pane = "\n".join(f"l{i}" for i in range(20)) + "\n\n\n"
    assert input_area(pane, 3) == "l17\nl18\nl19"
    assert input_area(pane, 0) == ""


def test_already_typed_sees_text_in_the_input_box() -> None:
    pane = "● Idle.\n" + _box("> " + PROBE)
    assert already_typed(pane, PROBE)


def test_already_typed_sees_a_prefix_wrapped_inside_a_narrow_box() -> None:
    pane = "● Idle.\n" + _box("> " + PROBE, inner=12)
    assert already_typed(pane, PROBE, lines=16)
    assert not already_typed(pane, PROBE, lines=8)  # the first box row is out of the area


def test_already_typed_ignores_scrollback() -> None:
    """Lesson 2: a submitted probe that scrolled up must not look typed."""
    pane = f"> {PROBE}\n" + "\n".join(f"work {i}" for i in range(10)) + "\n" + _box("> ")
    assert not already_typed(pane, PROBE)
    assert already_typed(pane, PROBE, lines=20)


def test_already_typed_needs_the_prefix_not_just_any_words() -> None:
    pane = _box("> loopphase probe: something else entirely")
    assert not already_typed(pane, PROBE)
    assert not already_typed(pane, "")
    assert not already_typed(pane, "   ")


def test_reading_input_area_uses_input_area_lines() -> None:
    pane = "top\n" + _box("> hello")
    reading = classify(pane, NOW, BERLIN, input_area_lines=2)
    assert reading.input_area == "╰" + "─" * 62 + "╯\n  ? for shortcuts"


# ── properties ─────────────────────────────────────────────────────────────────────────────

FRAGMENTS = st.sampled_from(
    [
        "Claude usage limit reached. Your limit will reset at ",
        "You've hit your ",
        "session ",
        "limit",
        " · resets ",
        " ∙ resets ",
        "12:50am",
        "99:99pm",
        "13pm",
        "Feb 30, 7pm",
        "Oct 31, 9am",
        " (America/Chicago)",
        " (../../etc/passwd)",
        " (",
        ")",
        "|1760004000",
        "|99999999999999",
        "WAITING-UNTIL: ",
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "2025-10-20T16:00:00Z",
        "redacted_thinking",
        "⠙",
        "esc to interrupt",
        "\x1b[31m",
        "\x1b]0;t\x07",
        "\x1b",
        "\r",
        "\n",
        "\t",
        "日本",
        "❯ 1. Stop and wait for limit to reset",
    ]
)
PANES = st.one_of(
    st.text(max_size=400),
    st.lists(st.one_of(FRAGMENTS, st.text(max_size=8)), max_size=30).map("".join),
)
NOWS = st.datetimes(
    min_value=datetime(1970, 1, 2), max_value=datetime(9998, 1, 1), timezones=st.just(UTC)
)


@settings(max_examples=400, deadline=None)
@given(pane=PANES, now=NOWS, width=st.one_of(st.none(), st.integers(-2, 120)))
def test_classify_never_raises(pane: str, now: datetime, width: int | None) -> None:
    reading = classify(pane, now, BERLIN, width=width)
    assert isinstance(reading, ScreenReading)
    if reading.reset is not None:
        assert reading.reset.at.tzinfo is not None
    assert isinstance(already_typed(pane, pane, width=width), bool)


def _injected_texts() -> list[str]:
    templates = [*TextsSpec().model_dump().values(), OrchestratorSpec().wake_prompt]
    return [render_text(t, **SAMPLE_PLACEHOLDERS) for t in templates]


INJECTED = _injected_texts()
BENIGN_LINES = [
    "● Reading machine-docs/STATUS-phase-1.md",
    "  ⎿  Read 120 lines",
    "> ",
    "│ >                                            │",
    "╭──────────────────────────────────────────────╮",
    "  ? for shortcuts",
    "",
    "● Committed claim: gate 2 ready for review.",
]


def test_default_texts_pass_the_validation_net() -> None:
    assert INJECTED and all(injected_text_violations(text) == [] for text in INJECTED)


@settings(max_examples=300, deadline=None)
@given(
    base=st.lists(st.sampled_from(BENIGN_LINES), max_size=30),
    text=st.sampled_from(INJECTED),
    at=st.integers(min_value=0),
    prefix=st.sampled_from(["", "> ", "│ > ", "● ", "  ⎿  "]),
    width=st.one_of(st.none(), st.integers(10, 120)),
)
def test_injected_texts_never_look_like_agent_state(
    base: list[str], text: str, at: int, prefix: str, width: int | None
) -> None:
    lines = list(base)
    typed = prefix + text
    if width is not None:  # as the terminal would wrap it
        typed = "\n".join(typed[i : i + width] for i in range(0, len(typed), width))
    lines.insert(at % (len(lines) + 1), typed)
    reading = classify("\n".join(lines), NOW, BERLIN, width=width)
    assert reading.limit is None and reading.reset is None
    assert reading.fatal is None
    assert reading.active is None
    assert reading.waiting_until is None and reading.waiting_match is None
    assert reading.soft_warning is None
    assert reading.login is reading.dialog is reading.context_full is None
    assert reading.auto_resume is reading.transient is None


# ── findings a restart cannot fix: shown at the bottom, never when quoted ──────────────────

FINDING_LINES = {
    "login": [
        "Invalid API key · Please run /login",
        "OAuth token revoked · Please run /login",
        "Not logged in · Please run /login",
        'API Error: 401 {"type":"error","error":{"type":"authentication_error","message":"OAuth '
        'token has expired."}} · Please run /login',
        "Unauthorized: invalid x-api-key",
    ],
    "context_full": [
        "Prompt is too long",
        "Context limit reached · /compact or /clear to continue",
        "Input exceeds context window of this model",
    ],
    "auto_resume": [
        "Usage limit reached · continuing automatically at 10:41am · esc to cancel",
        "Continuing shortly",
        "Usage limit reset · Continuing automatically",
    ],
    "transient": [
        "API Error: Repeated 529 Overloaded errors. The API is at capacity.",
        "API Error: Server is temporarily limiting requests (not your usage limit) · Rate limited",
        "Provider is overloaded",
    ],
}
FINDING_CASES = [(field, line) for field, lines in FINDING_LINES.items() for line in lines]
DECORATIONS = st.sampled_from(["", "  ⎿  ", "● ", "│ ", "┃  ", "\x1b[31m"])


@settings(max_examples=300, deadline=None)
@given(
    case=st.sampled_from(FINDING_CASES),
    decoration=DECORATIONS,
    base=st.lists(st.sampled_from(BENIGN_LINES), max_size=6),
)
def test_findings_at_the_bottom_are_seen(case: tuple[str, str], decoration: str, base: list[str]) -> None:
    field, line = case
    pane = "\n".join([*base, decoration + line, *BENIGN_LINES[:3]])
    reading = classify(pane, NOW, BERLIN)
    assert getattr(reading, field) is not None, pane


@settings(max_examples=300, deadline=None)
@given(
    case=st.sampled_from(FINDING_CASES),
    lead=st.sampled_from(["● The CLI printed ", "● I saw '", "  ⎿  Read notes: ", "> why does it say "]),
    scrolled=st.integers(min_value=16, max_value=30),
)
def test_findings_quoted_in_conversation_are_not(case: tuple[str, str], lead: str, scrolled: int) -> None:
    """Mid-line prose never counts; a real one scrolled above the banner region neither."""
    field, line = case
    prose = classify(f"{lead}{line}\n> ", NOW, BERLIN)
    assert getattr(prose, field) is None, lead + line
    old = line + "\n" + "\n".join(f"work {i}" for i in range(scrolled))
    assert getattr(classify(old, NOW, BERLIN), field) is None


def test_every_dialog_kind_names_its_title_and_never_the_options() -> None:
    reading = classify(
        "Do you want to proceed?\n❯ 1. Yes\n  2. No, and tell Claude what to do differently (esc)\n"
        "Esc to cancel · Tab to amend\n",
        NOW, BERLIN,
    )
    assert reading.dialog is not None
    assert (reading.dialog.rule, reading.dialog.excerpt) == ("dialog.selection", "Do you want to proceed?")
