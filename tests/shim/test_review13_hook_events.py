"""Review of issue 13: the agent writes its own hook events file; nothing it writes there may
take the shim's API down (against a real shim on loopback, real tmux, the sim agent).

Before the fix one line ``{"session_id": 12345}`` or ``{"receivedAt": "not-a-time"}`` (or a
line nested 100,000 deep) made every ``GET /v1/state`` and every warm ``/v1/restart`` answer
500 (a pydantic ValidationError / RecursionError from building the events), so the operator
could no longer observe the agent; and the whole file was read line by line on every state
call, so one huge line cost the shim its size in memory.
"""

from __future__ import annotations

import json

import psutil
import pytest
from loopphase.shim.client import ShimError

from tests.shim.conftest import until

pytestmark = pytest.mark.timeout(90)

SESSION = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"


async def test_bad_hook_event_lines_are_skipped_not_a_500(start_shim) -> None:
    shim = await start_shim()
    c = shim.client
    await until(lambda: c.state(), lambda s: s.alive, what="alive")
    events = shim.state_dir / "hook-events.jsonl"
    with events.open("a") as fh:
        fh.write(json.dumps({"hook_event_name": "SessionStart", "session_id": 12345}) + "\n")
        fh.write(json.dumps({"hook_event_name": "Stop", "receivedAt": "not-a-time"}) + "\n")
        fh.write("[" * 100_000 + "\n")
        fh.write(json.dumps({"hook_event_name": "SessionStart", "session_id": SESSION,
                             "receivedAt": "2026-11-30T12:00:00Z"}) + "\n")
    try:
        state = await c.state()
    except ShimError as exc:
        raise AssertionError(f"/v1/state failed on a bad hook event line: {exc}") from exc
    assert state.session_id == SESSION
    assert [e.name for e in state.hook_events] == ["SessionStart"]
    out = await c.restart("warm", continuation="go on")
    assert out["mode"] == "warm"


async def test_a_huge_hook_event_line_is_not_read_whole(start_shim) -> None:
    shim = await start_shim()
    c = shim.client
    await until(lambda: c.state(), lambda s: s.alive, what="alive")
    proc = psutil.Process(shim.proc.pid)
    before = proc.memory_info().rss
    huge = 64 * 1024 * 1024
    events = shim.state_dir / "hook-events.jsonl"
    with events.open("a") as fh:
        fh.write('{"hook_event_name": "Stop", "message": "')
        block = "x" * (1 << 20)
        for _ in range(huge >> 20):
            fh.write(block)
        fh.write('"}\n')
        fh.write(json.dumps({"hook_event_name": "SessionStart", "session_id": SESSION}) + "\n")
    state = await c.state()
    assert state.session_id == SESSION
    grown = proc.memory_info().rss - before
    assert grown < huge // 4, f"the shim grew by {grown >> 20} MiB reading a {huge >> 20} MiB line"
