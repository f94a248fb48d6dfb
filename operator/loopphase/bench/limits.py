"""Limit resume latency: banner reset -> probe typed -> limit lifted; kills inside windows.

Workload (one phase, local runner, sim agents): the builder works 1 s, then ``windows`` times
shows an exact-time usage-limit banner (``Claude AI usage limit reached|<epoch>``, reset
``reset_in`` s ahead, to the second) and, once a line is typed after the reset, resumes and
works (reference tick + 2 s, so both cadences can see it working again); finally it appends ``## DONE``. ``reset_in`` must exceed the reference tick: a
banner first seen after its reset time is treated as unparsable (flat probe after probeFallback). The adversary works 1 s and idles. Run twice: fast
(signalInterval 1 s) and reference cadence (signalInterval 30 s, limitResetSlack 45 s at full
size; smoke scales both by 5/30). Both runs use the same limitResetSlack as their cadence says.

* reset time: parsed from the runner's ``limit-armed`` event ("banner says reset ...Z", to the
  second, which is exact for the epoch banner);
* probe time: the sim's input log (the first probe text typed at or after the reset);
* ``first_probe_after_reset`` = probe - reset; ``beyond_slack`` = that - limitResetSlack (the
  issue's target: <= 1 s);
* ``lifted_after_reset`` = the runner's ``limit-lifted`` event - reset (the supervisor saw the
  agent active again);
* ``kills_in_windows`` = Restart/Recreate/Stop actions for the builder between a window's
  arming and its lift or the next arming (orderly ``phase.*`` stops excluded; target 0).
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from loopphase.bench.latency import _jsonl, _seconds, _ts, build_repo, drive, phase_ids
from loopphase.bench.stats import ratio, summary

STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)"
RESET_RE = re.compile(r"banner says reset " + STAMP)
REARMED_RE = re.compile(r"re-armed from fresh banner until " + STAMP)
PROBE_RE = re.compile(r"loopphase probe", re.IGNORECASE)
KILLS = {"RestartAgent", "RecreateHost", "StopAgent"}
ORDERLY_STOPS = ("phase.",)  # stops for a phase transition / sequence completion are not kills


def scenarios(windows: int, reset_in: float, resume_work: float) -> tuple[str, str]:
    pid = phase_ids(1)[0]
    b: list[dict[str, Any]] = [{"work": {"seconds": 1.0}}]
    for _ in range(windows):
        b += [{"banner": {"style": "epoch", "reset_in": reset_in}}, {"work": {"seconds": resume_work}}]
    b += [{"append_done": {"commit": f"done({pid})", "push": True}}]
    a: list[dict[str, Any]] = [{"work": {"seconds": 1.0}}, {"idle": {"seconds": 86400}}]
    return yaml.safe_dump({"phases": {pid: b}}), yaml.safe_dump({"phases": {pid: a}})


def manifest(bare: Path, windows: int, reset_in: float, timing: dict[str, str],
             resume_work: float = 3.0) -> dict[str, Any]:
    builder, adversary = scenarios(windows, reset_in, resume_work)
    pid = phase_ids(1)[0]
    return {
        "apiVersion": "loopphase.dev/v1alpha1", "kind": "LoopPhase", "metadata": {"name": "bench-limits"},
        "spec": {
            "repo": {"url": str(bare), "branch": "main"},
            "phases": [{"id": pid, "plan": f"plans/{pid}.md", "statusFile": f"STATUS-{pid}.md"}],
            "agents": {
                "builder": {"backend": "sim", "simScenario": builder, "prompt": {"inline": "Builder."}},
                "adversary": {"backend": "sim", "simScenario": adversary, "prompt": {"inline": "Adversary."}},
            },
            "timing": timing, "timeZone": "UTC",
        },
    }


def analyse(state: Path, slack: float) -> dict[str, Any]:
    actions = _jsonl(state / "actions.jsonl")
    inputs = _jsonl(state / "logs" / "builder.inputs.jsonl")
    probes = [_ts(r["time"]) for r in inputs if r.get("kind") == "input" and PROBE_RE.search(str(r.get("text", "")))]
    resets: list[float] = []
    armed_at: list[float] = []
    for a in actions:
        if a.get("action") == "EmitEvent" and a.get("kind") == "limit-armed" and a.get("role") == "builder":
            reason = str(a.get("reason", ""))
            m = RESET_RE.search(reason)
            rearmed = REARMED_RE.search(reason)
            reset = None
            if m:
                reset = _stamp(m.group(1))
            elif rearmed:  # a fresh banner while the window was still armed: until = reset + slack
                reset = _stamp(rearmed.group(1)) - slack
            if reset is not None and reset not in resets:
                resets.append(reset)
                armed_at.append(_ts(a["time"]))
    lifts = [_ts(a["time"]) for a in actions
             if a.get("action") == "EmitEvent" and a.get("kind") == "limit-lifted" and a.get("role") == "builder"]
    first_probe: list[float] = []
    lifted: list[float] = []
    kills = 0
    for reset, armed in zip(resets, armed_at, strict=True):
        after = [p for p in probes if p >= reset]
        if after:
            first_probe.append(min(after) - reset)
        lift = [t for t in lifts if t >= reset]
        later = [t for t in armed_at if t > armed]
        if lift and (not later or min(lift) < min(later)):
            lifted.append(min(lift) - reset)
        end = min([*lift, *later, float("inf")])
        kills += sum(1 for a in actions if a.get("action") in KILLS and a.get("role") == "builder"
                     and not str(a.get("rule", "")).startswith(ORDERLY_STOPS)
                     and armed <= _ts(a["time"]) <= end)
    return {
        "windows_seen": len(resets), "first_probe_after_reset": summary(first_probe),
        "beyond_slack": summary([x - slack for x in first_probe]),
        "lifted_after_reset": summary(lifted), "kills_in_windows": kills, "limit_reset_slack": slack,
        "samples": {"first_probe_after_reset": [round(x, 3) for x in first_probe]},
    }


def _stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def run_one(windows: int, reset_in: float, timing: dict[str, str], slack: float, timeout: float,
            resume_work: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="loopphase-bench-lim-") as tmp:
        workdir = Path(tmp)
        bare = build_repo(workdir, 1)
        spec_path = workdir / "bench.yaml"
        spec_path.write_text(yaml.safe_dump(manifest(bare, windows, reset_in, timing, resume_work), sort_keys=False))
        completed, phase, wall = drive(workdir, spec_path, timeout)
        out = analyse(workdir / "state", slack)
    out.update({"completed": completed, "final_phase": phase, "wall_s": round(wall, 1), "timing": timing})
    return out


def run(windows: int = 4, reset_in: float = 5.0, fast_interval: float = 1.0,
        reference_interval: float = 30.0, timeout: float = 1800.0) -> dict[str, Any]:
    scale = reference_interval / 30.0
    slack = 45.0 * scale
    common = {"startGrace": "2s", "limitResetSlack": _seconds(slack)}
    # Resumed work lasts longer than the slow tick so both cadences can see the agent working
    # again (a shorter burst is invisible at 30 s and the next banner reads as a re-arm).
    resume_work = reference_interval + 2.0
    fast = run_one(windows, reset_in, {"signalInterval": _seconds(fast_interval), **common}, slack, timeout,
                   resume_work)
    fast["signal_interval"] = fast_interval
    reference = run_one(windows, reset_in, {"signalInterval": _seconds(reference_interval), **common},
                        slack, timeout, resume_work)
    reference["signal_interval"] = reference_interval
    ratios = {m: {q: ratio(reference[m][q], fast[m][q]) for q in ("p50", "p95")}
              for m in ("first_probe_after_reset", "beyond_slack", "lifted_after_reset")}
    return {"workload": {"windows": windows, "reset_in_s": reset_in, "limit_reset_slack_s": slack,
                         "resume_work_s": resume_work},
            "fast": fast, "reference": reference, "ratios": ratios}
