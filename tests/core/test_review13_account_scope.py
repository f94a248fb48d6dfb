"""Review of issue 13 ("no one types into an agent they do not own", its spirit: no one holds
an agent they do not own): an account hold crosses namespaces on a name the author chooses.

``agents.<role>.account`` is free text, and the operator's hold registry is shared by every
LoopPhase it runs. An author in namespace team-a writes ``account: secret:team-b/anthropic``
(the account team-b's agents get by default from their env Secret) and makes their own agent
show a limit banner (a sim scenario's banner step, or an agent echoing one): every agent of
team-b is then held until the forged reset. What should happen: an account named on
Kubernetes is scoped to the LoopPhase's namespace (``secret:<other-ns>/…`` refused at
validation or rewritten), unless the cluster admin allows sharing.

Left as a strict xfail: it changes what ``account`` means across namespaces (a design
decision for the lead).
"""

from __future__ import annotations

import pytest
from loopphase.api.spec import LoopPhaseSpec
from loopphase.core.holds import account_of

BASE = {"repo": {"url": "https://example.invalid/r.git"},
        "phases": [{"id": "p1", "plan": "p1.md", "statusFile": "S1.md"}]}


@pytest.mark.xfail(strict=True, reason="accounts are not scoped to the namespace: a LoopPhase "
                   "can name another namespace's account and hold its agents (review13)")
def test_an_author_cannot_name_another_namespaces_account() -> None:
    victim = LoopPhaseSpec.model_validate({**BASE, "agents": {"builder": {"env": [
        {"name": "ANTHROPIC_API_KEY", "secretKeyRef": {"name": "anthropic", "key": "key"}}]}}})
    forger = LoopPhaseSpec.model_validate(
        {**BASE, "agents": {"builder": {"account": "secret:team-b/anthropic"}}})
    assert account_of(victim, "builder", "team-b") == "secret:team-b/anthropic"
    assert account_of(forger, "builder", "team-a") != account_of(victim, "builder", "team-b")
