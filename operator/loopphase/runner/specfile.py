"""Load a LoopPhase YAML file (the same manifest `kubectl apply` takes) with clear errors."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from loopphase.api.base import API_GROUP, API_VERSION, K8S_NAME_RE, KIND
from loopphase.api.errors import format_errors
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.yamlfile import load_yaml

EXPECTED_API_VERSION = f"{API_GROUP}/{API_VERSION}"


class SpecFileError(ValueError):
    """The file is not a valid LoopPhase; the message names the field and the fix."""


@dataclass(frozen=True)
class LoadedSpec:
    name: str
    spec: LoopPhaseSpec
    path: Path


def format_validation_error(err: ValidationError, prefix: str = "spec") -> str:
    """pydantic's errors as ``  spec.<wire path>: message`` lines (``loopphase.api.errors``)."""
    lines = [f"  {line}" for line in format_errors(err, prefix, LoopPhaseSpec)]
    return "invalid LoopPhase:\n" + "\n".join(lines)


def check_name(name: str, origin: str) -> str:
    """``metadata.name`` as kubectl would accept it (an RFC 1123 subdomain: lower-case letters,
    digits, '-' and '.', at most 253 characters, alphanumeric at both ends). It also names the
    state directory, so this keeps a run inside ``.loopphase/`` (no '/', no '..')."""
    if len(name) > 253 or not K8S_NAME_RE.match(name) or ".." in name:
        raise SpecFileError(
            f"{origin}: metadata.name {name!r} is not a valid Kubernetes name: use lower-case "
            "letters, digits, '-' and '.', at most 253 characters, starting and ending with a "
            "letter or digit (e.g. 'my-loop')"
        )
    return name


def parse_manifest(data: Any, origin: str) -> tuple[str, LoopPhaseSpec]:
    if not isinstance(data, dict):
        raise SpecFileError(f"{origin}: expected a YAML mapping (a LoopPhase manifest)")
    if "spec" in data or "kind" in data or "apiVersion" in data or "metadata" in data:
        kind = data.get("kind")
        if kind != KIND:
            raise SpecFileError(f"{origin}: kind is {kind!r}; expected {KIND!r}")
        api_version = data.get("apiVersion")
        if api_version != EXPECTED_API_VERSION:
            raise SpecFileError(
                f"{origin}: apiVersion is {api_version!r}; expected {EXPECTED_API_VERSION!r}"
            )
        metadata = data.get("metadata")
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            raise SpecFileError(f"{origin}: metadata.name is required (a name like 'my-loop')")
        name = check_name(metadata["name"], origin)
        raw = data.get("spec")
        if not isinstance(raw, dict):
            raise SpecFileError(f"{origin}: spec is required and must be a mapping (repo, phases, agents, ...)")
    else:
        stem = Path(origin).stem
        try:
            name = check_name(stem, origin)
        except SpecFileError as err:
            raise SpecFileError(
                f"{err} (a bare spec is named after its file: rename the file, or write a full "
                f"manifest with apiVersion: {EXPECTED_API_VERSION}, kind: {KIND} and metadata.name)"
            ) from err
        raw = data
    try:
        return name, LoopPhaseSpec.model_validate(raw)
    except ValidationError as err:
        raise SpecFileError(f"{origin}: {format_validation_error(err)}") from err


def load_spec(path: Path) -> LoadedSpec:
    """Read, parse and validate a spec file; ``SpecFileError`` (never a traceback) on bad input."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise SpecFileError(f"cannot read {path}: {err.strerror}") from err
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise SpecFileError(
            f"{path}: not UTF-8 text (byte {err.start} is 0x{data[err.start]:02x}): save the file "
            "as UTF-8"
        ) from err
    try:
        parsed = load_yaml(text)
    except yaml.YAMLError as err:
        raise SpecFileError(f"{path}: not valid YAML: {err}") from err
    name, spec = parse_manifest(parsed, str(path))
    return LoadedSpec(name=name, spec=spec, path=path.resolve())
