"""Small user-facing texts: the reject line typed to the builder, validate's phase count, the
delivery log line."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import HistoryEntry, LoopPhaseStatus
from loopphase.api.validate_cli import main as validate_main
from loopphase.core.approval import rejection_text
from loopphase.notify.deliver import Notifier
from loopphase.notify.outbox import enqueue

from tests.notify.receiver import Receiver, free_port


@pytest.mark.parametrize(("message", "said"), [("add some tests", "add some tests."),
                                               ("add tests. ", "add tests."), ("why?", "why?")])
def test_reject_text_ends_the_reviewers_sentence(message: str, said: str) -> None:
    assert rejection_text("p1", message) == (f"LoopPhase: phase p1 was NOT approved by a human reviewer: "
                                             f"{said} Address this, push, and write DONE again when it is done.")


def test_validate_counts_one_phase_in_the_singular(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("repo: {url: 'https://git.example.invalid/r.git'}\n"
                   "phases: [{id: p1, plan: p.md, statusFile: S.md}]\n")
    two = tmp_path / "two.yaml"
    two.write_text("repo: {url: 'https://git.example.invalid/r.git'}\n"
                   "phases: [{id: p1, plan: p.md, statusFile: S.md}, {id: p2, plan: q.md, statusFile: T.md}]\n")
    assert validate_main([str(one), str(two), "--cluster"]) == 0
    out = capsys.readouterr().out
    assert "(1 phase)" in out and "(2 phases)" in out, out


async def test_delivered_log_line_has_no_trailing_space(caplog: pytest.LogCaptureFixture) -> None:
    port = free_port()
    receiver = Receiver(port, fail_first=0).start()
    spec = LoopPhaseSpec.model_validate({
        "repo": {"url": "/r.git"}, "phases": [{"id": "a", "plan": "p", "statusFile": "s"}],
        "notify": {"webhooks": [{"name": "ops", "kinds": ["heal"], "urlEnv": "HOOK"}]}})
    now = datetime.now(UTC)
    after = LoopPhaseStatus(history=[HistoryEntry(seq=1, time=now, kind="recreate", role="builder")], history_seq=1)
    outbox = enqueue(spec, LoopPhaseStatus(), after).notifications.outbox

    async def url(_hook, _field):
        return f"http://127.0.0.1:{port}/hook"

    notifier = Notifier("lp", url)
    try:
        with caplog.at_level(logging.INFO, logger="loopphase.notify.deliver"):
            notifier.submit(spec.notify, outbox, now)
            for _ in range(250):
                if notifier.drain():
                    break
                await asyncio.sleep(0.02)
    finally:
        await notifier.close()
        receiver.stop()
    lines = [r.getMessage() for r in caplog.records if "delivered" in r.getMessage()]
    assert lines == ["notify ops #1 heal -> delivered"], lines
