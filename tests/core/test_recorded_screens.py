"""Screens recorded from the real Claude Code 2.1.197 and opencode 1.18.33
(tests/core/recorded/README.md) read as what they are. Claude Code: the bypass-permissions and folder-trust dialogs, a credit refusal, a full
context, a retried 529, the weekly and 5-hour limits with the rate-limit menu, an expired OAuth
login, an invalid API key; and an idle screen as nothing. opencode: idle (before and after an
answer) as nothing, busy and retrying as active, a rejected key as a login."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from loopphase.api.spec import TimingSpec
from loopphase.core.limits import decide
from loopphase.core.screen import classify

RECORDED = Path(__file__).with_name("recorded")
SEEN_AT = datetime(2026, 11, 30, 13, 20, tzinfo=UTC)  # when the limit screens were captured

CLAUDE: dict[str, dict[str, Any]] = {
    "bypass-dialog": {"dialog": "dialog.bypass-permissions",
                      "title": "WARNING: Claude Code running in Bypass Permissions mode"},
    "credit-balance": {"limit": "limit.credit", "class": "spend", "window": "window.spend-probe"},
    "prompt-too-long": {"context": "context.prompt-too-long"},
    "overloaded-retrying": {"active": "active.esc-to-interrupt", "transient": "transient.retrying"},
    # The CLI opens its rate-limit menu under the banner: the limit is the menu, the class and
    # reset come from the banner above it. The weekly reset 10 h ahead is the window (fault 2).
    "weekly-limit-oauth": {"limit": "limit.menu", "class": "weekly", "reset": "2026-11-30T23:19:00+00:00",
                           "window": "window.stated-reset"},
    "five-hour-limit-oauth": {"limit": "limit.menu", "class": "session", "reset": "2026-11-30T15:20:00+00:00",
                              "window": "window.stated-reset"},
    "oauth-expired": {"login": "login.api-error-401"},
    "invalid-api-key": {"login": "login.invalid-api-key"},
    "folder-trust": {"dialog": "dialog.folder-trust", "title": "Accessing workspace:"},
    "idle-welcome": {},  # the welcome box, warnings, the prompt between rules: nothing to find
    # no credentials at all: the status line says so at once (right-aligned after the footer)...
    "not-logged-in-start": {"login": "login.status-line"},
    # ...and the first prompt is refused
    "not-logged-in": {"login": "login.not-logged-in"},
}
OPENCODE: dict[str, dict[str, Any]] = {
    # fault 5: "Build · <model>" in the prompt and the "▣  Build · <model> · 4.8s" message footer
    # are no activity; the prompt footer's "esc interrupt" and block spinner are.
    "idle-start": {},
    "answered-idle": {},
    "busy": {"active": "active.opencode-interrupt"},
    "retrying": {"active": "active.opencode-spinner"},  # "esc interrupt" cut off by the long note
    "unauthorized": {"login": "login.provider-key"},  # its error box: "┃  invalid x-api-key"
}
EXPECTED = {
    **{f"claude-code-2.1.197/{name}": value for name, value in CLAUDE.items()},
    **{f"opencode-1.18.33/{name}": value for name, value in OPENCODE.items()},
}


def _rule(match: Any) -> str | None:
    return None if match is None else match.rule


def test_every_recording_has_expectations() -> None:
    assert {f"{p.parent.name}/{p.stem}" for p in RECORDED.glob("*/*.txt")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_recorded_screen(name: str) -> None:
    expected = EXPECTED[name]
    reading = classify((RECORDED / f"{name}.txt").read_text(encoding="utf-8"), SEEN_AT, UTC)
    observed = {
        "limit": _rule(reading.limit), "class": reading.limit_class,
        "reset": reading.reset.at.isoformat() if reading.reset else None,
        "active": _rule(reading.active), "login": _rule(reading.login), "dialog": _rule(reading.dialog),
        "title": reading.dialog.excerpt if reading.dialog else None,
        "context": _rule(reading.context_full), "transient": _rule(reading.transient),
        "resume": _rule(reading.auto_resume), "fatal": _rule(reading.fatal),
    }
    if "window" in expected:
        observed["window"] = decide(reading, SEEN_AT, TimingSpec()).rule
    assert observed == {key: expected.get(key) for key in observed}
