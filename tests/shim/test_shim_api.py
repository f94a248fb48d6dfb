"""The shim over real tmux with the simulated agent: state, send, restart, stop, auth, SIGTERM."""

from __future__ import annotations

import asyncio
import math
import re
import subprocess
import time
from datetime import UTC, datetime, timedelta

import aiohttp
import psutil
import pytest
import yaml
from loopphase.core.patterns import ACTIVE_RE, FATAL_RE, LIMIT_RE, WAIT_RE
from loopphase.shim.client import ShimClient, ShimError, to_observation
from loopphase.shim.protocol import ShimState

from tests.shim.conftest import agent_processes, tmux_server_pid, until

pytestmark = pytest.mark.timeout(60)

RESET_RE = re.compile(r"resets (\d{1,2})(?::(\d{2}))?(am|pm)")


def expected_clock(moment: datetime) -> tuple[int, int]:
    """(hour, minute) of ``moment`` rounded up to the minute, 24h."""
    up = datetime.fromtimestamp(math.ceil(moment.timestamp() / 60) * 60, tz=UTC)
    return up.hour, up.minute


def banner_clock(pane: str) -> tuple[int, int]:
    matches = RESET_RE.findall(pane)
    assert matches, pane
    hour, minute, half = matches[-1]
    h = int(hour) % 12 + (12 if half == "pm" else 0)
    return h, int(minute or 0)


async def test_state_follows_scenario(start_shim) -> None:
    shim = await start_shim(phase="flow")
    c = shim.client
    st = await until(lambda: c.state(), lambda s: bool(ACTIVE_RE.search(s.pane)), what="active")
    assert st.alive and st.pid and st.phase_id == "flow" and st.phase_index == 0
    assert st.mode == "cold" and st.restarts == 0 and st.backend == "sim"
    assert "esc to interrupt" in st.pane

    before = datetime.now(UTC)
    st = await until(lambda: c.state(), lambda s: bool(LIMIT_RE.search(s.pane)), what="limit")
    after = datetime.now(UTC)
    assert not ACTIVE_RE.search(st.pane), st.pane
    # The reset time shown is now + 120 s rounded up to the minute (banner printed in between).
    allowed = {expected_clock(before + timedelta(seconds=120)),
               expected_clock(after + timedelta(seconds=120))}
    assert banner_clock(st.pane) in allowed, (st.pane, allowed)

    # Limited until a line arrives after the lift: then the declared wait is printed.
    result = await c.send("please continue now")
    assert result.accepted, result
    st = await until(lambda: c.state(), lambda s: bool(WAIT_RE.search(s.pane)), what="wait")
    until_ts = datetime.fromisoformat(WAIT_RE.search(st.pane).group(1).replace("Z", "+00:00"))
    assert timedelta(seconds=20) < until_ts - datetime.now(UTC) < timedelta(seconds=40)
    assert st.seconds_since_change is not None and st.last_change_at is not None


async def test_fatal_then_dead_after_exit(start_shim) -> None:
    shim = await start_shim(phase="fatal")
    c = shim.client
    st = await until(lambda: c.state(), lambda s: bool(FATAL_RE.search(s.pane)), what="fatal")
    assert st.alive and not ACTIVE_RE.search(st.pane.split("cannot be modified")[-1])

    out = await c.restart("cold", phase_id="quick-exit", phase_index=1)
    assert out["mode"] == "cold" and out["pid"]
    st = await until(lambda: c.state(), lambda s: not s.alive, what="dead")
    # tmux 3.3a records the exit status only when it reaps before the pty closes: best effort.
    assert st.exit_status in (3, None) and st.pid is None and "bye soon" in st.pane
    assert st.phase_id == "quick-exit" and st.phase_index == 1 and st.restarts == 1
    obs = to_observation("builder", st, None)
    assert obs.present and not obs.alive and obs.phase_index == 1
    sent = await c.send("anyone there")
    assert not sent.accepted and "not running" in sent.detail


async def test_send_arrives_exactly_once_and_concurrent_send_409(start_shim) -> None:
    shim = await start_shim()
    c = shim.client
    await until(lambda: c.state(), lambda s: s.pane.rstrip().endswith(">"), what="prompt")

    results = await asyncio.gather(
        c.send("first ping from the test"), c.send("second ping from the test"),
        return_exceptions=True,
    )
    ok = [r for r in results if not isinstance(r, BaseException)]
    busy = [r for r in results if isinstance(r, ShimError)]
    assert len(ok) == 1 and ok[0].accepted, results
    assert len(busy) == 1 and busy[0].status == 409, results

    again = await c.send("third ping")
    assert again.accepted
    texts = [r["text"] for r in shim.inputs()]
    assert sorted(texts) == sorted(
        [t for t in ("first ping from the test", "second ping from the test") if t in texts]
        + ["third ping"]
    )
    assert len(texts) == 2 and texts[-1] == "third ping", texts
    assert len(set(texts)) == len(texts)


async def test_restart_prompts_and_never_two_agents(start_shim) -> None:
    shim = await start_shim(kickoff="the cold kickoff", continuation="default continuation")
    c = shim.client

    async def prompts() -> list[tuple[str, str]]:
        return [(r["mode"], r["text"]) for r in shim.inputs("argv-prompt")]

    assert await until(prompts, bool, what="kickoff logged") == [("cold", "the cold kickoff")]

    peak = 0
    sampling = True

    async def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, len(await asyncio.to_thread(agent_processes, shim.socket_name)))
            await asyncio.sleep(0.01)

    sampler = asyncio.create_task(sample())
    try:
        old_pid = (await c.state()).pid
        out = await c.restart("warm", continuation="carry on with gate 2")
        assert out["mode"] == "warm" and out["pid"] != old_pid
        assert not psutil.pid_exists(old_pid) or psutil.Process(old_pid).status() == "zombie"
        await until(prompts, lambda p: len(p) == 2, what="warm start logged")
        await c.restart("cold", kickoff="a fresh kickoff")
        await until(prompts, lambda p: len(p) == 3, what="cold start logged")
        await c.restart("warm")  # falls back to --continuation-text
        await until(prompts, lambda p: len(p) == 4, what="second warm start logged")
    finally:
        sampling = False
        await sampler
    assert peak == 1, peak
    assert await prompts() == [
        ("cold", "the cold kickoff"),
        ("warm", "carry on with gate 2"),
        ("cold", "a fresh kickoff"),
        ("warm", "default continuation"),
    ]
    st = await c.state()
    assert st.restarts == 3 and st.mode == "warm"
    assert len(agent_processes(shim.socket_name)) == 1

    # A warm restart without a continuation prompt is refused and kills nothing.
    with pytest.raises(ShimError) as err:
        await c.restart("warm", continuation="  ")
    assert err.value.status == 400 and "continuation" in str(err.value)
    assert (await c.state()).pid == st.pid

    await c.stop()
    st = await until(lambda: c.state(), lambda s: not s.alive, what="stopped")
    assert agent_processes(shim.socket_name) == []
    await c.restart("cold")
    await until(lambda: c.state(), lambda s: s.alive, what="alive again")


async def test_auth_and_malformed_requests(start_shim) -> None:
    shim = await start_shim("--no-start")
    url = f"{shim.url}/v1"
    good = {"Authorization": f"Bearer {shim.token}"}
    async with aiohttp.ClientSession() as http:
        async def call(method: str, path: str, headers=None, **kw) -> tuple[int, dict]:
            async with http.request(method, url + path, headers=headers or {}, **kw) as r:
                return r.status, await r.json(content_type=None)

        assert await call("GET", "/health") == (200, {"ok": True})
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": shim.token},
                        {"Authorization": f"Basic {shim.token}"}):
            for method, path in (("GET", "/state"), ("POST", "/send"), ("POST", "/restart"),
                                 ("POST", "/stop")):
                status, body = await call(method, path, headers)
                assert status == 401 and "token" in body["error"], (method, path, headers)

        bad = [
            ("/send", b"{not json", "JSON"),
            ("/send", b"[1, 2]", "object"),
            ("/send", b"{}", "text"),
            ("/send", b'{"text": ""}', "text"),
            ("/send", b'{"text": "a\\nb"}', "single line"),
            ("/send", b'{"text": "' + b"x" * 4001 + b'"}', "at most 4000"),
            ("/send", b'{"text": "hi", "submit": "C-c"}', "submit"),
            ("/send", b'{"text": "hi\\u001b[A"}', "control"),
            ("/send", b'{"text": "hi\\u007f"}', "U+007F"),  # DEL: a backspace on terminals
            ("/send", b'{"text": "hi\\u009b2J"}', "U+009B"),  # C1 CSI
            ("/restart", b'{"mode": "hot"}', "mode"),
            ("/restart", b'{"mode": "cold", "phaseIndex": "1"}', "phaseIndex"),
            ("/restart", b'{"mode": "cold", "phaseId": "a b"}', "phaseId"),
            ("/restart", b'{"mode": "cold", "kickoff": 5}', "kickoff"),
        ]
        for path, data, word in bad:
            status, body = await call("POST", path, good, data=data)
            assert status == 400 and word in body["error"], (path, data[:40], body)
        status, body = await call("GET", "/state?lines=abc", good)
        assert status == 400 and "lines" in body["error"]
        status, body = await call("GET", "/nowhere", good)
        assert status == 404 and "error" in body

    st = await shim.client.state()
    assert not st.alive and st.restarts == 0  # --no-start: idle, nothing ran
    assert shim.inputs("argv-prompt") == []


async def test_sigterm_leaves_nothing_behind(start_shim) -> None:
    shim = await start_shim()
    st = await until(lambda: shim.client.state(), lambda s: s.alive, what="alive")
    server = tmux_server_pid(shim.socket_name)
    assert server and st.pid
    tree = [psutil.Process(server), *psutil.Process(server).children(recursive=True)]
    assert st.pid in [p.pid for p in tree]
    assert shim.terminate() == 0
    gone, alive = psutil.wait_procs(tree, timeout=5)
    assert not [p for p in alive if p.status() != psutil.STATUS_ZOMBIE], alive
    ls = subprocess.run(["tmux", "-L", shim.socket_name, "ls"], capture_output=True,
                        timeout=5, check=False)
    assert ls.returncode != 0
    assert "shutdown complete" in shim.log_path.read_text()


async def test_client_errors_are_shim_errors() -> None:
    client = ShimClient("http://127.0.0.1:9", "t", timeout=1.0)
    try:
        assert await client.health() is False
        with pytest.raises(ShimError):
            await client.state()
    finally:
        await client.close()
    obs = to_observation("adversary", None, "connection refused")
    assert not obs.present and obs.error == "connection refused"


def test_state_round_trips_camel_case() -> None:
    st = ShimState(version="1", role="builder", backend="sim", phase_index=2,
                   started_at=datetime(2026, 1, 1, tzinfo=UTC))
    wire = st.wire()
    assert wire["phaseIndex"] == 2 and wire["startedAt"].startswith("2026-01-01T00:00:00")
    assert ShimState.model_validate(wire) == st
    assert time.time() > 0


DIALOG_LINES = (
    "WARNING: Claude Code running in Bypass Permissions mode\n"
    "In Bypass Permissions mode, Claude Code will not ask for your approval.\n"
    "❯ 1. No, exit\n"
    "  2. Yes, I accept\n"
    "Enter to confirm · Esc to cancel"
)


async def test_send_into_a_dialog_is_refused_with_409(start_shim, scenario_file) -> None:
    """Issue 11 fault 4: a ping typed into a dialog answers it (Enter picks "No, exit")."""
    steps = [{"say": {"text": DIALOG_LINES}}, {"wait_input": {"match": "dismissed"}},
             {"say": {"text": "dialog answered"}}]
    scenario_file.write_text(yaml.safe_dump({"phases": {"default": steps}}, allow_unicode=True))
    shim = await start_shim()
    c = shim.client
    await until(lambda: c.state(), lambda s: "Enter to confirm" in s.pane, what="dialog drawn")
    with pytest.raises(ShimError) as refused:
        await c.send("loopphase ping: the Builder pushed a gate CLAIM")
    assert refused.value.status == 409 and "dialog" in str(refused.value)
    assert "Bypass Permissions" in str(refused.value)
    assert shim.inputs() == []  # nothing reached the agent
