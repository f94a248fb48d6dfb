"""``loopphase sim-agent``: a simulated agent CLI driven by a scenario file.

It behaves on screen like Claude Code / opencode as far as the screen classifier cares
(spinner + "esc to interrupt" while working, limit banners, the fatal "thinking blocks cannot
be modified" error, ``WAITING-UNTIL:`` markers, a "> " prompt line at the bottom that shows
what is being typed and clears on submit), makes real git commits, and logs every line typed
into it (JSON lines, ``--input-log`` or ``$LOOPPHASE_SIM_INPUT_LOG``) so that tests can assert
that a ping arrived exactly once.

Usage (the shape the shim's ``sim`` adapter produces)::

    loopphase sim-agent --scenario S.yaml [--role R] [--phase P] [--workdir W]
        [--input-log L] [--continue | --resume ID] [--model M] [PROMPT]

``PROMPT`` is the kickoff (cold) or the continuation prompt (warm, ``--continue``/``--resume``);
it is logged as ``{"kind": "argv-prompt", "mode": "cold"|"warm", "text": ...}``. Like
``claude --resume``, a warm start without a prompt aborts (exit code 1).

Scenario format (YAML)::

    phases:              # keyed by phase id; "default" is used when the phase id is absent
      default:
        - work: {seconds: 5}              # spinner "⠋ Working… (esc to interrupt)" animating
        - say: {text: "some conversation text"}
        - git: {commit: "claim(gate-1): widgets done", files: {"src/w.txt": "x"},
                delete: ["old.txt"], push: true}
        - wait_input: {match: "CLAIM", timeout: 120}   # block until a typed line matches
        - banner: {style: five_hour, reset_in: 60, tz: UTC, menu: false, lift_after: 2}
        - soft_warning: {reset_in: 3600}  # "Approaching usage limit · resets at 2am"
        - fatal: {}                       # thinking-blocks API error, then hang (no spinner)
        - idle: {seconds: 600}            # no output at all
        - wait_until: {seconds: 30}       # print "WAITING-UNTIL: <iso utc>", then sleep
        - write_file: {path: machine-docs/ADVERSARY-INBOX.md, content: "...",
                       commit: "inbox: ...", push: true}
        - delete_file: {path: machine-docs/BUILDER-INBOX.md, commit: "ack", push: true}
        - append_done: {file: STATUS-gate-1.md, commit: "done(gate-1)", push: true}
        - exit: {code: 0}

Parameter names and types are checked when the scenario is parsed (``sim.scenario.STEP_PARAMS``;
``loopphase validate`` names ``phases.<id>[i].<kind>.<param>``), and a scenario must have steps
for at least one phase of the spec (a ``default`` list, or a list keyed by a phase id).

Banner styles: usage_limit, epoch, five_hour, session, opus_weekly, weekly, hit_limit,
hit_session, hit_weekly, extra_usage, monthly_spend (REFERENCE.md §3), and the families of
issue 11: team_weekly, weekly_time, sonnet, opus_hit, usage_credits, org_spend,
credit_balance, api_credit, auto_resume, relative (``sim.banners.BANNER_STYLES``). The reset time is
now + reset_in rounded up to the minute; after the banner the agent stays limited (no spinner)
until the reset time has passed AND a line is typed after it (a line typed earlier re-prints
the banner, like the real CLI); ``lift_after: N`` makes the limit lift N seconds after the
banner instead (tests). ``append_done`` appends "## DONE" to the phase status file
(``file``, else ``$LOOPPHASE_STATUS_FILE``, else ``STATUS-<phase>.md``) under the repo's state
dir (``--state-dir``/``$LOOPPHASE_STATE_DIR``, default ``machine-docs``) when the name has no
directory part. After the last step the agent idles at its prompt (still logging input).

Progress: the index of the next step is stored in ``<workdir>/.sim-progress-<role>-<phase>.json``
after every step, and BEFORE a disruptive step (fatal, idle, banner, wait_until, exit), so a
restarted agent continues after it instead of redoing commits or re-wedging.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import re
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from loopphase.cli import plain
from loopphase.sim import banners, gitops
from loopphase.sim.scenario import DISRUPTIVE_KINDS, ScenarioError, Step, load_scenario
from loopphase.sim.terminal import SPINNER_FRAMES, InputLog, Keyboard, Screen

log = logging.getLogger("loopphase.sim")

WORKING = "Working… (esc to interrupt)"
TICK = 0.1


class Progress:
    def __init__(self, workdir: Path, role: str, phase: str) -> None:
        self.path = workdir / f".sim-progress-{role}-{phase}.json"

    def load(self) -> int:
        try:
            return int(json.loads(self.path.read_text(encoding="utf-8"))["next"])
        except FileNotFoundError:
            return 0
        except (OSError, ValueError, KeyError, TypeError) as exc:
            log.warning("progress file %s unreadable (%s); starting at step 0", self.path, exc)
            return 0

    def save(self, next_index: int) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"next": next_index}), encoding="utf-8")
        tmp.replace(self.path)


class SimAgent:
    def __init__(self, args: argparse.Namespace, screen: Screen, keyboard: Keyboard) -> None:
        self.args = args
        self.screen = screen
        self.keyboard = keyboard
        self.workdir = Path(args.workdir).resolve()

    # ---- helpers -------------------------------------------------------------------------
    def next_line(self, timeout: float | None) -> tuple[datetime, str] | None:
        try:
            return self.keyboard.lines.get(timeout=timeout)
        except queue.Empty:
            return None

    def spin(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        frame = 0
        while time.monotonic() < deadline:
            self.screen.set_status(f"{SPINNER_FRAMES[frame % len(SPINNER_FRAMES)]} {WORKING}")
            frame += 1
            time.sleep(min(TICK, max(0.0, deadline - time.monotonic())))
        self.screen.set_status("")

    def hang(self) -> None:
        while True:
            time.sleep(3600)

    def git_after(self, params: dict[str, Any], paths: list[str], default_msg: str | None) -> None:
        message = params.get("commit", default_msg)
        if message:
            gitops.commit(self.workdir, str(message), paths)
            self.screen.print(f"● Committed: {message}")
        if params.get("push"):
            gitops.push(self.workdir)
            self.screen.print("● Pushed")

    def status_file(self, params: dict[str, Any]) -> str:
        name = str(
            params.get("file")
            or os.environ.get("LOOPPHASE_STATUS_FILE")
            or f"STATUS-{self.args.phase}.md"
        )
        if "/" not in name:
            name = f"{self.args.state_dir}/{name}"
        return name

    # ---- steps ---------------------------------------------------------------------------
    def run_step(self, step: Step) -> int | None:
        """Execute one step; returns an exit code when the agent should exit."""
        p = step.params
        kind = step.kind
        log.info("step %s %s", kind, p)
        if kind in {"git", "write_file", "delete_file", "append_done"}:
            gitops.pull(self.workdir)
        if kind == "work":
            self.spin(float(p.get("seconds", 3)))
        elif kind == "say":
            self.screen.print(*str(p.get("text", "")).splitlines())
        elif kind == "git":
            paths = gitops.write_files(self.workdir, dict(p.get("files") or {}))
            paths += [str(x) for x in p.get("delete") or []]
            gitops.delete_files(self.workdir, [str(x) for x in p.get("delete") or []])
            self.git_after(p, paths, None)
        elif kind == "write_file":
            paths = gitops.write_files(self.workdir, {str(p["path"]): str(p.get("content", ""))})
            self.screen.print(f"● Wrote {p['path']}")
            self.git_after(p, paths, None)
        elif kind == "delete_file":
            gitops.delete_files(self.workdir, [str(p["path"])])
            self.screen.print(f"● Deleted {p['path']}")
            self.git_after(p, [str(p["path"])], None)
        elif kind == "append_done":
            rel = self.status_file(p)
            path = gitops.safe_path(self.workdir, rel)
            path.parent.mkdir(parents=True, exist_ok=True)
            previous = path.read_text(encoding="utf-8") if path.exists() else ""
            sep = "" if not previous or previous.endswith("\n") else "\n"
            path.write_text(previous + sep + str(p.get("text", "## DONE")) + "\n", "utf-8")
            self.screen.print(f"● Marked {rel} DONE")
            self.git_after(p, [rel], None)
        elif kind == "wait_input":
            self.wait_input(str(p.get("match", ".")), p.get("timeout"))
        elif kind == "banner":
            self.banner(p)
        elif kind == "soft_warning":
            reset_at = banners.reset_time(datetime.now(UTC), float(p.get("reset_in", 3600)))
            self.screen.print(banners.render_soft_warning(reset_at, str(p.get("tz", "UTC"))))
        elif kind == "fatal":
            self.screen.set_status("")
            self.screen.print(f"  ⎿  {banners.FATAL_TEXT}")
            self.hang()
        elif kind == "idle":
            time.sleep(float(p.get("seconds", 60)))
        elif kind == "wait_until":
            seconds = float(p.get("seconds", 60))
            until = datetime.now(UTC) + timedelta(seconds=seconds)
            self.screen.print(f"WAITING-UNTIL: {until.strftime('%Y-%m-%dT%H:%M:%SZ')}")
            time.sleep(seconds)
        elif kind == "exit":
            return int(p.get("code", 0))
        return None

    def wait_input(self, pattern: str, timeout: object) -> None:
        regex = re.compile(pattern)
        deadline = None if timeout is None else time.monotonic() + float(str(timeout))
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                log.info("wait_input %r timed out", pattern)
                return
            got = self.next_line(remaining)
            if got and regex.search(got[1]):
                log.info("wait_input %r matched %r", pattern, got[1])
                self.spin(0.5)
                return

    def banner(self, p: dict[str, Any]) -> None:
        style = str(p.get("style", "five_hour"))
        tz = str(p.get("tz", "UTC"))
        now = datetime.now(UTC)
        reset_at = banners.reset_time(now, float(p.get("reset_in", 60)), style)
        lines = banners.render_banner(style, reset_at, tz)
        # lift_after (seconds): when the limit really lifts; default the banner's reset time.
        # Real reset times are hints (banners persist past them); tests use it to stay fast.
        lifts_at = reset_at
        if p.get("lift_after") is not None:
            lifts_at = now + timedelta(seconds=float(p["lift_after"]))
        if p.get("menu"):
            lines += list(banners.LIMIT_MENU)
        self.screen.set_status("")
        self.screen.print(*lines)
        while True:
            got = self.next_line(None)
            if got is None:
                continue
            received, _text = got
            if received >= lifts_at:
                log.info("limit lifted: input after %s", lifts_at.isoformat())
                # Like the real CLI, the resumed turn's output scrolls the banner away.
                self.screen.print("● Resuming where I stopped.", *RESUME_TRANSCRIPT)
                return
            self.screen.print(*lines)

    # ---- main loop -----------------------------------------------------------------------
    def run(self, steps: tuple[Step, ...]) -> int:
        progress = Progress(self.workdir, self.args.role, self.args.phase)
        index = progress.load()
        while index < len(steps):
            step = steps[index]
            if step.kind in DISRUPTIVE_KINDS:
                progress.save(index + 1)
            try:
                code = self.run_step(step)
            except (gitops.GitError, OSError, ValueError, KeyError, TypeError) as exc:
                log.error("step %d (%s) failed: %s", index, step.kind, exc)
                self.screen.print(f"Error: {step.kind} failed: {exc}")
                code = None
            index += 1
            progress.save(index)
            if code is not None:
                return code
        self.screen.set_status("")
        while True:
            self.next_line(None)


RESUME_TRANSCRIPT = tuple(
    f"  ⎿  {line}"
    for line in (
        "git pull --rebase: up to date", "Read machine-docs/STATUS.md (42 lines)",
        "Read plan (118 lines)", "Read REVIEW notes (12 lines)", "Searching for open items",
        "Found 3 matches", "Read src/widget.txt", "Checking the gate's DoD items",
        "item 1: verified", "item 2: verified", "item 3: in progress", "Running the tests",
        "12 passed", "Updating the journal", "Plan for the next step recorded",
        "Continuing with item 3", "",
    )
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="loopphase sim-agent", description=plain(__doc__.split("\n")[0]))
    parser.add_argument("--scenario", required=True, help="scenario YAML file")
    parser.add_argument("--role", default=os.environ.get("LOOPPHASE_ROLE", "builder"),
                        help="the role it plays (default $LOOPPHASE_ROLE, else builder)")
    parser.add_argument("--phase", default=os.environ.get("LOOPPHASE_PHASE", "default"),
                        help="phase id selecting the scenario steps (default $LOOPPHASE_PHASE, else default)")
    parser.add_argument("--workdir", default=os.getcwd(), help="the git working copy (default: the current directory)")
    parser.add_argument("--input-log", default=os.environ.get("LOOPPHASE_SIM_INPUT_LOG"),
                        help="JSON lines of everything typed into it (default $LOOPPHASE_SIM_INPUT_LOG)")
    parser.add_argument("--log-file", default=os.environ.get("LOOPPHASE_SIM_LOG"),
                        help="debug log (default: <input-log>.debug)")
    parser.add_argument("--state-dir", default=os.environ.get("LOOPPHASE_STATE_DIR", "machine-docs"),
                        help="the repository's loop-state folder (default $LOOPPHASE_STATE_DIR, else machine-docs)")
    parser.add_argument("--continue", dest="continue_", action="store_true",
                        help="warm start: the prompt is a continuation prompt")
    parser.add_argument("--resume", default=None, help="warm start of a given session id")
    parser.add_argument("--model", default=None, help="accepted and logged, like the real CLI")
    parser.add_argument("--dangerously-skip-permissions", action="store_true",
                        help="accepted and ignored, like the real CLI's flag")
    parser.add_argument("prompt", nargs="?", default=None, help="the kickoff (cold) or continuation (warm) prompt")
    return parser


def setup_logging(path: str | None) -> None:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    if path:
        handler: logging.Handler = logging.FileHandler(path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    else:
        handler = logging.NullHandler()
    root.addHandler(handler)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.log_file or (f"{args.input_log}.debug" if args.input_log else None))
    warm = bool(args.continue_ or args.resume)
    mode = "warm" if warm else "cold"
    input_log = InputLog(Path(args.input_log) if args.input_log else None, args.role, args.phase)
    input_log.record("start", mode=mode, pid=os.getpid(), model=args.model, resume=args.resume)
    try:
        scenario = load_scenario(args.scenario)
    except ScenarioError as exc:
        print(f"sim-agent: {exc}", file=sys.stderr)
        return 2
    if warm and not (args.prompt or "").strip():
        # Like `claude --resume <id>` without a prompt: refuse instead of silently going cold.
        print("Error: --continue/--resume needs a non-empty prompt", file=sys.stderr)
        input_log.record("refused", reason="warm start without a continuation prompt")
        return 1
    screen = Screen()
    keyboard = Keyboard(screen, input_log)
    if args.prompt is not None:
        input_log.record("argv-prompt", mode=mode, text=args.prompt)
    log.info("sim-agent start role=%s phase=%s mode=%s", args.role, args.phase, mode)
    screen.start()
    screen.print(f"✻ sim-agent ({args.role}, phase {args.phase}, {mode} start)")
    if args.prompt:
        first = args.prompt.strip().splitlines()[0] if args.prompt.strip() else ""
        more = len(args.prompt.strip()) > len(first[:120])
        screen.print(f"> {first[:120]}" + (" …" if more else ""))
    keyboard.start()
    try:
        return SimAgent(args, screen, keyboard).run(scenario.steps_for(args.phase))
    except KeyboardInterrupt:
        return 130
    finally:
        keyboard.restore()


if __name__ == "__main__":
    sys.exit(main())
