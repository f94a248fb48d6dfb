"""Reset-time parsing of banner text (loopphase.core.resettime)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from loopphase.core.resettime import dated_time, next_wall_time, parse_reset, zone_or_default

NOW = datetime(2025, 10, 20, 15, 0, tzinfo=UTC)  # 17:00 in Berlin (CEST)
BERLIN = ZoneInfo("Europe/Berlin")


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        pytest.param("resets 9pm", "2025-10-20T19:00:00+00:00", "time", id="pm-today"),
        pytest.param("resets 9am", "2025-10-21T07:00:00+00:00", "time", id="am-tomorrow"),
        pytest.param("resets 12pm", "2025-10-21T10:00:00+00:00", "time", id="12pm-is-noon"),
        pytest.param("resets 12am", "2025-10-20T22:00:00+00:00", "time", id="12am-is-midnight"),
        pytest.param("resets 12:50am", "2025-10-20T22:50:00+00:00", "time", id="12:50am"),
        pytest.param("resets 9 p.m.", "2025-10-20T19:00:00+00:00", "time", id="dotted-pm"),
        pytest.param("resets 14:00", "2025-10-21T12:00:00+00:00", "time", id="24-hour"),
        pytest.param("resets 23:59", "2025-10-20T21:59:00+00:00", "time", id="24-hour-late"),
        pytest.param("resets at 2am", "2025-10-21T00:00:00+00:00", "time", id="resets-at"),
        pytest.param(
            "reset at 9am (America/Chicago)", "2025-10-21T14:00:00+00:00", "time", id="named-zone"
        ),
        pytest.param(
            "resets 17:00", "2025-10-21T15:00:00+00:00", "time", id="exactly-now-is-tomorrow"
        ),
        pytest.param(
            "resets Oct 31, 9am", "2025-10-31T08:00:00+00:00", "dated", id="dated-after-dst-end"
        ),
        pytest.param(
            "resets Sept 15th at 7pm",
            "2025-09-15T17:00:00+00:00",
            "dated",
            id="dated-long-month-ordinal",
        ),
        pytest.param(
            "resets Dec 2, 7pm (Europe/Moscow)",
            "2025-12-02T16:00:00+00:00",
            "dated",
            id="dated-named-zone",
        ),
        pytest.param(
            "resets Mar 1, 9am",
            "2026-03-01T08:00:00+00:00",
            "dated",
            id="dated-over-180-days-past-rolls",
        ),
        pytest.param("|1760004000", "2025-10-09T10:00:00+00:00", "epoch", id="epoch"),
    ],
)
def test_parses_time_shapes(text: str, expected: str, kind: str) -> None:
    hint = parse_reset(text, NOW, BERLIN, rule="limit.test")
    assert hint is not None
    assert (hint.at.isoformat(), hint.kind, hint.rule) == (expected, kind, "limit.test")


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("reset 10 files", id="reset-10-files"),
        pytest.param("resets the cache", id="resets-the-cache"),
        pytest.param("resets 10", id="bare-number"),
        pytest.param("resets 13pm", id="13pm"),
        pytest.param("resets 0am", id="0am"),
        pytest.param("resets 24:00", id="24:00"),
        pytest.param("resets 9:75pm", id="bad-minute"),
        pytest.param("resets Feb 30, 9am", id="impossible-date"),
        pytest.param("resets 10 apples", id="10-apples"),
        pytest.param("presets 9pm", id="presets-is-not-resets"),
        pytest.param("", id="empty"),
    ],
)
def test_rejects_non_times(text: str) -> None:
    assert parse_reset(text, NOW, BERLIN) is None


def test_time_only_keeps_wall_time_across_dst_end() -> None:
    # 2025-10-25 23:00 UTC = 01:00 CEST on the 26th; DST ends at 03:00 CEST that night.
    now = datetime(2025, 10, 25, 23, 0, tzinfo=UTC)
    hint = parse_reset("resets 9am", now, BERLIN)
    assert hint is not None and hint.at == datetime(2025, 10, 26, 8, 0, tzinfo=UTC)


def test_fixed_offset_tz_argument_works() -> None:
    hint = parse_reset("resets 6pm", NOW, timezone(timedelta(hours=-5)))
    assert hint is not None and hint.at == datetime(2025, 10, 20, 23, 0, tzinfo=UTC)


@pytest.mark.parametrize("name", ["Mars/Olympus", "../../etc/passwd", "", None, "a b"])
def test_unknown_zone_names_fall_back(name: str | None) -> None:
    assert zone_or_default(name, BERLIN) is BERLIN


def test_known_zone_name_is_used() -> None:
    assert zone_or_default("America/Chicago", BERLIN) == ZoneInfo("America/Chicago")


def test_far_future_now_does_not_raise() -> None:
    now = datetime(9999, 12, 31, 23, 0, tzinfo=UTC)
    assert parse_reset("resets 9am", now, BERLIN) is None
    assert parse_reset("resets Jan 2, 9am", now, BERLIN) is None


def test_an_ambiguous_reset_on_the_night_summer_time_ends_is_the_later_instant() -> None:
    """"resets Oct 26, 2am" in Berlin, 2025: 2am CEST (00:00 UTC) and 2am CET (01:00 UTC) both
    exist; the later is taken (found by the banner grammar's hypothesis test)."""
    berlin = ZoneInfo("Europe/Berlin")
    now = datetime(2025, 10, 25, 23, 30, tzinfo=UTC)  # 01:30 CEST
    assert dated_time(now, berlin, 10, 26, 2, 0) == datetime(2025, 10, 26, 1, 0, tzinfo=UTC)
    assert next_wall_time(now, berlin, 2, 0) == datetime(2025, 10, 26, 1, 0, tzinfo=UTC)


def test_a_reset_in_the_skipped_hour_maps_past_the_gap() -> None:
    """2:30am does not exist in Berlin on 2025-03-30 (02:00 CET jumps to 03:00 CEST): the reset is
    read as 01:30 UTC (03:30 CEST), not 00:30 UTC, before the wall clock could show it."""
    now = datetime(2025, 3, 29, 12, 0, tzinfo=UTC)
    assert dated_time(now, ZoneInfo("Europe/Berlin"), 3, 30, 2, 30) == datetime(
        2025, 3, 30, 1, 30, tzinfo=UTC)
