"""Wire formats: a scripted answer as Anthropic Messages / OpenAI chat-completions bytes.

Pure functions from an :class:`Answer` to response bodies (JSON objects or SSE event
strings); the server decides when to send them. Token counts are rough (characters / 4).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

# Claude Code calls its shell tool "Bash", opencode "bash"; both take {command, description}.
BASH_TOOL = {"anthropic": "Bash", "openai": "bash"}


@dataclass(frozen=True)
class Answer:
    """What to say: text and/or one tool call; or an error status with headers."""

    text: str = ""
    tool_name: str | None = None
    tool_input: dict[str, Any] = field(default_factory=dict)
    status: int = 200
    error_type: str = ""
    error_message: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    slow_seconds: float = 0.0
    stall_seconds: float = 0.0

    @property
    def is_error(self) -> bool:
        return self.status >= 400


def sse(event: str, data: dict[str, Any]) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


def chunks(text: str, pieces: int) -> list[str]:
    """``text`` split into at most ``pieces`` consecutive parts (no empty parts)."""
    if not text:
        return []
    size = max(1, -(-len(text) // max(1, pieces)))
    return [text[i:i + size] for i in range(0, len(text), size)]


# ---- Anthropic ----------------------------------------------------------------------------

def anthropic_error(answer: Answer) -> dict[str, Any]:
    return {"type": "error", "error": {"type": answer.error_type, "message": answer.error_message},
            "request_id": f"req_{uuid.uuid4().hex[:24]}"}


def _anthropic_content(answer: Answer) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = []
    if answer.text:
        content.append({"type": "text", "text": answer.text})
    if answer.tool_name:
        content.append({"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}",
                        "name": answer.tool_name, "input": answer.tool_input})
    return content


def anthropic_message(answer: Answer, model: str, input_tokens: int) -> dict[str, Any]:
    content = _anthropic_content(answer)
    return {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant",
        "model": model, "content": content,
        "stop_reason": "tool_use" if answer.tool_name else "end_turn", "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": tokens(answer.text) + 5,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }


def anthropic_stream_head(model: str, input_tokens: int) -> str:
    message = {
        "id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": model,
        "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                  "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
    }
    return sse("message_start", {"type": "message_start", "message": message}) + sse("ping", {"type": "ping"})


def anthropic_stream_body(answer: Answer, pieces: int = 4) -> list[str]:
    """The events after the head, one string per event (so a slow turn can pace them)."""
    events: list[str] = []
    index = 0
    if answer.text:
        events.append(sse("content_block_start", {"type": "content_block_start", "index": index,
                                                  "content_block": {"type": "text", "text": ""}}))
        for part in chunks(answer.text, pieces):
            events.append(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                      "delta": {"type": "text_delta", "text": part}}))
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
        index += 1
    if answer.tool_name:
        block = {"type": "tool_use", "id": f"toolu_{uuid.uuid4().hex[:24]}", "name": answer.tool_name, "input": {}}
        events.append(sse("content_block_start", {"type": "content_block_start", "index": index, "content_block": block}))
        for part in chunks(json.dumps(answer.tool_input), 3):
            events.append(sse("content_block_delta", {"type": "content_block_delta", "index": index,
                                                      "delta": {"type": "input_json_delta", "partial_json": part}}))
        events.append(sse("content_block_stop", {"type": "content_block_stop", "index": index}))
    stop = "tool_use" if answer.tool_name else "end_turn"
    events.append(sse("message_delta", {"type": "message_delta",
                                        "delta": {"stop_reason": stop, "stop_sequence": None},
                                        "usage": {"output_tokens": tokens(answer.text) + 5}}))
    events.append(sse("message_stop", {"type": "message_stop"}))
    return events


# ---- OpenAI chat completions --------------------------------------------------------------

def openai_error(answer: Answer) -> dict[str, Any]:
    return {"error": {"message": answer.error_message, "type": answer.error_type, "code": answer.status}}


def _chunk(cid: str, model: str, delta: dict[str, Any], finish: str | None = None) -> str:
    body = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return f"data: {json.dumps(body)}\n\n"


def openai_stream(answer: Answer, model: str, input_tokens: int, pieces: int = 4) -> list[str]:
    cid = f"chatcmpl-{uuid.uuid4().hex[:24]}"
    events = [_chunk(cid, model, {"role": "assistant", "content": ""})]
    for part in chunks(answer.text, pieces):
        events.append(_chunk(cid, model, {"content": part}))
    if answer.tool_name:
        call = {"index": 0, "id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                "function": {"name": answer.tool_name, "arguments": ""}}
        events.append(_chunk(cid, model, {"tool_calls": [call]}))
        for part in chunks(json.dumps(answer.tool_input), 3):
            events.append(_chunk(cid, model, {"tool_calls": [{"index": 0, "function": {"arguments": part}}]}))
    finish = "tool_calls" if answer.tool_name else "stop"
    last = {"id": cid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
            "usage": {"prompt_tokens": input_tokens, "completion_tokens": tokens(answer.text) + 5,
                      "total_tokens": input_tokens + tokens(answer.text) + 5}}
    events.append(f"data: {json.dumps(last)}\n\n")
    events.append("data: [DONE]\n\n")
    return events


def openai_message(answer: Answer, model: str, input_tokens: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": answer.text or None}
    if answer.tool_name:
        message["tool_calls"] = [{"id": f"call_{uuid.uuid4().hex[:24]}", "type": "function",
                                  "function": {"name": answer.tool_name, "arguments": json.dumps(answer.tool_input)}}]
    return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
            "model": model, "choices": [{"index": 0, "message": message,
                                         "finish_reason": "tool_calls" if answer.tool_name else "stop"}],
            "usage": {"prompt_tokens": input_tokens, "completion_tokens": tokens(answer.text) + 5,
                      "total_tokens": input_tokens + tokens(answer.text) + 5}}
