"""One way to name a bad field: the full wire path from the document root, and what to do.

Every producer of a spec error (``loopphase validate`` and ``run``, the preflight checks, the
runner, the operator's Invalid condition) names fields the same way: the camelCase path from
the manifest's root with list indices in brackets, e.g. ``spec.agents.builder.model`` or
``spec.phases[1].id``. An unknown field gets the nearest known names of its mapping
(``difflib.get_close_matches`` over the model's wire names).

Validators that check a field below the one they validate (a model validator's cross-checks)
raise ``FieldError`` with the path relative to the model they validate; the formatter appends
it to pydantic's location.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Sequence
from typing import Any, Union

from pydantic import BaseModel, ValidationError

PathPart = str | int


class FieldError(ValueError):
    """Errors about fields below the validated one: ``(relative wire path, message)`` pairs.

    ``str()`` joins them as ``path: message`` (what pydantic shows when this module is not
    used)."""

    def __init__(self, *problems: tuple[Sequence[PathPart], str]) -> None:
        self.problems = [(tuple(path), message) for path, message in problems]
        super().__init__("; ".join(f"{wire_path(path)}: {message}" for path, message in self.problems))


def wire_path(parts: Sequence[PathPart], root: str = "") -> str:
    """``("agents", "builder", "model")`` -> ``agents.builder.model``; ints become ``[i]``."""
    out = root
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def wire_names(model: type[BaseModel]) -> list[str]:
    """The camelCase names a model accepts on the wire."""
    return [field.alias or name for name, field in model.model_fields.items()]


def _models_in(annotation: Any) -> list[Any]:
    """The types inside ``annotation`` (Optional/Union/list/dict unwrapped one level)."""
    origin = typing.get_origin(annotation)
    if origin in (Union, types.UnionType):
        return [t for arg in typing.get_args(annotation) for t in _models_in(arg)]
    return [annotation]


def model_at(model: type[BaseModel], loc: Sequence[PathPart]) -> type[BaseModel] | None:
    """The model that validates the mapping at ``loc`` (a pydantic location), or None."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            if typing.get_origin(current) is list:
                current = typing.get_args(current)[0]
            continue
        candidates = _models_in(current)
        found = None
        for candidate in candidates:
            if isinstance(candidate, type) and issubclass(candidate, BaseModel):
                for name, field in candidate.model_fields.items():
                    if part in (name, field.alias):
                        found = field.annotation
                        break
            elif typing.get_origin(candidate) is dict:
                found = typing.get_args(candidate)[1]
            elif typing.get_origin(candidate) is list:
                continue
            if found is not None:
                break
        if found is None:
            return None
        current = found
    for candidate in _models_in(current):
        if typing.get_origin(candidate) is list:
            candidate = typing.get_args(candidate)[0]
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None


def unknown_field(model: type[BaseModel], loc: Sequence[PathPart]) -> str:
    """The message for an unknown field at ``loc``: the nearest known names, or all of them."""
    owner = model_at(model, loc[:-1])
    if owner is None:
        return "unknown field"
    known = wire_names(owner)
    close = difflib.get_close_matches(str(loc[-1]), known, n=3, cutoff=0.6)
    if close:
        return f"unknown field; did you mean {' or '.join(close)}?"
    return f"unknown field; the fields here are: {', '.join(known)}"


def field_errors(err: ValidationError, root: str, model: type[BaseModel]) -> list[tuple[str, str]]:
    """``(full wire path, message)`` per error of ``err`` raised validating ``model`` at
    ``root`` (``spec`` for a LoopPhase spec, ``status`` for its status)."""
    out: list[tuple[str, str]] = []
    for item in err.errors():
        loc = [p for p in item["loc"] if not _is_union_branch(p)]
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):
            for path, message in cause.problems:
                out.append((wire_path([*loc, *path], root), message))
            continue
        if item["type"] == "extra_forbidden":
            message = unknown_field(model, loc)
        else:
            message = item["msg"].removeprefix("Value error, ")
        out.append((wire_path(loc, root), message))
    return out


def _is_union_branch(part: PathPart) -> bool:
    """pydantic puts the union member it tried in the location (``str``, ``int``)."""
    return part in ("str", "int", "float", "bool")


def format_errors(err: ValidationError, root: str, model: type[BaseModel]) -> list[str]:
    """``path: message`` lines, one per error."""
    return [f"{path}: {message}" for path, message in field_errors(err, root, model)]
