"""Generate the LoopPhase CustomResourceDefinition from the pydantic models.

The models are the single source of truth; ``crds/loopphase.yaml`` is this module's output,
committed, and a test keeps the two equal. The JSON schema pydantic emits is rewritten into a
Kubernetes *structural* schema: references inlined, ``null`` alternatives folded into
``nullable``, int-or-string made explicit, and keywords Kubernetes rejects removed.
"""

from __future__ import annotations

import argparse
import copy
import sys
from typing import Any

import yaml

from loopphase.api.base import API_GROUP, API_VERSION, KIND, PLURAL, SHORT_NAMES, SINGULAR
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import LoopPhaseStatus
from loopphase.cli import plain

_DROP_KEYS = {"title", "default", "additionalProperties", "propertyNames", "examples", "$defs"}


def _inline(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, dict):
        if "$ref" in node:
            target = copy.deepcopy(defs[node["$ref"].split("/")[-1]])
            merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
            return _inline(merged, defs)
        return {key: _inline(value, defs) for key, value in node.items()}
    if isinstance(node, list):
        return [_inline(item, defs) for item in node]
    return node


def _structural(node: Any) -> Any:
    """Rewrite one inlined JSON-schema node into a structural-schema node."""
    if isinstance(node, list):
        return [_structural(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    keep_additional = node.get("additionalProperties")
    description = node.get("description")

    if "anyOf" in node:
        options = [opt for opt in node["anyOf"] if opt.get("type") != "null"]
        nullable = len(options) != len(node["anyOf"])
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        types = {opt.get("type") for opt in options}
        if len(options) == 1:
            node = {**rest, **options[0]}
        elif types <= {"string", "integer", "number"} or any(
            opt.get("x-kubernetes-int-or-string") for opt in options
        ):
            node = {**rest, "x-kubernetes-int-or-string": True}
        else:
            node = {**rest, "type": "object", "x-kubernetes-preserve-unknown-fields": True}
        if nullable:
            node["nullable"] = True

    if node.get("x-kubernetes-int-or-string"):
        node = {k: v for k, v in node.items() if k not in {"type", "minimum", "maximum",
                                                             "exclusiveMinimum", "exclusiveMaximum"}}
    if "const" in node:
        node["enum"] = [node.pop("const")]
    if "enum" in node and "type" not in node:
        node["type"] = "string"

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP_KEYS:
            continue
        if key == "properties":
            out[key] = {name: _structural(sub) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value)
        else:
            out[key] = value
    if node.get("type") == "object" and "properties" not in node and isinstance(keep_additional, dict):
        out["additionalProperties"] = _structural(keep_additional)
    elif node.get("type") == "object" and "properties" not in node and keep_additional is None:
        out.setdefault("x-kubernetes-preserve-unknown-fields", True)
    if description:
        out["description"] = description
    if out.get("exclusiveMinimum") is not None and not isinstance(out["exclusiveMinimum"], bool):
        out["minimum"] = out.pop("exclusiveMinimum")
        out["exclusiveMinimum"] = True
    return out


def model_schema(model: type) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")  # type: ignore[attr-defined]
    return _structural(_inline(raw, raw.get("$defs", {})))


def crd_manifest() -> dict[str, Any]:
    spec_schema = model_schema(LoopPhaseSpec)
    status_schema = model_schema(LoopPhaseStatus)
    # kopf keeps progress/diff-base in annotations (see operator settings); this field is
    # declared anyway so nothing kopf might write is ever silently pruned.
    status_schema.setdefault("properties", {})["kopf"] = {
        "type": "object",
        "x-kubernetes-preserve-unknown-fields": True,
    }
    status_schema.pop("required", None)
    columns = [
        ("Phase", ".status.phase", "string", 0, "display phase"),
        ("Progress", ".status.progress", "string", 0, "phases done / total"),
        ("Builder", ".status.builder", "string", 0, "builder agent state"),
        ("Adversary", ".status.adversary", "string", 0, "adversary agent state"),
        ("Ready", ".status.ready", "string", 0, "agents running / wanted"),
        ("Attention", ".status.needsAttention", "string", 0, "roles that need a human, and why"),
        ("Age", ".metadata.creationTimestamp", "date", 0, ""),
        ("Current", ".status.current.id", "string", 1, "current phase id"),
        ("Awaiting", ".status.current.awaitingApprovalSince", "date", 1,
         "since when the phase's verified DONE waits for approval"),
        ("Message", ".status.message", "string", 1, "why it is in this phase"),
    ]
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{API_GROUP}"},
        "spec": {
            "group": API_GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": list(SHORT_NAMES),
                "listKind": f"{KIND}List",
            },
            "versions": [
                {
                    "name": API_VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": [
                        {
                            "name": name,
                            "jsonPath": path,
                            "type": type_,
                            **({"priority": prio} if prio else {}),
                            **({"description": desc} if desc else {}),
                        }
                        for name, path, type_, prio, desc in columns
                    ],
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "A supervised Builder/Adversary agent loop.",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                            "required": ["spec"],
                        }
                    },
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `loopphase crd` from the pydantic models. Do not edit by hand.\n"
    return header + yaml.safe_dump(crd_manifest(), sort_keys=False, width=100)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="loopphase crd", description=plain(__doc__))
    parser.add_argument("-o", "--output", help="write to this file instead of stdout")
    args = parser.parse_args(argv)
    text = crd_yaml()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        sys.stdout.write(text)
    return 0
