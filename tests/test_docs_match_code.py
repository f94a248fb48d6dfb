"""Claims in the docs that follow from constants in the code: which limit classes start an
account hold, and which Secrets the operator reads (with the label each needs)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import get_args

from loopphase.api.status import LimitClass
from loopphase.core.holds import NOT_A_HOLD
from loopphase.operator.git_credentials import ALLOW_LABEL
from loopphase.operator.webhook_secret import WEBHOOK_LABEL
from loopphase.runtime.kubernetes import ENV_ALLOW_LABEL

DOCS = Path(__file__).parents[1] / "docs"


def _section(doc: str, heading: str) -> str:
    text = (DOCS / doc).read_text()
    start = text.index(heading)
    end = text.find("\n## ", start + len(heading))
    return text[start:end if end != -1 else None]


def test_troubleshooting_hold_names_every_class_that_starts_one() -> None:
    hold = _section("troubleshooting.md", "## AccountHold")
    for cls in set(get_args(LimitClass)) - NOT_A_HOLD:
        assert re.search(rf"\b{cls}\b", hold), f"AccountHold omits class {cls}: {hold}"
    assert "any class but `transient`" in hold
    limited = _section("troubleshooting.md", "## Limited")
    assert "account hold" in limited  # held agents are Limited too


def test_agent_states_limited_condition_covers_held_agents() -> None:
    text = (DOCS / "agent-states.md").read_text()
    assert "`Limited` says this LoopPhase's own\nagents are in a window" not in text
    assert "in a window of its own or held" in text


def test_kubernetes_rbac_lists_every_secret_the_operator_reads() -> None:
    rbac = _section("kubernetes.md", "## RBAC and Secrets")
    for field in ("shim-token", "spec.repo.credentialsSecret", "spec.notify.webhooks[].urlSecretRef",
                  "spec.agents.<role>.env[].secretKeyRef", "spec.repo.webhook.secretRef"):
        assert field in rbac, field
    for label in (ALLOW_LABEL, WEBHOOK_LABEL, ENV_ALLOW_LABEL):
        assert f'`{label}: "true"`' in rbac, label
