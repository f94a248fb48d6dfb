"""The demo with real agent CLIs (``loopphase demo --agents claude|opencode``).

The same three phases as the simulated demo, played by real Claude Code (or opencode) against
the scripted model endpoint (:mod:`loopphase.modelserver`): the model's turns make the real
CLI run the real git commands (claims, reviews, the inbox note, ``## DONE``), draw its real
usage-limit screen, wait on purpose (``WAITING-UNTIL``), wedge on a fatal API error and go
silent until nudged. Nothing leaves the machine: the CLIs talk only to the local endpoint
with a dummy login.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from loopphase.modelserver.script import load_script
from loopphase.modelserver.server import ModelServer

AGENT_CLIS = {"claude": "claude", "opencode": "opencode"}
# No telemetry, error reports, update checks or other side traffic from Claude Code.
CLAUDE_QUIET = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
}
DUMMY_OAUTH = "sk-ant-oat01-loopphase-demo-scripted"
LOGIN_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN", "CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_CONFIG_DIR")
PUSH = "git push -q origin HEAD:main"
FATAL_MESSAGE = ("messages.3.content.0: thinking blocks in the latest assistant message cannot be "
                 "modified. These blocks must remain as they were in the original response.")
STATE = "machine-docs"


class MissingCli(RuntimeError):
    """The requested agent CLI is not on PATH; the message says how to install it."""


def require_cli(name: str) -> str:
    path = shutil.which(AGENT_CLIS[name])
    if path is None:
        raise MissingCli(
            f"{AGENT_CLIS[name]} is not on PATH: `python3 dev.py demo --agents {name}` installs the "
            "pinned version with npm into .tools/npm (images/agent/cli-pins.txt)")
    return path


def _git_step(body: str, tag: str) -> str:
    return f"git pull -q --rebase origin main && {body} && {PUSH} && echo pushed-{tag}"


def claim(phase: str) -> str:
    return _git_step(f"mkdir -p src && echo '{phase} works' > src/{phase}.txt && git add -A && "
                     f"git commit -qm 'claim({phase}-gate): {phase} implemented'", f"claim-{phase}")


def review(phase: str) -> str:
    return _git_step(f"echo 'PASS: {phase} verified' > {STATE}/REVIEW-{phase}.md && git add -A && "
                     f"git commit -qm 'review({phase}-gate): PASS'", f"review-{phase}")


def done(phase: str) -> str:
    return _git_step(f"echo '## DONE' >> {STATE}/STATUS-{phase}.md && git add -A && "
                     f"git commit -qm 'done({phase}): all DoD items verified'", f"done-{phase}")


# What the core cannot read on opencode's screens yet (its idle screen reads as working, its
# rate-limit and API-error screens are not recognised): the opencode demo plays those phases
# as plain handoffs and its summary does not ask for these mechanisms.
OPENCODE_UNSHOWN = ("limit window armed", "limit probe", "limit lifted", "stall healed",
                    "fatal restarted cold", "declared wait", "login needs attention",
                    "attention cleared", "account hold armed", "account hold lifted")
# Real Claude Code resumes by itself after the reset, so no probe is typed (the right outcome:
# the probe waits for the CLI's own resume); the script plays no expired login or declared wait.
CLAUDE_UNSHOWN = ("limit probe", "login needs attention", "attention cleared", "declared wait")


def demo_script(workdirs: dict[str, Path], limit_reset_in: float = 20.0,
                kind: str = "claude") -> dict[str, Any]:
    """Model turns for the demo's builder and adversary (agents routed by their workdir)."""
    if kind == "opencode":
        return handoff_script(workdirs)
    p1, p2, p3 = "p1-handoff", "p2-limits", "p3-healing"

    def kickoff(phase: str) -> str:
        """Claude Code gets the kickoff typed; opencode a line naming the kickoff file."""
        return f"PHASE {phase} |KICKOFF-{phase}\\b"

    inbox = f"{STATE}/ADVERSARY-INBOX.md"
    builder = [
        {"when": kickoff(p1), "bash": claim(p1)},
        {"text": "Claimed the p1 gate; waiting for the Adversary's review."},
        {"when": "verdict or finding", "bash": done(p1)},
        {"text": "p1 is DONE."},
        # p2: a 5-hour limit at once; after the reset the next turns go on, whoever asks
        {"when": kickoff(p2), "limit": {"claim": "five_hour", "reset_in": limit_reset_in,
                                           "round_up": 60}},
        {"bash": _git_step(f"echo 'Please also check the limits doc.' > {inbox} && git add -A && "
                           "git commit -qm 'inbox: note for the adversary'", "inbox")},
        {"bash": claim(p2)},
        {"text": "Resumed after the limit and claimed p2."},
        {"when": "verdict or finding", "bash": done(p2)},
        {"text": "p2 is DONE."},
        # p3: silent after one line until the supervisor nudges or restarts it
        {"when": kickoff(p3), "text": "Looking at p3."},
        {"when": "nudge|Continue where you left off", "bash": claim(p3)},
        {"text": "Claimed p3."},
        {"when": "verdict or finding", "bash": done(p3)},
        {"text": "p3 is DONE; the sequence is complete."},
    ]
    adversary = [
        {"when": kickoff(p1), "text": "Adversary ready; waiting for a claim."},
        {"when": "gate CLAIM", "bash": review(p1)},
        {"text": "Reviewed p1: PASS."},
        {"when": kickoff(p2), "text": "Nothing to verify yet.\nWAITING-UNTIL: {now+35}"},
        # the inbox note and the claim land together: whichever ping comes first starts both
        {"when": "ADVERSARY-INBOX|gate CLAIM",
         "bash": _git_step(f"git rm -q {inbox} && git commit -qm 'inbox: consumed'", "inbox-consumed")},
        {"bash": review(p2)},
        {"text": "Read the inbox note and reviewed p2: PASS."},
        # p3: the conversation wedges (a fatal API error); a cold restart starts it afresh
        {"when": kickoff(p3), "error": {"status": 400, "type": "invalid_request_error",
                                           "message": FATAL_MESSAGE}},
        {"when": kickoff(p3), "text": "Adversary restarted; waiting for a claim."},
        {"when": "gate CLAIM", "bash": review(p3)},
        {"text": "Reviewed p3: PASS."},
    ]
    return {"agents": {
        "demo-builder": {"system_match": f"{workdirs['builder']}\\b", "turns": builder},
        "demo-adversary": {"system_match": f"{workdirs['adversary']}\\b", "turns": adversary},
    }}


def handoff_script(workdirs: dict[str, Path]) -> dict[str, Any]:
    """Every phase a plain claim -> review -> DONE handshake (the opencode demo)."""
    builder: list[dict[str, Any]] = []
    adversary: list[dict[str, Any]] = []
    for phase in ("p1-handoff", "p2-limits", "p3-healing"):
        start = f"PHASE {phase} |KICKOFF-{phase}\\b"
        note = ""
        if phase == "p2-limits":  # an inbox note for the adversary, consumed with its review
            note = _git_step(f"echo 'Please also check the limits doc.' > {STATE}/ADVERSARY-INBOX.md && "
                             "git add -A && git commit -qm 'inbox: note for the adversary'", "inbox") + " && "
        builder += [{"when": start, "bash": note + claim(phase)},
                    {"text": f"Claimed {phase}; waiting for the review."},
                    {"when": "verdict or finding", "bash": done(phase)},
                    {"text": f"{phase} is DONE."}]
        # opencode starts slowly: the claim ping may come before the kickoff line, so either
        # starts a review that first waits (bounded) for the claim to be on the branch
        wait_claim = (f"for i in $(seq 90); do git pull -q --rebase origin main; "
                      f"git log --format=%s | grep -q '^claim({phase}-gate)' && break; sleep 1; done")
        consume = (f"if [ -e {STATE}/ADVERSARY-INBOX.md ]; then git rm -q {STATE}/ADVERSARY-INBOX.md && "
                   f"git commit -qm 'inbox: consumed' && {PUSH}; fi; ")
        adversary += [{"when": f"{start}|gate CLAIM", "bash": f"{wait_claim}; {consume}{review(phase)}"},
                      {"text": f"Reviewed {phase}: PASS."}]
    return {"agents": {
        "demo-builder": {"system_match": f"{workdirs['builder']}\\b", "turns": builder},
        "demo-adversary": {"system_match": f"{workdirs['adversary']}\\b", "turns": adversary},
    }}


@dataclass
class RealAgents:
    """What the demo runs the real CLIs with: the endpoint, the environment, the spec bits."""

    server: ModelServer
    agents_spec: dict[str, Any]
    unshown: tuple[str, ...] = ()  # mechanisms this CLI's demo does not show


def opencode_config(base_url: str) -> str:
    """opencode.json: the scripted endpoint as an OpenAI-compatible provider, tools allowed."""
    return json.dumps({
        "$schema": "https://opencode.ai/config.json", "autoupdate": False, "share": "disabled",
        "model": "scripted/scripted",
        "provider": {"scripted": {
            "npm": "@ai-sdk/openai-compatible", "name": "Scripted",
            "options": {"baseURL": base_url + "/v1", "apiKey": "scripted"},
            "models": {"scripted": {"name": "Scripted model", "tool_call": True}}}},
        "permission": {"bash": "allow", "edit": "allow"},
    })


@contextmanager
def real_agents(kind: str, workdir: Path, state: Path) -> Iterator[RealAgents]:
    """Start the endpoint (and for opencode its server); set the environment the shims inherit.

    The process environment is changed for the duration (the local runtime's shims inherit
    it) and restored afterwards; the user's own login variables are hidden meanwhile.
    """
    require_cli(kind)
    workdirs = {role: state / "work" / role for role in ("builder", "adversary")}
    script = load_script(yaml.safe_dump(demo_script(workdirs, kind=kind)))
    saved = dict(os.environ)
    serve: subprocess.Popen[bytes] | None = None
    with ModelServer(script, log_file=workdir / "model-requests.jsonl") as server:
        try:
            for name in LOGIN_VARS:
                os.environ.pop(name, None)
            os.environ["ANTHROPIC_BASE_URL"] = server.url
            if kind == "claude":
                os.environ.update(CLAUDE_QUIET)
                os.environ["CLAUDE_CODE_OAUTH_TOKEN"] = DUMMY_OAUTH
                spec = {role: {"backend": "claude", "prompt": {"inline": f"You are the {role.title()}."}}
                        for role in ("builder", "adversary")}
            else:
                serve, url = _start_opencode(server.url, workdir)
                spec = {role: {"backend": "opencode", "opencodeServer": url,
                               "prompt": {"inline": f"You are the {role.title()}."}}
                        for role in ("builder", "adversary")}
            yield RealAgents(server, spec,
                             OPENCODE_UNSHOWN if kind == "opencode" else CLAUDE_UNSHOWN)
        finally:
            if serve is not None:
                _stop(serve)
            os.environ.clear()
            os.environ.update(saved)


def _start_opencode(model_url: str, workdir: Path) -> tuple[subprocess.Popen[bytes], str]:
    from loopphase.runtime.local import _free_port  # one free-port helper in the project

    port = _free_port()
    xdg = workdir / "opencode-server"
    env = {**os.environ, "OPENCODE_CONFIG_CONTENT": opencode_config(model_url),
           "OPENCODE_DISABLE_AUTOUPDATE": "1",
           **{name: str(xdg / sub) for name, sub in (("XDG_DATA_HOME", "data"), ("XDG_STATE_HOME", "state"),
                                                      ("XDG_CONFIG_HOME", "config"), ("XDG_CACHE_HOME", "cache"))}}
    log = (workdir / "opencode-serve.log").open("wb")
    try:
        proc = subprocess.Popen([require_cli("opencode"), "serve", "--hostname", "127.0.0.1", "--port", str(port)],
                                cwd=workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()
    url = f"http://127.0.0.1:{port}"
    try:
        wait_listening(url + "/config")
    except TimeoutError:
        _stop(proc)
        raise
    return proc, url


def wait_listening(url: str, timeout: float = 60.0) -> None:
    """Block until ``url`` answers HTTP (any status); TimeoutError after ``timeout`` seconds.

    ``opencode attach`` started before its server listens draws nothing and never recovers.
    """
    import time
    import urllib.error
    import urllib.request

    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError) as err:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{url} not answering after {timeout}s: {err}") from err
        time.sleep(0.2)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)
