"""The shim's HTTP API payloads, shared by the server and ``ShimClient``.

Wire format is JSON with camelCase keys; Python attributes are snake_case.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from loopphase.core.typeable import MAX_TYPED_CHARS

API_PREFIX = "/v1"
MAX_SEND_CHARS = MAX_TYPED_CHARS
MAX_STATE_LINES = 2000
DEFAULT_STATE_LINES = 60


class WireModel(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="ignore")

    def wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True)


class HookEventInfo(WireModel):
    name: str
    time: datetime | None = None
    session_id: str | None = None
    error_type: str | None = None
    message: str | None = None


class ShimState(WireModel):
    version: str
    role: str
    backend: str
    phase_index: int | None = None
    phase_id: str | None = None
    alive: bool = False
    pid: int | None = None
    started_at: datetime | None = None
    mode: Literal["warm", "cold"] | None = None
    restarts: int = 0
    exit_status: int | None = None
    pane: str = ""
    last_change_at: datetime | None = None
    seconds_since_change: float | None = None
    session_id: str | None = None
    hook_events: list[HookEventInfo] = []
    send_in_flight: bool = False
    # The whole configuration error the last start was refused with (a missing scenario, an
    # empty kickoff, ...): the agent will not start until the configuration changes.
    start_error: str | None = None


class SendResult(WireModel):
    accepted: bool
    detail: str = ""
    tries: int = 0


class RestartResult(WireModel):
    pid: int | None
    started_at: datetime | None
    mode: Literal["warm", "cold"]
