"""Review of issue 13 ("no one types into an agent they do not own", its spirit: no one holds
an agent they do not own): an account hold crosses namespaces on a name the author chooses.

``agents.<role>.account`` is free text, and the operator's hold registry is shared by every
LoopPhase it runs. An author in namespace team-a writes ``account: secret:team-b/anthropic``
(the account team-b's agents get by default from their env Secret) and makes their own agent
show a limit banner (a sim scenario's banner step, or an agent echoing one): every agent of
team-b is then held until the forged reset. What should happen: an account named on
Kubernetes is scoped to the LoopPhase's namespace (``secret:<other-ns>/…`` refused at
validation or rewritten), unless the cluster admin allows sharing.

Fixed: on Kubernetes a set account is scoped to the LoopPhase's namespace (``ns:<ns>/<name>``),
except the namespace's own ``secret:<ns>/...`` default, which it may name to share with agents
that use the default.
"""

from __future__ import annotations

import pytest
from loopphase.api.spec import LoopPhaseSpec
from loopphase.core.holds import account_of

BASE = {"repo": {"url": "https://example.invalid/r.git"},
        "phases": [{"id": "p1", "plan": "p1.md", "statusFile": "S1.md"}]}


def test_an_author_cannot_name_another_namespaces_account() -> None:
    victim = LoopPhaseSpec.model_validate({**BASE, "agents": {"builder": {"env": [
        {"name": "ANTHROPIC_API_KEY", "secretKeyRef": {"name": "anthropic", "key": "key"}}]}}})
    forger = LoopPhaseSpec.model_validate(
        {**BASE, "agents": {"builder": {"account": "secret:team-b/anthropic"}}})
    assert account_of(victim, "builder", "team-b") == "secret:team-b/anthropic"
    assert account_of(forger, "builder", "team-a") != account_of(victim, "builder", "team-b")


@pytest.mark.parametrize(("account", "namespace", "expected"), [
    ("team-max-1", None, "team-max-1"),                       # local run: as written
    ("team-max-1", "team-a", "ns:team-a/team-max-1"),         # scoped to its namespace
    ("secret:team-a/anthropic", "team-a", "secret:team-a/anthropic"),  # its own default
    ("secret:team-b/anthropic", "team-a", "ns:team-a/secret:team-b/anthropic"),
])
def test_a_set_account_is_scoped_to_the_namespace(account, namespace, expected) -> None:
    spec = LoopPhaseSpec.model_validate({**BASE, "agents": {"builder": {"account": account}}})
    assert account_of(spec, "builder", namespace) == expected


def test_two_loopphases_of_one_namespace_naming_one_account_share_it() -> None:
    spec = LoopPhaseSpec.model_validate({**BASE, "agents": {"builder": {"account": "max-1"}}})
    assert account_of(spec, "builder", "team-a") == account_of(spec, "builder", "team-a")
    assert account_of(spec, "builder", "team-a") != account_of(spec, "builder", "team-b")
