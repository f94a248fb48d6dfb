"""Load a LoopPhase YAML file (the same manifest `kubectl apply` takes) with clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from loopphase.api.base import API_GROUP, KIND
from loopphase.api.spec import LoopPhaseSpec


class SpecFileError(ValueError):
    """The file is not a valid LoopPhase; the message names the field and the fix."""


@dataclass(frozen=True)
class LoadedSpec:
    name: str
    spec: LoopPhaseSpec
    path: Path


def format_validation_error(err: ValidationError, prefix: str = "spec") -> str:
    lines = []
    for item in err.errors():
        where = ".".join(str(p) for p in (prefix, *item["loc"]))
        message = item["msg"].removeprefix("Value error, ")
        lines.append(f"  {where}: {message}")
    return "invalid LoopPhase:\n" + "\n".join(lines)


def parse_manifest(data: Any, origin: str) -> tuple[str, LoopPhaseSpec]:
    if not isinstance(data, dict):
        raise SpecFileError(f"{origin}: expected a YAML mapping (a LoopPhase manifest)")
    if "spec" in data or "kind" in data:
        kind = data.get("kind")
        if kind != KIND:
            raise SpecFileError(f"{origin}: kind is {kind!r}; expected {KIND!r}")
        api_version = str(data.get("apiVersion", ""))
        if not api_version.startswith(f"{API_GROUP}/"):
            raise SpecFileError(f"{origin}: apiVersion {api_version!r}; expected {API_GROUP}/v1alpha1")
        name = str((data.get("metadata") or {}).get("name") or Path(origin).stem)
        raw = data.get("spec")
    else:
        name, raw = Path(origin).stem, data
    try:
        return name, LoopPhaseSpec.model_validate(raw)
    except ValidationError as err:
        raise SpecFileError(f"{origin}: {format_validation_error(err)}") from err


def load_spec(path: Path) -> LoadedSpec:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise SpecFileError(f"cannot read {path}: {err.strerror}") from err
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise SpecFileError(f"{path}: not valid YAML: {err}") from err
    name, spec = parse_manifest(data, str(path))
    return LoadedSpec(name=name, spec=spec, path=path.resolve())
