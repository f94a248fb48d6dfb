"""The webhook exposure example matches the Deployment: the Service selects the operator and
targets its webhook port, the extra NetworkPolicy opens only that port, the Ingress routes
/webhook to the Service; the operator's port and flag agree."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from loopphase.operator.main import parse_args, webhook_listen

ROOT = Path(__file__).resolve().parents[2]


def docs(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def test_webhook_example_reaches_the_operators_webhook_port_only() -> None:
    deployment = docs(ROOT / "manifests" / "base" / "deployment.yaml")[0]
    pod = deployment["spec"]["template"]
    container = pod["spec"]["containers"][0]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    listen = next(a for a in container["args"] if a.startswith("--webhook-listen="))
    assert webhook_listen(listen.split("=", 1)[1].split()[0]) == ("0.0.0.0", ports["webhook"])

    by_kind = {d["kind"]: d for d in docs(ROOT / "manifests" / "examples" / "webhook-ingress.yaml")}
    assert set(by_kind) == {"Service", "NetworkPolicy", "Ingress"}
    labels = pod["metadata"]["labels"]
    service = by_kind["Service"]
    assert service["spec"]["selector"].items() <= labels.items()
    assert [p["targetPort"] for p in service["spec"]["ports"]] == ["webhook"]
    policy = by_kind["NetworkPolicy"]["spec"]
    assert policy["podSelector"]["matchLabels"].items() <= labels.items()
    assert [p["port"] for rule in policy["ingress"] for p in rule["ports"]] == [ports["webhook"]]
    assert all(rule.get("from") for rule in policy["ingress"]), "only the ingress controller"
    paths = by_kind["Ingress"]["spec"]["rules"][0]["http"]["paths"]
    assert [(p["path"], p["backend"]["service"]["name"]) for p in paths] == [
        ("/webhook", service["metadata"]["name"])]
    assert {d["metadata"]["namespace"] for d in by_kind.values()} == {"loopphase-system"}


def test_operator_webhook_flag() -> None:
    assert webhook_listen("off") is None
    assert webhook_listen("127.0.0.1:0") == ("127.0.0.1", 0)
    assert parse_args([]).webhook_listen  # on by default (reachable only through the example)
