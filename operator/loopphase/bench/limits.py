"""Limit resume latency: banner reset -> probe typed -> limit lifted; kills inside windows.

Workload (one phase, local runner, sim agents): the builder works 1 s, then shows one usage-limit
banner per window and, once a line is typed after the reset, resumes and works (reference tick
+ 2 s, so both cadences can see it working again); finally it appends ``## DONE``. First
``windows`` exact-time banners (``Claude AI usage limit reached|<epoch>``, reset ``reset_in`` s
ahead, to the second), then one banner per entry of ``minute_styles`` whose reset is given only
to the minute (``5-hour limit reached ∙ resets 3:07pm``, ``You've hit your limit · resets
10:07am (America/New_York)``, ...; the sim rounds now + ``reset_in`` UP to the minute and lifts
the limit at exactly that minute). ``reset_in`` must exceed the reference tick: a banner first
seen after its reset time is probed after the slack, not at its reset. The adversary works 1 s
and idles. Run twice: fast (signalInterval 1 s) and reference cadence (signalInterval 30 s,
limitResetSlack 45 s at full size; smoke scales both by 5/30). Both runs use the same
limitResetSlack as their cadence says.

* reset time: parsed from the runner's ``limit-armed`` event ("banner says reset ...Z", to the
  second): exact for the epoch banner; for a minute banner it is the minute the banner shows,
  which is also the sim's real reset (by construction; see bench/README.md for real CLIs);
* probe time: the sim's input log (the first probe text typed at or after the reset);
* ``first_probe_after_reset`` = probe - reset; ``beyond_slack`` = that - limitResetSlack (the
  issue's target: <= 1 s);
* ``lifted_after_reset`` = the runner's ``limit-lifted`` event - reset (the supervisor saw the
  agent active again);
* ``kills_in_windows`` = Restart/Recreate/Stop actions for the builder between a window's
  arming and its lift or the next arming (orderly ``phase.*`` stops excluded; target 0).

The top-level figures are the epoch windows'; ``minute`` holds the same figures for the minute
banners, ``windows`` one record per window (banner rule, reset, figures).
"""

from __future__ import annotations

import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from loopphase.bench.latency import _jsonl, _seconds, _ts, build_repo, drive, drive_many, phase_ids
from loopphase.bench.stats import ratio, summary

STAMP = r"(\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ)"
RESET_RE = re.compile(r"banner says reset " + STAMP)
REARMED_RE = re.compile(r"re-armed from fresh banner until " + STAMP)
PROBE_RE = re.compile(r"loopphase probe", re.IGNORECASE)
KILLS = {"RestartAgent", "RecreateHost", "StopAgent"}
ORDERLY_STOPS = ("phase.",)  # stops for a phase transition / sequence completion are not kills
EPOCH_RULE = "limit.claude-epoch"
# The zone a minute banner is printed in (the spec's timeZone is UTC): zone-less banners are
# read in the spec's zone, a "(Zone)" suffix overrides it.
BANNER_TZ = {"hit_limit": "America/New_York"}


def scenarios(windows: int, reset_in: float, resume_work: float,
              minute_styles: tuple[str, ...] | list[str] = ()) -> tuple[str, str]:
    pid = phase_ids(1)[0]
    b: list[dict[str, Any]] = [{"work": {"seconds": 1.0}}]
    for style in ["epoch"] * windows + list(minute_styles):
        banner = {"style": style, "reset_in": reset_in, "tz": BANNER_TZ.get(style, "UTC")}
        b += [{"banner": banner}, {"work": {"seconds": resume_work}}]
    b += [{"append_done": {"commit": f"done({pid})", "push": True}}]
    a: list[dict[str, Any]] = [{"work": {"seconds": 1.0}}, {"idle": {"seconds": 86400}}]
    return yaml.safe_dump({"phases": {pid: b}}), yaml.safe_dump({"phases": {pid: a}})


def manifest(bare: Path, windows: int, reset_in: float, timing: dict[str, str],
             resume_work: float = 3.0, minute_styles: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
    builder, adversary = scenarios(windows, reset_in, resume_work, minute_styles)
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
    rules: list[str] = []
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
                rules.append(str(a.get("rule", "")))
    lifts = [_ts(a["time"]) for a in actions
             if a.get("action") == "EmitEvent" and a.get("kind") == "limit-lifted" and a.get("role") == "builder"]
    windows: list[dict[str, Any]] = []
    kills = 0
    for reset, armed, rule in zip(resets, armed_at, rules, strict=True):
        after = [p for p in probes if p >= reset]
        lift = [t for t in lifts if t >= reset]
        later = [t for t in armed_at if t > armed]
        end = min([*lift, *later, float("inf")])
        window_kills = sum(1 for a in actions if a.get("action") in KILLS and a.get("role") == "builder"
                           and not str(a.get("rule", "")).startswith(ORDERLY_STOPS)
                           and armed <= _ts(a["time"]) <= end)
        kills += window_kills
        windows.append({
            "rule": rule, "minute_granular": rule != EPOCH_RULE,
            "reset": datetime.fromtimestamp(reset, UTC).isoformat(),
            "banner_seen_before_reset_s": round(reset - armed, 3),
            "first_probe_after_reset": round(min(after) - reset, 3) if after else None,
            "lifted_after_reset": (round(min(lift) - reset, 3)
                                   if lift and (not later or min(lift) < min(later)) else None),
            "kills": window_kills,
        })
    out = _figures([w for w in windows if not w["minute_granular"]], slack)
    out.update({
        "windows_seen": len(windows), "kills_in_windows": kills, "limit_reset_slack": slack,
        "minute": _figures([w for w in windows if w["minute_granular"]], slack), "windows": windows,
    })
    return out


def _figures(windows: list[dict[str, Any]], slack: float) -> dict[str, Any]:
    first_probe = [w["first_probe_after_reset"] for w in windows if w["first_probe_after_reset"] is not None]
    lifted = [w["lifted_after_reset"] for w in windows if w["lifted_after_reset"] is not None]
    return {
        "n_windows": len(windows), "rules": sorted({w["rule"] for w in windows}),
        "first_probe_after_reset": summary(first_probe),
        "beyond_slack": summary([x - slack for x in first_probe]),
        "lifted_after_reset": summary(lifted),
        "samples": {"first_probe_after_reset": first_probe, "lifted_after_reset": lifted},
    }


def _stamp(text: str) -> float:
    return datetime.strptime(text, "%Y-%m-%d %H:%M:%SZ").replace(tzinfo=UTC).timestamp()


def prepare(root: Path, windows: int, reset_in: float, timing: dict[str, str], resume_work: float,
            minute_styles: tuple[str, ...] | list[str] = ()) -> tuple[Path, Path]:
    """A throwaway repository and spec under ``root``: (workdir, spec path)."""
    root.mkdir(parents=True)
    bare = build_repo(root, 1)
    spec_path = root / "bench.yaml"
    spec_path.write_text(yaml.safe_dump(manifest(bare, windows, reset_in, timing, resume_work, minute_styles),
                                        sort_keys=False))
    return root, spec_path


def run(windows: int = 4, reset_in: float = 5.0, fast_interval: float = 1.0,
        reference_interval: float = 30.0, timeout: float = 1800.0,
        minute_styles: tuple[str, ...] | list[str] = (), side_by_side: bool = False) -> dict[str, Any]:
    """``side_by_side`` runs fast and reference at once (CI: the figures are not for reading)."""
    scale = reference_interval / 30.0
    slack = 45.0 * scale
    common = {"startGrace": "2s", "limitResetSlack": _seconds(slack)}
    # Resumed work lasts longer than the slow tick so both cadences can see the agent working
    # again (a shorter burst is invisible at 30 s and the next banner reads as a re-arm).
    resume_work = reference_interval + 2.0
    styles = list(minute_styles)
    timings = {"fast": {"signalInterval": _seconds(fast_interval), **common},
               "reference": {"signalInterval": _seconds(reference_interval), **common}}
    out: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="loopphase-bench-lim-") as tmp:
        jobs = {name: prepare(Path(tmp) / name, windows, reset_in, timing, resume_work, styles)
                for name, timing in timings.items()}
        if side_by_side:
            outcomes = dict(zip(jobs, drive_many(list(jobs.values()), timeout), strict=True))
        else:
            outcomes = {name: drive(*job, timeout) for name, job in jobs.items()}
        for name, (workdir, _spec) in jobs.items():
            completed, phase, wall = outcomes[name]
            out[name] = analyse(workdir / "state", slack)
            out[name].update({"completed": completed, "final_phase": phase, "wall_s": round(wall, 1),
                              "timing": timings[name], "side_by_side": side_by_side})
    fast, reference = out["fast"], out["reference"]
    fast["signal_interval"] = fast_interval
    reference["signal_interval"] = reference_interval
    metrics = ("first_probe_after_reset", "beyond_slack", "lifted_after_reset")
    ratios: dict[str, Any] = {m: {q: ratio(reference[m][q], fast[m][q]) for q in ("p50", "p95")} for m in metrics}
    ratios["minute"] = {m: {q: ratio(reference["minute"][m][q], fast["minute"][m][q]) for q in ("p50", "p95")}
                        for m in metrics}
    return {"workload": {"windows": windows, "minute_styles": styles, "reset_in_s": reset_in,
                         "limit_reset_slack_s": slack, "resume_work_s": resume_work},
            "fast": fast, "reference": reference, "ratios": ratios}
