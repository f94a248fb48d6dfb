"""Prompts reach the agent as prompts (hardening faults 2 and 3): a kickoff that looks like an
option stays a prompt, a kickoff over Linux's argv limit is passed by file, a restart checks its
launch before it stops the running agent, and a session id from the agent-writable events file
must look like one before it reaches ``--resume``."""

from __future__ import annotations

from pathlib import Path

import pytest
from loopphase.shim.adapters import ARGV_PROMPT_MAX, claude_argv, valid_session_id

from tests.shim.conftest import until

pytestmark = pytest.mark.timeout(120)


def argv_prompts(shim) -> list[tuple[str, str]]:  # type: ignore[no-untyped-def]
    return [(r["mode"], r["text"]) for r in shim.inputs("argv-prompt")]


async def test_a_kickoff_that_looks_like_an_option_is_a_prompt(start_shim) -> None:
    kickoff = "--scenario=/tmp/evil.yaml --role adversary"
    shim = await start_shim(kickoff=kickoff)

    async def prompts() -> list[tuple[str, str]]:
        return argv_prompts(shim)

    assert await until(prompts, bool, what="kickoff logged") == [("cold", kickoff)]
    assert (await shim.client.state()).alive  # the agent took it as text and runs


async def test_a_kickoff_over_the_argv_limit_is_passed_by_file(start_shim) -> None:
    shim = await start_shim(kickoff="short kickoff")

    async def prompts() -> list[tuple[str, str]]:
        return argv_prompts(shim)

    await until(prompts, bool, what="first kickoff")
    before = (await shim.client.state()).pid
    huge = "Build the whole thing. " + "x" * (150 * 1024)  # over MAX_ARG_STRLEN (128 KiB)
    await shim.client.restart("cold", kickoff=huge)
    logged = await until(prompts, lambda p: len(p) == 2, what="second kickoff")
    line = logged[-1][1]
    assert len(line) < 500 and "LOOPPHASE-KICKOFF-" in line
    path = Path(line.split("Read ", 1)[1].split(" in full", 1)[0])
    assert path.read_text(encoding="utf-8") == huge
    after = await shim.client.state()
    assert after.alive and after.pid != before


async def test_a_restart_that_cannot_launch_leaves_the_agent_running(start_shim) -> None:
    shim = await start_shim(kickoff="k")
    st = await until(shim.client.state, lambda s: s.alive and s.pid, what="agent up")
    from loopphase.shim.client import ShimError

    with pytest.raises(ShimError):
        await shim.client.restart("warm", continuation="   ")
    again = await shim.client.state()
    assert again.alive and again.pid == st.pid  # nothing was stopped


def test_session_ids_are_checked_and_prompts_end_the_options() -> None:
    good = "857af5f0-0781-4051-b3f5-cd872e79febf"
    assert valid_session_id(good) == good
    assert valid_session_id("--settings=/tmp/x.json") is None
    assert claude_argv("warm", "go on", None, "--mcp-config=/tmp/m.json") == [
        "claude", "--continue", "--dangerously-skip-permissions", "--", "go on"]
    assert claude_argv("warm", "--x", "opus", good) == [
        "claude", "--resume", good, "--model", "opus", "--dangerously-skip-permissions", "--", "--x"]
    assert ARGV_PROMPT_MAX < 128 * 1024
