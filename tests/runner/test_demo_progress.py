"""Fault: the demo explained little while it ran (no line per phase, silent 20 s gaps). Now it
prints a header per phase and, after `gap` seconds without output, what it is waiting for."""

from __future__ import annotations

from datetime import timedelta

from loopphase.controller.tick import TickResult
from loopphase.demo.progress import Printer
from loopphase.runner.loop import TickReport

from tests.core.reconcile_helpers import PANE_ACTIVE, World, agent, banner, git


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_a_line_per_phase_and_silences_explained() -> None:
    world = World()
    clock = Clock()
    lines: list[str] = []
    printer = Printer(phases=3, gap=8, clock=clock, out=lines.append, wallclock=lambda: world.now)

    def tick(obs, gitobs=None, advance=0.0, seconds=1.0) -> None:
        clock.t += seconds
        actions = world.tick(obs, gitobs, advance=advance)
        printer(TickReport(1, TickResult(status=world.status, actions=actions)))

    tick({"builder": agent("builder", None, present=False), "adversary": agent("adversary", None, present=False)})
    assert lines[0].startswith("── phase 1/3 p1")
    assert sum(line.startswith("── phase") for line in lines) == 1
    start = len(lines)
    tick({"builder": agent("builder", PANE_ACTIVE), "adversary": agent("adversary", PANE_ACTIVE)}, git("h0"),
         advance=1)
    for _ in range(3):  # quiet ticks: nothing to say until the gap has passed
        tick({"builder": agent("builder", PANE_ACTIVE), "adversary": agent("adversary", PANE_ACTIVE)}, advance=1,
             seconds=2)
    quiet = [line for line in lines[start:] if "waiting:" in line]
    assert quiet == []
    tick({"builder": agent("builder", banner("12:30pm")), "adversary": agent("adversary", PANE_ACTIVE)}, advance=1,
         seconds=1)
    for _ in range(5):
        tick({"builder": agent("builder", banner("12:30pm")), "adversary": agent("adversary", PANE_ACTIVE)},
             advance=1, seconds=3)
    waiting = [line for line in lines if "waiting:" in line]
    assert waiting, lines
    assert "builder in a usage-limit window until 12:30:45" in waiting[-1]
    assert "adversary working" in waiting[-1]
    assert "DONE for p1 not yet on the pushed branch" in waiting[-1]

    files = {"machine-docs/STATUS-p1.md": "## DONE\n", "STATUS-p1.md": None}
    world.now += timedelta(hours=3)  # past the window
    tick({"builder": agent("builder", PANE_ACTIVE), "adversary": agent("adversary", PANE_ACTIVE)},
         git("h1", "done(p1)", files=files), advance=1)
    assert [line for line in lines if line.startswith("── phase")][-1].startswith("── phase 2/3 p2")
