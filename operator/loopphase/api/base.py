"""Shared pieces of the API models: camelCase aliases, durations, safe-string types."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, PlainSerializer, WithJsonSchema
from pydantic.alias_generators import to_camel

API_GROUP = "loopphase.dev"
API_VERSION = "v1alpha1"
KIND = "LoopPhase"
PLURAL = "loopphases"
SINGULAR = "loopphase"
SHORT_NAMES = ["lp"]
LABEL_PREFIX = "loopphase.dev/"


class ApiModel(BaseModel):
    """Base for spec/status models: camelCase on the wire, unknown fields rejected."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_assignment=False,
    )

    def to_wire(self) -> dict[str, Any]:
        """The JSON-able dict as it appears in the Kubernetes object (camelCase, no Nones)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


SHOWN_MAX = 80


def shown(value: object, limit: int = SHOWN_MAX) -> str:
    """``repr(value)`` for an error message, cut to ``limit`` characters with an ellipsis (an
    error must name the bad input, not echo 5,000 characters of it)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}


def parse_duration(value: Any) -> float:
    """Seconds from a number or a string like ``30s``, ``5m``, ``6h``, ``1.5h``."""
    if isinstance(value, bool):
        raise ValueError("a duration is a number of seconds or a string like '30s', '5m', '6h'")
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        match = _DURATION_RE.match(value)
        if match:
            return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    raise ValueError(
        f"{shown(value)} is not a duration: use seconds (30) or a string like '30s', '5m', '6h'"
    )


Duration = Annotated[
    float,
    BeforeValidator(parse_duration),
    WithJsonSchema({"x-kubernetes-int-or-string": True}),
]

# RFC 3339 in UTC on the wire ("2026-11-22T03:00:00Z"), aware datetimes in Python.
Timestamp = Annotated[
    datetime,
    PlainSerializer(
        lambda dt: dt.isoformat().replace("+00:00", "Z"), return_type=str, when_used="json"
    ),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]

# \Z, not $: "$" also matches before a trailing newline, which let "id\n" through.
DNS_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\Z")
SAFE_TOKEN_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}\Z")
SAFE_PATH_RE = re.compile(r"^[A-Za-z0-9._][A-Za-z0-9._/-]{0,254}\Z")
K8S_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\Z")
# git check-ref-format: no control characters, space, ~ ^ : ? * [ \\ ; no "..", "@{", "//".
_REF_FORBIDDEN_RE = re.compile(r"[\x00-\x20\x7f~^:?*\[\\]|\.\.|@\{|//")


def ref_name_problem(name: str) -> str | None:
    """Why ``name`` is not a valid git branch name (``git check-ref-format --branch`` rules).

    Returns None when it is valid. The rules come from git's documentation of
    check-ref-format; git itself is not run (validation must work without git and I/O).
    """
    if not name or name == "@":
        return "a branch name must be non-empty and not '@'"
    if name.startswith(("-", "/")) or name.endswith(("/", ".")):
        return "a branch name must not start with '-' or '/' nor end with '/' or '.'"
    bad = _REF_FORBIDDEN_RE.search(name)
    if bad:
        return f"a branch name must not contain {bad.group(0)!r}"
    for part in name.split("/"):
        if part.startswith(".") or part.endswith(".lock"):
            return f"no part of a branch name may start with '.' or end with '.lock' ({shown(part)})"
    return None


def check_relative_path(value: str, what: str) -> str:
    if not SAFE_PATH_RE.match(value) or value.startswith("/"):
        raise ValueError(
            f"{what} {shown(value)} must be a relative path of letters, digits, '.', '_', '-', '/'"
        )
    if ".." in value.split("/"):
        raise ValueError(f"{what} {shown(value)} must not contain '..': keep it inside the repository")
    return value


def check_safe_token(value: str, what: str) -> str:
    if not SAFE_TOKEN_RE.match(value):
        raise ValueError(
            f"{what} {shown(value)} may only contain letters, digits and . _ : / @ + - "
            "(no spaces, quotes, '$', ';' or backticks)"
        )
    return value


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters for a one-line display, ending in '…' when
    cut (never silently); the whole text stays where it is stored (status, logs)."""
    return text if len(text) <= limit else text[: max(0, limit - 1)].rstrip() + "…"
