"""The scripted model endpoint over real HTTP (aiohttp client against the threaded server)."""

from __future__ import annotations

import asyncio
import json
import time

import aiohttp
import pytest
from loopphase.modelserver.script import ScriptError, load_script
from loopphase.modelserver.server import ModelServer

SCRIPT = """
agents:
  builder:
    keys: [sk-builder-key]
    turns:
      - text: "Hello there."
      - bash: "git commit -qam 'claim(p1): x'"
      - when: "CLAIM"
        text: "Reviewing."
      - limit: {claim: seven_day, reset_in: 0.5}
      - error: {preset: overloaded, times: 2}
      - slow: {seconds: 0.6, text: "slowly slowly"}
  other:
    turns:
      - error: credit_balance
      - stall: {seconds: 30}
"""

TOOLS = [{"name": "Bash", "input_schema": {"type": "object"}}]


def body(text: str | None = None, tool_result: str | None = None, stream: bool = True, tools: bool = True) -> dict:
    content: list[dict] = [{"type": "text", "text": "<system-reminder>CLAIM in git status</system-reminder>"}]
    if text is not None:
        content.append({"type": "text", "text": text})
    if tool_result is not None:
        content = [{"type": "tool_result", "tool_use_id": "t1", "content": tool_result}]
    b = {"model": "claude-x", "max_tokens": 100, "stream": stream,
         "messages": [{"role": "user", "content": content}, {"role": "system", "content": "ctx"}]}
    if tools:
        b["tools"] = TOOLS
    return b


def stream_text(raw: str) -> str:
    return "".join(e["delta"].get("text", "") for e in sse_events(raw) if e["type"] == "content_block_delta")


def sse_events(raw: str) -> list[dict]:
    return [json.loads(line[6:]) for line in raw.splitlines() if line.startswith("data: ") and line[6:] != "[DONE]"]


@pytest.fixture(scope="module")
def server():
    with ModelServer(load_script(SCRIPT)) as srv:
        yield srv


async def post(url: str, payload: dict, headers: dict | None = None) -> tuple[int, dict, str]:
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession() as session, session.post(
        url, json=payload, headers=headers or {}, timeout=timeout
    ) as resp:
        return resp.status, dict(resp.headers), await resp.text()


async def test_builder_script_end_to_end(server: ModelServer) -> None:
    url = server.base_url("builder") + "/v1/messages"
    status, _, raw = await post(url, body("start"))
    assert status == 200
    events = sse_events(raw)
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "message_stop"
    assert stream_text(raw) == "Hello there."

    # a side request (no tools) never consumes a turn
    status, _, raw = await post(url, body("title please", stream=False, tools=False))
    assert json.loads(raw)["content"][0]["text"] == "OK"

    status, _, raw = await post(url, body("go on"))
    events = sse_events(raw)
    start = [e for e in events if e["type"] == "content_block_start"][0]["content_block"]
    assert start["type"] == "tool_use" and start["name"] == "Bash"
    args = "".join(e["delta"].get("partial_json", "") for e in events if e["type"] == "content_block_delta")
    assert json.loads(args)["command"].startswith("git commit")
    assert [e for e in events if e["type"] == "message_delta"][0]["delta"]["stop_reason"] == "tool_use"

    # the tool result does not match `when: CLAIM` (the reminder block does not count): waiting
    _, _, raw = await post(url, body(tool_result="[main abc] claim"))
    assert stream_text(raw).startswith("Waiting")
    assert server.position("builder") == 2
    _, _, raw = await post(url, body("CLAIM landed: review it"), headers={})
    assert server.position("builder") == 3

    # the limit: 429 with the unified headers, for every request, until the reset
    before = time.time()
    status, headers, raw = await post(url, body("next"))
    assert status == 429
    assert headers["anthropic-ratelimit-unified-status"] == "rejected"
    assert headers["anthropic-ratelimit-unified-representative-claim"] == "seven_day"
    assert before - 1 <= int(headers["anthropic-ratelimit-unified-reset"]) <= before + 2
    assert json.loads(raw)["error"]["type"] == "rate_limit_error"
    status, _, _ = await post(url, body("title", tools=False))
    assert status == 429

    deadline = time.time() + 5
    while time.time() < deadline and server.position("builder") == 3:
        status, _, _ = await post(url, body("retry"))
        if status != 429:
            break
        time.sleep(0.2)
    # after the reset the next turn follows: overloaded twice (retries count), then the slow one
    assert status == 529
    status, _, raw = await post(url, body("retry"))
    assert status == 529 and json.loads(raw)["error"]["type"] == "overloaded_error"
    began = time.monotonic()
    status, _, raw = await post(url, body("retry"))
    assert status == 200 and time.monotonic() - began >= 0.5
    _, _, raw = await post(url, body("more"))
    assert stream_text(raw) == "Nothing left to do."

    log = server.requests("builder")
    assert [r.main for r in log].count(False) == 2
    assert log[0].human_text == "start"
    assert log[3].tool_results == ["[main abc] claim"]


async def test_routing_by_key_errors_stall_and_openai(server: ModelServer) -> None:
    # routing by API key without the prefix
    status, _, raw = await post(server.url + "/v1/messages", body("hi", tools=False, stream=False),
                                headers={"x-api-key": "sk-builder-key"})
    assert status in (200, 429)
    assert server.requests("builder")[-1].human_text == "hi"
    # unknown agent: a 404 naming the known ones
    status, _, raw = await post(server.url + "/agent/nobody/v1/messages", body("hi"))
    assert status == 404 and "builder" in raw and "other" in raw

    url = server.base_url("other") + "/v1/chat/completions"
    oa = {"model": "m", "stream": True, "tools": [{"type": "function", "function": {"name": "bash"}}],
          "messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "hi"}]}
    status, _, raw = await post(url, oa)
    assert status == 400 and "credit balance is too low" in raw
    # the stall: headers come, then nothing within the client's patience
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession() as session, session.post(url, json=oa, timeout=timeout) as resp:
        assert resp.status == 200
        with pytest.raises(TimeoutError):
            await _read_with_timeout(resp, 1.0)


async def _read_with_timeout(resp: aiohttp.ClientResponse, seconds: float) -> bytes:
    data = b""
    async with asyncio.timeout(seconds):
        while True:
            chunk = await resp.content.readany()
            if not chunk:
                return data
            data += chunk


async def test_openai_tool_call_stream() -> None:
    script = load_script("agents:\n  oc:\n    turns:\n      - bash: 'echo hi'\n      - text: done\n")
    with ModelServer(script) as srv:
        oa = {"model": "m", "stream": True, "tools": [{"type": "function", "function": {"name": "bash"}}],
              "messages": [{"role": "user", "content": "go"}]}
        _, _, raw = await post(srv.url + "/v1/chat/completions", oa)
        chunks = sse_events(raw)
        calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in chunks if c["choices"][0]["delta"].get("tool_calls")]
        assert calls[0]["function"]["name"] == "bash"
        assert json.loads("".join(c["function"]["arguments"] for c in calls))["command"] == "echo hi"
        assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
        assert raw.rstrip().endswith("data: [DONE]")
        oa["messages"].append({"role": "tool", "tool_call_id": "c", "content": "hi"})
        _, _, raw = await post(srv.url + "/v1/chat/completions", {**oa, "stream": False})
        assert json.loads(raw)["choices"][0]["message"]["content"] == "done"
        assert srv.requests("oc")[-1].tool_results == ["hi"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("agents: {a: {turns: [{bogus: 1}]}}", "agents.a.turns[0]: unknown key(s) ['bogus']"),
        ("agents: {a: {turns: [{text: a, bash: b}]}}", "exactly one of"),
        ("agents: {a: {turns: [{limit: {claim: monthly, reset_in: 3}}]}}", "limit.claim must be one of"),
        ("agents: {a: {turns: [{limit: {claim: five_hour}}]}}", "exactly one of reset_in"),
        ("agents: {a: {turns: [{error: nope}]}}", "error preset must be one of"),
        ("agents: {a: {turns: [{when: '(', text: x}]}}", "when is not a valid regex"),
        ("agents: {'a b': {turns: []}}", "agent names are letters"),
        ("turns: []", "a script is a mapping with an `agents` mapping"),
    ],
)
def test_bad_scripts_name_the_place(text: str, fragment: str) -> None:
    with pytest.raises(ScriptError) as info:
        load_script(text + "\n")
    assert fragment in str(info.value)


def test_engine_rounds_resets_renders_now_and_routes_by_system_prompt() -> None:
    from loopphase.modelserver.engine import Engine, RequestFacts
    from loopphase.modelserver.server import ModelApp, system_text

    script = load_script("""
agents:
  a:
    system_match: "work/a\\\\b"
    turns:
      - text: "WAITING-UNTIL: {now+35}"
      - limit: {claim: five_hour, reset_in: 10, round_up: 60}
  b: {system_match: "work/b\\\\b", turns: []}
""")
    engine = Engine(script)
    facts = RequestFacts("anthropic", True, "go")
    answer, _ = engine.answer("a", facts, 1_000_000_000.0)
    assert answer.text == "WAITING-UNTIL: 2001-09-09T01:47:15Z"
    answer, _ = engine.answer("a", facts, 1_000_000_000.0)
    assert answer.status == 429
    assert answer.headers["anthropic-ratelimit-unified-reset"] == str(1_000_000_020)  # next whole minute
    body = {"system": [{"type": "text", "text": "Primary working directory: /x/work/b"}], "messages": []}
    assert script.agent_for_system(system_text(body)) == "b"
    assert script.agent_for_system("Primary working directory: /x/work/bb") is None
    assert ModelApp(script).engine.script is script
