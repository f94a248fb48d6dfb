"""The demo summary's safety counts read the action log right: kills inside a limit window and
heals while an agent waits for a human are counted only between their begin and end events,
per role, and the phase's own completion stops never count."""

from __future__ import annotations

from loopphase.demo.summary import heals_while_attention, kills_inside_windows


def event(kind: str, role: str = "builder") -> dict[str, str]:
    return {"action": "EmitEvent", "kind": kind, "role": role}


def act(action: str, role: str = "builder", rule: str = "heal.stall") -> dict[str, str]:
    return {"action": action, "role": role, "rule": rule}


def test_kills_count_only_inside_the_roles_own_window() -> None:
    records = [
        act("RestartAgent"),                              # before the window: fine
        event("limit-armed"),
        act("RestartAgent"),                              # counted
        act("RestartAgent", role="adversary"),            # other role: not in a window
        act("StopAgent", rule="phase.complete"),          # the phase's own stop: never counted
        act("SendText"),                                  # not a kill
        event("limit-lifted"),
        act("RecreateHost"),                              # after: fine
    ]
    assert kills_inside_windows(records) == 1


def test_heals_while_attention_count_kills_and_nudges() -> None:
    records = [
        event("needs-attention"),
        act("SendText"), act("RestartAgent"), act("SendText", role="adversary"),
        event("attention-cleared"),
        act("SendText"),
    ]
    assert heals_while_attention(records) == 2
