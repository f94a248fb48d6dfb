"""A webhook URL source that cannot work where the spec runs is refused before anything starts
(validate, run; validate --cluster), naming ``spec.notify.webhooks[i].<field>`` and the fix;
delivery-time errors use the same path."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from loopphase.api.notify import WebhookSpec
from loopphase.api.spec import LoopPhaseSpec
from loopphase.api.status import HistoryEntry, LoopPhaseStatus
from loopphase.api.validate_cli import main as validate_main
from loopphase.notify.deliver import Notifier, WebhookConfigError
from loopphase.notify.outbox import enqueue
from loopphase.notify.urls import LocalUrls
from loopphase.runner.preflight import cluster_problems, local_problems

HOOKS = [
    {"name": "from-file", "urlFile": "missing-url"},
    {"name": "from-env", "urlEnv": "LP_TEST_UNSET_HOOK"},
    {"name": "from-secret", "urlSecretRef": {"name": "hook"}},
]


def _spec(hooks: list[dict]) -> LoopPhaseSpec:
    return LoopPhaseSpec.model_validate({
        "repo": {"url": "https://git.example.invalid/r.git"},
        "phases": [{"id": "a", "plan": "p", "statusFile": "s"}],
        "notify": {"webhooks": [{**h, "kinds": ["heal"]} for h in hooks]},
    })


def _notify(problems) -> list[str]:
    return [str(p) for p in problems if p.field.startswith("spec.notify")]


def test_local_preflight_refuses_each_unusable_source(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LP_TEST_UNSET_HOOK", raising=False)
    found = _notify(local_problems(_spec(HOOKS), tmp_path))
    assert len(found) == 3, found
    assert found[0].startswith(f"spec.notify.webhooks[0].urlFile: cannot read {tmp_path / 'missing-url'}")
    assert "write the webhook URL into that file" in found[0]
    assert found[1] == ("spec.notify.webhooks[1].urlEnv: $LP_TEST_UNSET_HOOK is not set: export "
                        "LP_TEST_UNSET_HOOK=URL in the shell that runs `loopphase run`")
    assert found[2].startswith("spec.notify.webhooks[2].urlSecretRef: a Secret exists only on a cluster")
    # Once the file holds a URL and the variable is set, both pass.
    (tmp_path / "missing-url").write_text("https://hooks.example.com/x\n")
    monkeypatch.setenv("LP_TEST_UNSET_HOOK", "https://hooks.example.com/y")
    assert _notify(local_problems(_spec(HOOKS[:2]), tmp_path)) == []


def test_cluster_preflight_refuses_file_and_env(tmp_path: Path) -> None:
    found = _notify(cluster_problems(_spec(HOOKS)))
    assert [f.split(":")[0] for f in found] == ["spec.notify.webhooks[0].urlFile", "spec.notify.webhooks[1].urlEnv"]
    assert all("on a cluster use urlSecretRef" in f for f in found)
    manifest = tmp_path / "lp.yaml"
    manifest.write_text("repo: {url: 'https://git.example.invalid/r.git'}\n"
                        "phases: [{id: p1, plan: p.md, statusFile: S.md}]\n"
                        "notify: {webhooks: [{name: ops, urlEnv: HOOK}]}\n")
    assert validate_main([str(manifest), "--cluster"]) == 1


async def test_delivery_errors_name_the_field_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("LP_TEST_UNSET_HOOK", raising=False)
    with pytest.raises(WebhookConfigError, match=r"^spec\.notify\.webhooks\[2\]\.urlSecretRef: "):
        await LocalUrls(tmp_path).resolve(WebhookSpec.model_validate(HOOKS[2]), "spec.notify.webhooks[2]")
    spec = _spec(HOOKS)
    now = datetime.now(UTC)
    after = LoopPhaseStatus(history=[HistoryEntry(seq=1, time=now, kind="recreate", role="builder")],
                            history_seq=1)
    outbox = enqueue(spec, LoopPhaseStatus(), after).notifications.outbox
    notifier = Notifier("lp", LocalUrls(tmp_path).resolve)
    assert notifier.submit(spec.notify, outbox, now) == 3
    outcomes = []
    for _ in range(250):
        outcomes += notifier.drain()
        if len(outcomes) == 3:
            break
        await asyncio.sleep(0.02)
    await notifier.close()
    errors = sorted(o.error for o in outcomes)
    assert [e.split(":")[0] for e in errors] == [
        "spec.notify.webhooks[0].urlFile", "spec.notify.webhooks[1].urlEnv",
        "spec.notify.webhooks[2].urlSecretRef"], errors
    assert all(o.final for o in outcomes)
