"""The script engine: which answer the next request of an agent gets.

One :class:`AgentState` per agent; :meth:`Engine.answer` is called with what the server read
from the request and the time (``now``, epoch seconds) and returns the :class:`Answer` plus a
short label for the request log. Thread-safe (one lock): the server may call it from its
loop while a test reads the log from another thread.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from loopphase.modelserver.script import Script, Turn
from loopphase.modelserver.wire import BASH_TOOL, Answer

SIDE_TEXT = "OK"
WAITING_TEXT = "Waiting for the next message."
LIMIT_MESSAGES = {
    "five_hour": "You've hit your 5-hour limit",
    "seven_day": "You've hit your weekly limit",
    "seven_day_opus": "You've hit your Opus limit",
    "seven_day_sonnet": "You've hit your Sonnet limit",
}
# The unified headers name windows by short codes besides the claim.
CLAIM_CODES = {"five_hour": "5h", "seven_day": "7d", "seven_day_opus": "7d_opus", "seven_day_sonnet": "7d_sonnet"}


NOW_TOKEN = re.compile(r"\{now\+(\d+)\}")


def render_now(text: str, now: float) -> str:
    """``{now+N}`` -> the ISO-8601 UTC time N seconds after the answer (e.g. WAITING-UNTIL)."""
    def iso(match: re.Match[str]) -> str:
        stamp = datetime.fromtimestamp(now + int(match.group(1)), UTC)
        return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")
    return NOW_TOKEN.sub(iso, text)


@dataclass(frozen=True)
class RequestFacts:
    """What the engine needs from one request."""

    api: str                   # "anthropic" | "openai"
    main: bool                 # offers tools: the agent's conversation, not a side request
    human_text: str | None     # text of the newest user message when it is typed text, not a tool result


@dataclass
class AgentState:
    index: int = 0
    error_count: int = 0
    limit_until: float | None = None


@dataclass
class Engine:
    script: Script
    states: dict[str, AgentState] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def load(self, script: Script) -> None:
        """Add or replace agents; a replaced agent starts its turns again."""
        with self.lock:
            merged = dict(self.script.agents)
            merged.update(script.agents)
            self.script = Script(merged)
            for name in script.agents:
                self.states[name] = AgentState()

    def position(self, agent: str) -> int:
        with self.lock:
            return self.states.setdefault(agent, AgentState()).index

    def answer(self, agent: str, facts: RequestFacts, now: float) -> tuple[Answer, str]:
        with self.lock:
            script = self.script.agents[agent]
            state = self.states.setdefault(agent, AgentState())
            if state.limit_until is not None:
                if now < state.limit_until:
                    return self._limit(script.turns[state.index], state.limit_until), "limit (active)"
                state.limit_until = None
                state.index += 1
            if not facts.main:
                return Answer(text=SIDE_TEXT), "side"
            if state.index >= len(script.turns):
                return Answer(text=script.done_text), "done"
            turn = script.turns[state.index]
            if turn.when is not None and not (facts.human_text and turn.when.search(facts.human_text)):
                return Answer(text=WAITING_TEXT), f"waiting for /{turn.when.pattern}/"
            label = f"turn {state.index}: {turn.kind}"
            if turn.kind == "limit":
                reset = float(turn.params.get("reset_at") or now + turn.params["reset_in"])
                step = turn.params.get("round_up") or 0
                if step:
                    reset = -(-reset // step) * step
                state.limit_until = reset
                return self._limit(turn, state.limit_until), label
            if turn.kind == "error":
                state.error_count += 1
                if state.error_count >= turn.params["times"]:
                    state.error_count = 0
                    state.index += 1
                return self._error(turn), label
            state.index += 1
            return self._reply(turn, facts.api, now), label

    @staticmethod
    def _reply(turn: Turn, api: str, now: float) -> Answer:
        p = turn.params
        if turn.kind == "text":
            return Answer(text=render_now(p["text"], now))
        if turn.kind == "bash":
            return Answer(tool_name=BASH_TOOL[api],
                          tool_input={"command": p["command"], "description": "Run a scripted command"})
        if turn.kind == "tool":
            return Answer(text=p["text"], tool_name=p["name"], tool_input=p["input"])
        if turn.kind == "slow":
            return Answer(text=p["text"], slow_seconds=p["seconds"])
        if turn.kind == "stall":
            return Answer(stall_seconds=p["seconds"])
        raise ValueError(f"not a reply turn: {turn.kind}")

    @staticmethod
    def _error(turn: Turn) -> Answer:
        p = turn.params
        return Answer(status=p["status"], error_type=p["type"], error_message=p["message"], headers=p["headers"])

    @staticmethod
    def _limit(turn: Turn, reset: float) -> Answer:
        claim = turn.params["claim"]
        code = CLAIM_CODES[claim]
        epoch = str(int(reset))
        headers = {
            "anthropic-ratelimit-unified-status": "rejected",
            "anthropic-ratelimit-unified-reset": epoch,
            "anthropic-ratelimit-unified-representative-claim": claim,
            f"anthropic-ratelimit-unified-{code}-status": "rejected",
            f"anthropic-ratelimit-unified-{code}-reset": epoch,
            f"anthropic-ratelimit-unified-{code}-utilization": "1.0",
            "anthropic-ratelimit-unified-fallback-percentage": "0.5",
            "anthropic-ratelimit-unified-overage-status": "rejected",
            "anthropic-ratelimit-unified-overage-disabled-reason": "org_level_disabled",
        }
        return Answer(status=429, error_type="rate_limit_error",
                      error_message=f"{LIMIT_MESSAGES[claim]}. Please try again later.", headers=headers)


def newest_turn_message(body: dict[str, Any]) -> dict[str, Any] | None:
    """The newest user/assistant/tool message (Claude Code appends ``system`` ones after it)."""
    for message in reversed(body.get("messages") or []):
        if isinstance(message, dict) and message.get("role") in ("user", "assistant", "tool"):
            return message
    return None


def _texts(content: Any) -> str | None:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    if any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
        return None
    parts = [str(b.get("text", "")) for b in content if isinstance(b, dict) and b.get("type") == "text"]
    # Claude Code wraps its own context (git status, attribution) in system-reminder blocks.
    return "\n".join(p for p in parts if not p.lstrip().startswith("<system-reminder>"))


def human_text(body: dict[str, Any]) -> str | None:
    """Text typed by the human (or the supervisor) in the newest message; None for tool results."""
    message = newest_turn_message(body)
    if message is None or message.get("role") != "user":
        return None
    return _texts(message.get("content"))
