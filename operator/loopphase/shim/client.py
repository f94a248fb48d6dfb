"""ShimClient: the operator's and local runner's side of the shim API, plus to_observation."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import aiohttp
from pydantic import ValidationError

from loopphase.api.spec import Role
from loopphase.core.observations import AgentObservation, HookEvent
from loopphase.shim.protocol import API_PREFIX, SendResult, ShimState


class ShimError(RuntimeError):
    """The shim could not be reached or refused the request; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ShimClient:
    def __init__(
        self,
        base_url: str,
        token: str,
        timeout: float = 5.0,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._session = session
        self._owns_session = session is None
        # Built once: a state call per agent per tick is the operator's most frequent request.
        self._auth_headers = {"Authorization": f"Bearer {token}"}
        self._timeouts: dict[float, aiohttp.ClientTimeout] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        auth: bool = True,
        timeout: float | None = None,
    ) -> Any:
        url = f"{self.base_url}{API_PREFIX}{path}"
        if params:
            url = f"{url}?{urlencode(params)}"
        total = timeout or self.timeout
        client_timeout = self._timeouts.get(total)
        if client_timeout is None:
            client_timeout = self._timeouts[total] = aiohttp.ClientTimeout(total=total)
        try:
            async with self._get_session().request(
                method,
                url,
                json=body,
                headers=self._auth_headers if auth else None,
                timeout=client_timeout,
            ) as resp:
                try:
                    data = await resp.json(content_type=None)
                except ValueError:
                    data = None
                if resp.status >= 400:
                    detail = data.get("error") if isinstance(data, dict) else None
                    raise ShimError(
                        f"{method} {url}: HTTP {resp.status}: {detail or resp.reason}",
                        status=resp.status,
                    )
                if data is None:
                    raise ShimError(f"{method} {url}: response is not JSON", status=resp.status)
                return data
        except TimeoutError as exc:
            raise ShimError(f"{method} {url}: timed out after {timeout or self.timeout}s") from exc
        except aiohttp.ClientError as exc:
            raise ShimError(f"{method} {url}: {type(exc).__name__}: {exc}") from exc

    async def health(self) -> bool:
        try:
            data = await self._request("GET", "/health", auth=False)
        except ShimError:
            return False
        return bool(isinstance(data, dict) and data.get("ok"))

    async def state(self, lines: int = 60) -> ShimState:
        data = await self._request("GET", "/state", params={"lines": str(lines)})
        try:
            return ShimState.model_validate(data)
        except ValidationError as exc:
            raise ShimError(f"state response malformed: {exc}") from exc

    async def send(self, text: str, submit: str | None = None) -> SendResult:
        body: dict[str, Any] = {"text": text}
        if submit is not None:
            body["submit"] = submit
        # Delivery waits for the input area to clear (up to ~6 s): allow for it.
        data = await self._request("POST", "/send", body, timeout=max(self.timeout, 15.0))
        try:
            return SendResult.model_validate(data)
        except ValidationError as exc:
            raise ShimError(f"send response malformed: {exc}") from exc

    async def restart(
        self,
        mode: str,
        kickoff: str | None = None,
        continuation: str | None = None,
        phase_index: int | None = None,
        phase_id: str | None = None,
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"mode": mode}
        for key, value in (
            ("kickoff", kickoff),
            ("continuation", continuation),
            ("phaseIndex", phase_index),
            ("phaseId", phase_id),
        ):
            if value is not None:
                body[key] = value
        data = await self._request("POST", "/restart", body, timeout=max(self.timeout, 30.0))
        if not isinstance(data, dict):
            raise ShimError("restart response is not an object")
        return data

    async def stop(self) -> None:
        await self._request("POST", "/stop", {}, timeout=max(self.timeout, 30.0))

    async def close(self) -> None:
        if self._owns_session and self._session is not None and not self._session.closed:
            await self._session.close()

    async def __aenter__(self) -> ShimClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def to_observation(role: Role, state: ShimState | None, error: str | None) -> AgentObservation:
    """The core's view of one role from a shim answer (``state``) or a failure (``error``)."""
    if state is None:
        return AgentObservation(role=role, present=False, error=error)
    return AgentObservation(
        role=role,
        present=True,
        alive=state.alive,
        pid=state.pid,
        started_at=state.started_at,
        pane=state.pane,
        last_change_at=state.last_change_at,
        session_id=state.session_id,
        hook_events=tuple(
            HookEvent(
                name=e.name,
                time=e.time,
                session_id=e.session_id,
                error_type=e.error_type,
                message=e.message,
            )
            for e in state.hook_events
        ),
        phase_index=state.phase_index,
        restarts=state.restarts,
        error=error,
        cannot_start=state.start_error if not state.alive else None,
    )
