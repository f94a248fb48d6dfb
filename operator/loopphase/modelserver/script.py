"""Model scripts: per-agent lists of turns, parsed and validated from YAML.

Shape::

    agents:
      builder:                    # routed by URL prefix /agent/builder, or by `keys`
        keys: [sk-builder]        # optional: x-api-key / Bearer values that mean this agent
        system_match: "work/builder"   # optional regex on the system prompt (the CLI states
                                  # its working directory there): for agents sharing one URL
        turns:
          - text: "Reading the plan."
          - text: "WAITING-UNTIL: {now+60}"   # {now+N}: ISO UTC time N s after the answer
          - bash: "git commit -qam 'claim(p1): done' && git push -q"
          - when: "CLAIM|review"   # any turn: wait for a human message matching this regex
            text: "Reviewing."
          - slow: {seconds: 5, text: "thinking slowly"}
          - stall: {seconds: 600}
          - limit: {claim: five_hour, reset_in: 60}     # or reset_at: <epoch>;
                                    # round_up: 60 moves the reset to a whole minute, as the
                                    # CLIs state it ("resets 1:57pm")
          - error: overloaded       # or expired_login, prompt_too_long, credit_balance,
                                    # or {status, type, message, headers, times}
          - tool: {name: Write, input: {file_path: x, content: y}}

A turn answers one main request (one that offers tools: the CLI's conversation); requests
without tools (titles, quota checks) get a short harmless answer and never consume a turn. A
``limit`` answers 429 to every request of the agent until its reset, then the next turn
follows. An ``error`` answers ``times`` requests (default 1; retries count). When the turns
run out every main request gets ``done_text``.

Errors: :class:`ScriptError` naming the agent, turn and field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TURN_KINDS = ("text", "bash", "tool", "slow", "stall", "limit", "error")
LIMIT_CLAIMS = ("five_hour", "seven_day", "seven_day_opus", "seven_day_sonnet")
DEFAULT_DONE_TEXT = "Nothing left to do."

# name -> (status, error type, message); the texts are the API's own words.
ERROR_PRESETS: dict[str, tuple[int, str, str]] = {
    "overloaded": (529, "overloaded_error", "Overloaded"),
    "expired_login": (
        401, "authentication_error", "OAuth token has expired. Please obtain a new token or refresh your existing token."
    ),
    "invalid_key": (401, "authentication_error", "invalid x-api-key"),
    "prompt_too_long": (400, "invalid_request_error", "prompt is too long: 215000 tokens > 200000 maximum"),
    "credit_balance": (
        400, "invalid_request_error",
        "Your credit balance is too low to access the Anthropic API. Please go to Plans & Billing to upgrade or purchase credits.",
    ),
    "server_error": (500, "api_error", "Internal server error"),
}


class ScriptError(ValueError):
    """The script is malformed; the message names the agent, the turn and the field."""


@dataclass(frozen=True)
class Turn:
    kind: str
    params: dict[str, Any]
    when: re.Pattern[str] | None = None

    def describe(self) -> str:
        return self.kind if self.when is None else f"{self.kind} (when /{self.when.pattern}/)"


@dataclass(frozen=True)
class AgentScript:
    name: str
    turns: tuple[Turn, ...]
    keys: tuple[str, ...] = ()
    done_text: str = DEFAULT_DONE_TEXT
    system_match: re.Pattern[str] | None = None


@dataclass(frozen=True)
class Script:
    agents: dict[str, AgentScript] = field(default_factory=dict)

    def agent_for_key(self, key: str) -> str | None:
        for agent in self.agents.values():
            if key and key in agent.keys:
                return agent.name
        return None

    def agent_for_system(self, system: str) -> str | None:
        for agent in self.agents.values():
            if agent.system_match is not None and agent.system_match.search(system):
                return agent.name
        return None


def _need(cond: bool, where: str, message: str) -> None:
    if not cond:
        raise ScriptError(f"{where}: {message}")


def _number(value: Any, where: str, name: str) -> float:
    _need(isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0,
          where, f"{name} must be a non-negative number, got {value!r}")
    return float(value)


def parse_turn(raw: Any, where: str) -> Turn:
    _need(isinstance(raw, dict), where, f"a turn is a mapping like {{text: ...}}, got {raw!r}")
    body = dict(raw)
    when_raw = body.pop("when", None)
    when = None
    if when_raw is not None:
        _need(isinstance(when_raw, str) and when_raw != "", where, "when must be a regex string")
        try:
            when = re.compile(when_raw, re.IGNORECASE)
        except re.error as exc:
            raise ScriptError(f"{where}: when is not a valid regex: {exc}") from exc
    kinds = [k for k in body if k in TURN_KINDS]
    unknown = [k for k in body if k not in TURN_KINDS]
    _need(not unknown, where, f"unknown key(s) {unknown}; a turn has one of {', '.join(TURN_KINDS)} (and optional when)")
    _need(len(kinds) == 1, where, f"a turn has exactly one of {', '.join(TURN_KINDS)}, got {kinds or 'none'}")
    kind = kinds[0]
    value = body[kind]
    params: dict[str, Any]
    if kind == "text":
        _need(isinstance(value, str), where, "text must be a string")
        params = {"text": value}
    elif kind == "bash":
        _need(isinstance(value, str) and value.strip() != "", where, "bash must be a command string")
        params = {"command": value}
    elif kind == "tool":
        _need(isinstance(value, dict) and isinstance(value.get("name"), str)
              and isinstance(value.get("input", {}), dict), where,
              "tool needs {name: ToolName, input: {...}}")
        params = {"name": value["name"], "input": value.get("input", {}), "text": value.get("text", "")}
    elif kind == "slow":
        _need(isinstance(value, dict), where, "slow needs {seconds, text}")
        params = {"seconds": _number(value.get("seconds", 5), where, "slow.seconds"),
                  "text": str(value.get("text", "Working on it, slowly."))}
    elif kind == "stall":
        value = value or {}
        _need(isinstance(value, dict), where, "stall needs {seconds}")
        params = {"seconds": _number(value.get("seconds", 3600), where, "stall.seconds")}
    elif kind == "limit":
        _need(isinstance(value, dict), where, "limit needs {claim, reset_in | reset_at}")
        claim = value.get("claim", "five_hour")
        _need(claim in LIMIT_CLAIMS, where, f"limit.claim must be one of {', '.join(LIMIT_CLAIMS)}, got {claim!r}")
        _need(("reset_in" in value) != ("reset_at" in value), where, "limit needs exactly one of reset_in (seconds) or reset_at (epoch)")
        params = {"claim": claim, "round_up": _number(value.get("round_up", 0), where, "limit.round_up")}
        if "reset_in" in value:
            params["reset_in"] = _number(value["reset_in"], where, "limit.reset_in")
        else:
            params["reset_at"] = _number(value["reset_at"], where, "limit.reset_at")
    else:  # error
        if isinstance(value, str):
            _need(value in ERROR_PRESETS, where, f"error preset must be one of {', '.join(ERROR_PRESETS)}, got {value!r}")
            status, etype, message = ERROR_PRESETS[value]
            params = {"status": status, "type": etype, "message": message, "headers": {}, "times": 1}
        else:
            _need(isinstance(value, dict), where, "error is a preset name or {status, type, message, headers, times}")
            preset = value.get("preset")
            if preset is not None:
                _need(preset in ERROR_PRESETS, where, f"error.preset must be one of {', '.join(ERROR_PRESETS)}")
                status, etype, message = ERROR_PRESETS[preset]
            else:
                status, etype, message = 500, "api_error", "Internal server error"
            status = value.get("status", status)
            _need(isinstance(status, int) and 400 <= status <= 599, where, "error.status must be an HTTP error status (400-599)")
            headers = value.get("headers", {})
            _need(isinstance(headers, dict), where, "error.headers must be a mapping")
            times = value.get("times", 1)
            _need(isinstance(times, int) and times >= 1, where, "error.times must be a positive integer")
            params = {"status": status, "type": str(value.get("type", etype)),
                      "message": str(value.get("message", message)),
                      "headers": {str(k): str(v) for k, v in headers.items()}, "times": times}
    return Turn(kind, params, when)


def parse_script(data: Any, source: str = "script") -> Script:
    _need(isinstance(data, dict) and isinstance(data.get("agents"), dict), source,
          "a script is a mapping with an `agents` mapping (agent name -> {turns: [...]})")
    agents: dict[str, AgentScript] = {}
    for name, body in data["agents"].items():
        where = f"{source}: agents.{name}"
        _need(isinstance(name, str) and re.fullmatch(r"[A-Za-z0-9_.-]+", name) is not None, where,
              "agent names are letters, digits, '.', '_' or '-' (they appear in URLs)")
        _need(isinstance(body, dict), where, "needs {turns: [...]}")
        turns_raw = body.get("turns", [])
        _need(isinstance(turns_raw, list), where, "turns must be a list")
        keys = body.get("keys", [])
        _need(isinstance(keys, list) and all(isinstance(k, str) for k in keys), where, "keys must be a list of strings")
        turns = tuple(parse_turn(t, f"{where}.turns[{i}]") for i, t in enumerate(turns_raw))
        system_match = None
        if body.get("system_match") is not None:
            _need(isinstance(body["system_match"], str), where, "system_match must be a regex string")
            try:
                system_match = re.compile(body["system_match"])
            except re.error as exc:
                raise ScriptError(f"{where}: system_match is not a valid regex: {exc}") from exc
        agents[name] = AgentScript(name, turns, tuple(keys), str(body.get("done_text", DEFAULT_DONE_TEXT)),
                                   system_match)
    return Script(agents)


def load_script(source: str | Path) -> Script:
    """A path to a YAML file, or YAML text (anything with a newline)."""
    text = str(source)
    if "\n" not in text:
        path = Path(text)
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise ScriptError(f"cannot read script {path}: {exc}") from exc
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScriptError(f"script is not valid YAML: {exc}") from exc
    return parse_script(data, str(source) if "\n" not in str(source) else "script")
