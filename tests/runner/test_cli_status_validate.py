"""`loopphase status` rendering and `loopphase validate` errors (no processes involved)."""

from __future__ import annotations

from pathlib import Path

from loopphase.api.validate_cli import main as validate_main
from loopphase.runner.status_cli import render

from tests.core.reconcile_helpers import (
    PANE_ACTIVE,
    PANE_IDLE,
    PANE_LOGIN,
    World,
    agent,
    banner,
)


def test_status_shows_table_agents_window_and_history():
    world = World()
    world.started()
    world.tick({"builder": agent("builder", banner("12:30pm")), "adversary": agent("adversary", PANE_ACTIVE)}, advance=5)
    text = render("demo", world.status, world.now)
    header, row = text.splitlines()[:2]
    assert header.split()[:8] == ["NAME", "PHASE", "PROGRESS", "BUILDER", "ADVERSARY", "READY",
                                  "ATTENTION", "AGE"]
    assert row.split()[:7] == ["demo", "Limited", "0/3", "Limited", "Active", "2/2", "-"]
    assert "session limit window until 2026-11-22T12:30:45+00:00 (window.stated-reset)" in text
    assert "limit-armed" in text
    assert "last action limit-armed 0s ago: limit." in text


def test_status_shows_needs_attention_with_the_whole_cause_and_account_holds():
    world = World()
    world.started()
    world.tick({"builder": agent("builder", banner("12:30pm")),
                "adversary": agent("adversary", PANE_IDLE, changed=world.now)}, advance=5)
    world.tick({"builder": agent("builder", banner("12:30pm")),
                "adversary": agent("adversary", PANE_LOGIN)}, advance=5)
    text = render("demo", world.status, world.now)
    header, row = text.splitlines()[:2]
    assert row.split()[:7] == ["demo", "NeedsAttention", "0/3", "Limited", "NeedsAttention", "1/2",
                               "adversary:LoginRequired"]
    message = world.status.agents["adversary"].attention.message
    assert len(message) > 90 and f"NEEDS ATTENTION (LoginRequired) for 0s: {message}" in text
    assert "session limit window until" in text
    assert "account hold local: session limit of builder" in text
    assert "NeedsAttention(LoginRequired)" in text and "AccountHold(HardLimitOnAccount)" in text


def test_validate_names_the_field_and_the_fix(tmp_path: Path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: loopphase.dev/v1alpha1\nkind: LoopPhase\nmetadata: {name: bad}\nspec:\n"
        "  repo: {url: x}\n  phases: [{id: p1, plan: p.md, statusFile: S.md}]\n"
        "  texts: {limitProbe: 'your usage limit has reset, resume'}\n"
    )
    assert validate_main([str(bad)]) == 1
    err = capsys.readouterr().err
    assert "texts.limitProbe" in err and "limit detector" in err
    good = tmp_path / "good.yaml"
    good.write_text("repo: {url: 'https://git.example.invalid/r.git'}\nphases: [{id: p1, plan: p.md, statusFile: S.md}]\n")
    assert validate_main([str(good), "--cluster"]) == 0
