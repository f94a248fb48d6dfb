"""`loopphase run` with push webhooks against a real git server on loopback.

``git http-backend`` behind a WSGI server hosts the repository; its ``post-receive`` hook is
the one ``loopphase hook install`` writes. The sim agents clone and push over HTTP. With a 60 s
safety-net poll, only the webhook can explain a handoff seen before the next poll: the tests
assert on where each new head came from (``status.git``), not on wall-clock time.
"""

from __future__ import annotations

import asyncio
import socket
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from loopphase.demo.main import build_repo, demo_manifest
from loopphase.runner.loop import Runner, TickReport
from loopphase.runner.specfile import load_spec
from loopphase.runner.webhook import LocalWebhookConfig
from loopphase.testing.git_http import GitHttpServer
from loopphase.webhook.hook_cli import ensure_secret, install

pytestmark = pytest.mark.slow

BUILDER = """
phases:
  p1-handoff:
    - work: {seconds: 1}
    - git: {commit: "claim(p1): widget", files: {"src/w.txt": "w\\n"}, push: true}
    - wait_input: {match: "verdict|review", timeout: 120}
    - append_done: {commit: "done(p1)", push: true}
  p2-limits:
    - work: {seconds: 1}
    - append_done: {commit: "done(p2)", push: true}
"""
ADVERSARY = """
phases:
  p1-handoff:
    - wait_input: {match: "CLAIM", timeout: 120}
    - git: {commit: "review(p1): PASS", files: {"machine-docs/REVIEW-p1.md": "PASS\\n"}, push: true}
  default:
    - wait_until: {seconds: 600}
"""
CLAIM_ONLY_BUILDER = """
phases:
  p1-handoff:
    - work: {seconds: 1}
    - git: {commit: "claim(p1): widget", files: {"src/w.txt": "w\\n"}, push: true}
    - idle: {seconds: 600}
"""


def write_spec(root: Path, url: str, builder: str, adversary: str, poll: str) -> Path:
    manifest = demo_manifest(root / "origin.git")
    spec: dict[str, Any] = manifest["spec"]
    spec["repo"] = {"url": url, "branch": "main", "webhook": {"pollInterval": poll}}
    spec["phases"] = spec["phases"][:2]
    spec["agents"]["builder"]["simScenario"] = builder
    spec["agents"]["adversary"]["simScenario"] = adversary
    path = root / "lp.yaml"
    path.write_text(yaml.safe_dump(manifest, sort_keys=False))
    return path


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Ticks:
    """Per tick: the rules acted on, and where the status says the last new head came from."""

    def __init__(self) -> None:
        self.rows: list[tuple[set[str], str | None]] = []

    def __call__(self, report: TickReport) -> None:
        rules = {a.rule for a in report.result.actions}
        self.rows.append((rules, report.result.status.git.last_observation_source))

    def source_when(self, rule: str) -> list[str | None]:
        return [source for rules, source in self.rows if rule in rules]


def test_handoffs_and_done_advances_arrive_through_the_webhook(tmp_path: Path) -> None:
    build_repo(tmp_path)
    secret = tmp_path / "hook.secret"
    ensure_secret(secret)
    with GitHttpServer(tmp_path) as git_server:
        url = git_server.url("origin.git")
        spec_path = write_spec(tmp_path, url, BUILDER, ADVERSARY, poll="60s")
        config = LocalWebhookConfig("127.0.0.1", 0, secret.read_bytes().strip(), poll_interval=60)
        ticks = Ticks()
        runner = Runner(load_spec(spec_path), tmp_path / "state", on_tick=ticks, webhook=config)
        assert runner.webhooks is not None

        async def main() -> Any:
            hook_url = await runner.webhooks.start()
            install(tmp_path / "origin.git", url=hook_url, secret_file=secret, repo_urls=[url])
            return await asyncio.wait_for(runner.run(exit_on_complete=True), timeout=150)

        try:
            final = asyncio.run(main())
        finally:
            asyncio.run(runner.stop_everything())
    assert final.completed_at is not None
    # claim -> ping, review -> ping, DONE p1 -> advance, DONE p2 -> complete: all by webhook
    assert ticks.source_when("handoff.claim") == ["webhook"]
    assert ticks.source_when("handoff.review") == ["webhook"]
    kinds = [a.get("kind") for a in runner.store.read_actions() if a.get("kind") in {"advance", "complete"}]
    assert kinds == ["advance", "complete"]
    feed = final.git
    assert feed.heads_by_poll == 0, "no push may have waited for the 60 s poll"
    assert feed.heads_by_webhook >= 4 and feed.last_observation_source == "webhook"
    assert feed.last_webhook_at is not None
    counters = runner.webhooks.receiver.counters.as_dict()
    assert counters["accepted"] >= 4 and counters["forbidden"] == counters["unauthenticated"] == 0
    assert final.condition("WebhooksStale") is not None
    assert final.condition("WebhooksStale").status == "False"


def test_a_dropped_webhook_is_caught_by_the_slow_poll_and_flagged(tmp_path: Path) -> None:
    build_repo(tmp_path)
    secret = tmp_path / "hook.secret"
    ensure_secret(secret)
    with GitHttpServer(tmp_path) as git_server:
        url = git_server.url("origin.git")
        spec_path = write_spec(tmp_path, url, CLAIM_ONLY_BUILDER, ADVERSARY, poll="3s")
        config = LocalWebhookConfig("127.0.0.1", 0, secret.read_bytes().strip(), poll_interval=3)
        ticks = Ticks()
        runner = Runner(load_spec(spec_path), tmp_path / "state", on_tick=ticks, webhook=config)
        # the hook points at nothing: every webhook is lost (and the push must still succeed)
        install(tmp_path / "origin.git", url=f"http://127.0.0.1:{closed_port()}/webhook",
                secret_file=secret, repo_urls=[url])

        def stale(report: TickReport) -> None:
            ticks(report)
            condition = report.result.status.condition("WebhooksStale")
            if condition is not None and condition.status == "True":
                runner.request_stop()

        runner.on_tick = stale
        try:
            final = asyncio.run(asyncio.wait_for(runner.run(exit_on_complete=True), timeout=90))
        finally:
            asyncio.run(runner.stop_everything())
    assert ticks.source_when("handoff.claim") == ["poll"]
    assert final.git.heads_by_poll >= 1 and final.git.heads_by_webhook == 0
    assert final.git.last_webhook_at is None
    condition = final.condition("WebhooksStale")
    assert condition is not None and condition.reason == "PushMissedByWebhook"
    assert "no webhook announced it" in condition.message


def test_the_hook_never_fails_a_push(tmp_path: Path) -> None:
    """Receiver down (connection refused) or hanging (accepts, never answers): the push
    succeeds, the pusher sees one line saying the webhook failed."""
    bare = tmp_path / "r.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    secret = tmp_path / "s"
    ensure_secret(secret)
    work = tmp_path / "w"
    subprocess.run(["git", "clone", "-q", str(bare), str(work)], check=True, capture_output=True)
    with socket.socket() as hanging:
        hanging.bind(("127.0.0.1", 0))
        hanging.listen(8)  # never accepted: a request to it waits until the hook's timeout
        targets = [f"http://127.0.0.1:{closed_port()}/webhook",
                   f"http://127.0.0.1:{hanging.getsockname()[1]}/webhook"]
        for n, target in enumerate(targets):
            install(bare, url=target, secret_file=secret, timeout=1.0)
            (work / f"f{n}").write_text("x\n")
            subprocess.run(["git", "-C", str(work), "add", "-A"], check=True)
            subprocess.run(["git", "-C", str(work), "-c", "user.name=t", "-c", "user.email=t@t",
                            "commit", "-qm", f"c{n}"], check=True)
            push = subprocess.run(["git", "-C", str(work), "push", "origin", "HEAD:main"],
                                  capture_output=True, text=True, timeout=30)
            assert push.returncode == 0, push.stderr
            assert "loopphase hook: webhook to" in push.stderr and "push itself succeeded" in push.stderr
