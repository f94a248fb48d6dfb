"""One Kubernetes Event per action: reason = the action's kind, message = rule + reason."""

from __future__ import annotations

from dataclasses import dataclass

from loopphase.core.actions import (
    Action,
    EmitEvent,
    RecreateHost,
    RestartAgent,
    SendText,
    StartAgent,
    StopAgent,
)
from loopphase.outbound import scrub

EVENT_MESSAGE_MAX = 1000


@dataclass(frozen=True)
class EventRecord:
    kind: str
    role: str | None
    message: str
    warning: bool


def action_kind(action: Action) -> str:
    if isinstance(action, EmitEvent):
        return action.kind or "note"
    if isinstance(action, SendText):
        return action.purpose
    if isinstance(action, StartAgent):
        return "start"
    if isinstance(action, RestartAgent):
        return f"restart-{action.mode}"
    if isinstance(action, RecreateHost):
        return "recreate"
    if isinstance(action, StopAgent):
        return "stop"
    return type(action).__name__


def _reason(kind: str) -> str:
    """Event reasons are UpperCamelCase by convention: ``restart-warm`` -> ``RestartWarm``."""
    return "".join(part[:1].upper() + part[1:] for part in kind.replace("_", "-").split("-"))


def event_for(action: Action, ok: bool, detail: str) -> EventRecord:
    kind = action_kind(action)
    who = f"{action.role}: " if action.role else ""
    message = f"{who}[{action.rule}] {action.reason}"
    if not ok:
        message += f" (FAILED: {detail})"
    elif detail and not isinstance(action, EmitEvent):
        message += f" ({detail})"
    warning = (not ok) or (isinstance(action, EmitEvent) and action.warning)
    message = scrub(message)
    if len(message) > EVENT_MESSAGE_MAX:
        message = message[: EVENT_MESSAGE_MAX - 1] + "…"
    return EventRecord(kind=_reason(kind), role=action.role, message=message,
                       warning=warning)
