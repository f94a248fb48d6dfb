"""``loopphase bench [--smoke|--full] [--only NAME ...] [--output PATH]``.

Runs the benchmarks, prints a table and writes JSON (default ``bench/results.json``,
``bench/results.smoke.json`` for ``--smoke``). See ``bench/README.md`` for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import logging
import platform
import shutil
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from loopphase import __version__
from loopphase.cli import LOG_LEVELS, log_level, plain

SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "smoke": {
        "core": {"seconds": 1.0, "min_calls": 20},
        "footprint": {"seconds": 3.0, "interval": 0.5},
        "latency": {"phases": 2, "rounds": 2, "inbox_exchanges": 1, "replicas": 1,
                    "fast_interval": 1.0, "reference_interval": 5.0, "timeout": 480.0},
        "limits": {"windows": 1, "minute_styles": ["five_hour"], "reset_in": 8.0, "fast_interval": 1.0,
                   "reference_interval": 5.0, "timeout": 240.0},
        "scale": {"sizes": [3], "interval": 5.0, "window": 10.0, "settle": 5.0, "timeout": 120.0},
        "realcli": {"seconds": 5.0, "interval": 1.0, "timeout": 300.0},
        "images": {"fresh": False, "timeout": 1800.0},
        "webhooks": {"phases": 2, "rounds": 2, "slow_interval": 5.0, "idle_seconds": 900.0,
                     "timeout": 480.0},
        "overhead": {"sizes": [1, 10], "ticks": 50},
    },
    # The smallest size that still drives every code path once: what CI runs so nothing rots.
    "ci": {
        "core": {"seconds": 0.5, "min_calls": 20},
        "footprint": {"seconds": 1.0, "interval": 0.5},
        # Fast and reference side by side (the figures are not read at this size); heavy_interval
        # 4 s instead of the scaled 20 s: DONE every heavyInterval is driven once without ~40 s
        # of waiting. No minute banner in limits: its reset is rounded up to the next minute
        # (up to +60 s); smoke and full have them.
        "latency": {"phases": 2, "rounds": 1, "inbox_exchanges": 1, "replicas": 1, "heavy_interval": 4.0,
                    "side_by_side": True, "fast_interval": 1.0, "reference_interval": 2.0, "timeout": 180.0},
        "limits": {"windows": 1, "reset_in": 5.0, "side_by_side": True, "fast_interval": 1.0,
                   "reference_interval": 2.0, "timeout": 150.0},
        "scale": {"sizes": [2], "interval": 5.0, "window": 10.0, "settle": 5.0, "timeout": 120.0},
        "realcli": {"seconds": 2.0, "interval": 1.0, "timeout": 300.0},
        "images": {"fresh": False, "timeout": 1800.0},
        # The slow poll scaled 30 s -> 3 s; the webhook run's 60 s safety net is not (the run
        # ends before it is due); 5 simulated minutes of idle observes.
        "webhooks": {"phases": 1, "rounds": 1, "slow_interval": 3.0, "idle_seconds": 300.0,
                     "timeout": 150.0},
        "overhead": {"sizes": [1, 3], "ticks": 10},
    },
    "full": {
        "core": {"seconds": 5.0, "min_calls": 200},
        "footprint": {"seconds": 30.0, "interval": 1.0},
        "latency": {"phases": 4, "rounds": 3, "inbox_exchanges": 1, "replicas": 2,
                    "fast_interval": 1.0, "reference_interval": 30.0, "timeout": 4500.0},
        "limits": {"windows": 3, "minute_styles": ["five_hour", "hit_limit", "usage_limit", "session"],
                   "reset_in": 35.0, "fast_interval": 1.0, "reference_interval": 30.0, "timeout": 2700.0},
        "scale": {"sizes": [10, 100, 300], "interval": 5.0, "window": 30.0, "settle": 10.0,
                  "timeout": 900.0},
        "realcli": {"seconds": 30.0, "interval": 1.0, "timeout": 400.0},
        # From nothing: the local bases (when built locally) and both images without cache.
        "images": {"fresh": True, "timeout": 1800.0},
        "webhooks": {"phases": 3, "rounds": 4, "slow_interval": 30.0, "idle_seconds": 3600.0,
                     "timeout": 2400.0},
        "overhead": {"sizes": [1, 10, 100], "ticks": 100},
    },
}
NAMES = ("core", "footprint", "latency", "limits", "scale", "webhooks", "overhead", "realcli",
         "images")
# realcli needs the agent CLIs (npm) and minutes of wall time, images a container engine (and
# root for local bases): only when asked for (--only).
DEFAULT_NAMES = ("core", "footprint", "latency", "limits", "scale", "webhooks", "overhead")


def _run_core(params: dict[str, Any]) -> dict[str, Any]:
    from loopphase.bench import core

    return core.run(**params)


def _run_footprint(params: dict[str, Any]) -> dict[str, Any]:
    from loopphase.bench import footprint

    return footprint.run(**params)


def _run_latency(params: dict[str, Any]) -> dict[str, Any]:
    from loopphase.bench import latency

    return latency.run(**params)


def _run_limits(params: dict[str, Any]) -> dict[str, Any]:
    from loopphase.bench import limits

    return limits.run(**params)


def _run_scale(params: dict[str, Any]) -> dict[str, Any]:
    from loopphase.bench import scale

    return scale.run(**params)


def _run_realcli(params: dict[str, Any]) -> dict[str, Any]:
    from loopphase.bench import realcli

    return realcli.run(**params)


def _run_images(params: dict[str, Any]) -> dict[str, Any]:
    from loopphase.bench import images

    return images.run(**params)


def _run_webhooks(params: dict[str, Any]) -> dict[str, Any]:
    from loopphase.bench import webhooks

    return webhooks.run(**params)


def _run_overhead(params: dict[str, Any]) -> dict[str, Any]:
    from loopphase.bench import overhead

    return overhead.run(**params)


RUNNERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "core": _run_core, "footprint": _run_footprint, "latency": _run_latency, "limits": _run_limits,
    "scale": _run_scale, "webhooks": _run_webhooks, "overhead": _run_overhead,
    "realcli": _run_realcli, "images": _run_images,
}


def _fmt(value: Any, unit: str = "") -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3g}{unit}" if abs(value) < 100 else f"{value:,.0f}{unit}"
    return f"{value}{unit}"


def table(results: dict[str, Any]) -> str:
    rows: list[tuple[str, str, str]] = []
    core = results.get("core")
    if core and "error" not in core:
        for name in ("changing", "idempotent"):
            r = core[name]
            rows.append((f"core reconcile ({name})", f"{r['calls_per_s']:,.0f} calls/s  {r['us_per_call']:.0f} µs/call",
                         "-"))
    fp = results.get("footprint")
    if fp and "error" not in fp:
        rows.append(("idle shim RSS (shim alone)", f"{fp['shim']['rss_mib']} MiB (USS {fp['shim']['uss_mib']})",
                     "< 40 MiB " + ("OK" if fp["shim_within_target"] else "MISSED")))
        rows.append(("idle shim+tmux+agent RSS", f"{fp['total']['rss_mib']} MiB", "-"))
        rows.append(("idle shim CPU (shim / total)", f"{fp['shim']['cpu_pct']}% / {fp['total']['cpu_pct']}%", "-"))
    lat = results.get("latency")
    if lat and "error" not in lat:
        for metric, target in (("handoff", 2.0), ("inbox_handoff", 2.0), ("phase_advance", 5.0)):
            fast, ref = lat["fast"][metric], lat["reference"][metric]
            rows.append((
                f"{metric} p50/p95 fast ({lat['fast']['signal_interval']}s)",
                f"{_fmt(fast['p50'], 's')} / {_fmt(fast['p95'], 's')}  (n={fast['n']})",
                f"p95 <= {target}s " + ("OK" if fast["p95"] is not None and fast["p95"] <= target else "MISSED"),
            ))
            rows.append((
                f"{metric} p50/p95 reference ({lat['reference']['signal_interval']}s)",
                f"{_fmt(ref['p50'], 's')} / {_fmt(ref['p95'], 's')}  (n={ref['n']})",
                f"ratio p50 {_fmt(lat['ratios'][metric]['p50'], 'x')} p95 {_fmt(lat['ratios'][metric]['p95'], 'x')}",
            ))
        rows.append(("kills/restarts during the runs",
                     f"{lat['fast']['restarts']} / {lat['reference']['restarts']}", "0"))
        rows.append(("unmatched pushes (handoff / inbox), fast / reference",
                     f"{lat['fast']['handoff_unmatched']}/{lat['fast']['inbox_unmatched']} / "
                     f"{lat['reference']['handoff_unmatched']}/{lat['reference']['inbox_unmatched']}", "0"))
    lim = results.get("limits")
    if lim and "error" not in lim:
        slack = lim["workload"]["limit_reset_slack_s"]
        for run in ("fast", "reference"):
            r = lim[run]
            rows.append((
                f"limit: first probe - reset, {run} ({r['signal_interval']}s)",
                f"{_fmt(r['first_probe_after_reset']['p50'], 's')} / {_fmt(r['first_probe_after_reset']['p95'], 's')}"
                f"  (n={r['first_probe_after_reset']['n']})",
                f"p95 <= slack+1 = {slack + 1:g}s "
                + ("OK" if (r["beyond_slack"]["p95"] is not None and r["beyond_slack"]["p95"] <= 1.0) else "MISSED"),
            ))
            rows.append((
                f"limit: lifted seen - reset, {run}",
                f"{_fmt(r['lifted_after_reset']['p50'], 's')} / {_fmt(r['lifted_after_reset']['p95'], 's')}",
                f"kills in windows {r['kills_in_windows']} (target 0)",
            ))
        for run in ("fast", "reference"):
            m = lim[run].get("minute") or {}
            if not m.get("n_windows"):
                continue
            rows.append((
                f"limit, minute banners: first probe - reset, {run}",
                f"{_fmt(m['first_probe_after_reset']['p50'], 's')} / {_fmt(m['first_probe_after_reset']['p95'], 's')}"
                f"  (n={m['first_probe_after_reset']['n']})",
                f"p95 <= slack+1 = {slack + 1:g}s "
                + ("OK" if (m["beyond_slack"]["p95"] is not None and m["beyond_slack"]["p95"] <= 1.0) else "MISSED"),
            ))
            rows.append((
                f"limit, minute banners: lifted seen - reset, {run}",
                f"{_fmt(m['lifted_after_reset']['p50'], 's')} / {_fmt(m['lifted_after_reset']['p95'], 's')}",
                ", ".join(m["rules"]),
            ))
        rows.append(("limit: first probe ratio ref/fast",
                     f"p50 {_fmt(lim['ratios']['first_probe_after_reset']['p50'], 'x')} "
                     f"p95 {_fmt(lim['ratios']['first_probe_after_reset']['p95'], 'x')}", "-"))
    sc = results.get("scale")
    if sc and "error" not in sc:
        for r in sc["runs"]:
            label = f"scale N={r['loops']} ({r['agents']} agents)"
            if "error" in r:
                rows.append((label, "ERROR: " + r["error"][:80], "-"))
                continue
            reqs = " ".join(f"{k}={v:g}" for k, v in r["api_requests_per_tick"].items())
            rows.append((label,
                         f"{_fmt(r['cpu_ms_per_tick_per_agent'])} ms CPU/tick/agent  "
                         f"{_fmt(r['cpu_core_fraction'] * 100)}% core  RSS {r['steady_rss_mib']:g} MiB"
                         f" (peak {r['peak_rss_mib']:g})  tick p95 {_fmt(r['tick_s']['p95'], 's')}",
                         f"API/tick: {reqs}"))
        ex = sc.get("extrapolation") or {}
        if ex:
            rows.append((f"scale: {ex['agents']} agents @ {ex['interval_s']:g}s (from {ex['from_agents']})",
                         f"{_fmt(ex['core_fraction'] * 100)}% core  {ex['rss_mib']:g} MiB",
                         f"<= 25% core {'OK' if ex['cpu_within_target'] else 'MISSED'}, "
                         f"<= 400 MiB {'OK' if ex['rss_within_target'] else 'MISSED'}"))
    rc = results.get("realcli")
    if rc and "error" not in rc:
        for cli, fp in rc["footprint"].items():
            if "skipped" in fp:
                rows.append((f"real {cli}: idle agent footprint", "skipped", fp["skipped"]))
                continue
            extra = f"; opencode serve {fp['opencode_serve']['rss_mib']} MiB" if "opencode_serve" in fp else ""
            rows.append((f"real {cli}: idle agent pod RSS (shim+tmux+CLI)",
                         f"{fp['agent_pod_rss_mib']} MiB (CLI {fp['agent']['rss_mib']}, shim {fp['shim']['rss_mib']})"
                         f"{extra}", f"CPU {fp['agent']['cpu_pct']}% (CLI)"))
        lr = rc["limit_resume"]
        if "skipped" in lr:
            rows.append(("real claude: limit resume", "skipped", lr["skipped"]))
        else:
            rows.append(("real claude: stated reset -> working again",
                         f"{_fmt(lr['working_again_after_reset_s'], 's')} (probes at {lr['probes_after_reset_s']} s)",
                         f"duplicate prompts {lr['duplicate_prompts']}, kills {lr['kills_in_window']} (target 0/0)"))
    built = results.get("images")
    if built and "error" not in built:
        from loopphase.bench.images import rows as image_rows

        rows.extend(image_rows(built))
    hooks = results.get("webhooks")
    if hooks and "error" not in hooks:
        from loopphase.bench.webhooks import rows as webhook_rows

        rows.extend(webhook_rows(hooks))
    over = results.get("overhead")
    if over and "error" not in over:
        from loopphase.bench.overhead import rows as overhead_rows

        rows.extend(overhead_rows(over))
    for name in NAMES:
        if name in results and "error" in results[name]:
            rows.append((name, "ERROR: " + results[name]["error"][:80], "-"))
    width = max((len(r[0]) for r in rows), default=10)
    vwidth = max((len(r[1]) for r in rows), default=10)
    lines = [f"{'benchmark':<{width}}  {'result':<{vwidth}}  target / note", "-" * (width + vwidth + 20)]
    lines += [f"{a:<{width}}  {b:<{vwidth}}  {c}" for a, b, c in rows]
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="loopphase bench", description=plain(__doc__),
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--smoke", action="store_true", help="small, fast sizes (CI)")
    size.add_argument("--full", action="store_true", help="full sizes (default)")
    size.add_argument("--ci", action="store_true", help="the smallest sizes: every path once")
    parser.add_argument("--only", nargs="+", choices=NAMES, metavar="NAME",
                        help=f"run only these ({', '.join(NAMES)})")
    parser.add_argument("--output", type=Path, help="JSON output path")
    parser.add_argument("--log-level", type=log_level, default="WARNING", help=f"one of {', '.join(LOG_LEVELS)} (default WARNING)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    size_name = "smoke" if args.smoke else "ci" if args.ci else "full"
    output = args.output or Path("bench") / (
        "results.json" if size_name == "full" else f"results.{size_name}.json"
    )
    selected = list(args.only or DEFAULT_NAMES)
    if any(n in selected for n in ("footprint", "latency", "limits", "webhooks", "realcli")):
        for tool in ("tmux", "git"):
            if shutil.which(tool) is None:
                print(f"loopphase bench: {tool} is required for {selected}", file=sys.stderr)
                return 2
    results: dict[str, Any] = {
        "meta": {"size": size_name, "version": __version__, "python": platform.python_version(),
                 "machine": platform.machine(), "cpus": _cpus(),
                 "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
                 "params": {n: SIZES[size_name][n] for n in selected}},
    }
    failed = False
    for name in selected:
        print(f"running {name} ({size_name}) ...", file=sys.stderr, flush=True)
        t0 = time.monotonic()
        try:
            results[name] = RUNNERS[name](dict(SIZES[size_name][name]))
        except Exception as exc:
            logging.getLogger("loopphase.bench").exception("%s failed", name)
            results[name] = {"error": f"{type(exc).__name__}: {exc}"}
            failed = True
        results[name]["wall_s"] = round(time.monotonic() - t0, 1)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(table(results))
    print(f"\nresults written to {output}")
    return 1 if failed else 0


def _cpus() -> int | None:
    import os

    return os.cpu_count()
