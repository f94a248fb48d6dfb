"""Draw a Timeline with matplotlib (Agg, no display): PNG, SVG, or an HTML page embedding the SVG.

One horizontal lane per role (top to bottom in ``timeline.roles`` order) coloured by state,
limit windows as hatched bands over the lane coloured by class, heals as markers by tier,
pings as arrows from the sending lane to the receiving one, phase boundaries as vertical lines.
"""

from __future__ import annotations

import html
import io
from dataclasses import dataclass
from pathlib import Path

from loopphase.timeline.model import Timeline

try:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
except ImportError as err:  # the optional extra
    raise ImportError(
        "loopphase timeline needs matplotlib: pip install 'loopphase[timeline]'"
    ) from err

STATE_COLORS = {
    "Active": "#2ca02c", "Idle": "#bcbd22", "Waiting": "#17becf", "Limited": "#ff7f0e",
    "Starting": "#9edae5", "Fatal": "#d62728", "Dead": "#7f7f7f", "Stopped": "#c7c7c7",
    "NeedsAttention": "#e377c2",
}
LIMIT_COLORS = {
    "session": "#1f77b4", "weekly": "#9467bd", "monthly": "#8c564b", "model": "#e377c2",
    "spend": "#d62728", "transient": "#7f7f7f", "unknown": "#393b79",
}
HEAL_MARKERS = {"nudge": "o", "restart-warm": "s", "restart-cold": "D", "recreate": "X"}
LANE_HEIGHT = 0.6
DPI = 100


@dataclass(frozen=True)
class Layout:
    """Where the lanes landed in the PNG: role -> pixel row of the lane's centre (from the top),
    and the pixel columns of the run's first and last instant."""

    rows: dict[str, int]
    x_start: int
    x_end: int
    width: int
    height: int


def _figure(tl: Timeline) -> tuple[plt.Figure, plt.Axes]:
    fig, ax = plt.subplots(figsize=(12, 1.6 + 1.1 * len(tl.roles)), dpi=DPI)
    lane = {role: len(tl.roles) - 1 - i for i, role in enumerate(tl.roles)}
    for span in tl.states:
        x0 = mdates.date2num(span.start)
        ax.broken_barh([(x0, mdates.date2num(span.end) - x0)], (lane[span.role] - LANE_HEIGHT / 2, LANE_HEIGHT),
                       facecolors=STATE_COLORS.get(span.label, "#000000"), edgecolor="none")
    for span in tl.limits:
        x0 = mdates.date2num(span.start)
        color = LIMIT_COLORS.get(span.label, "#393b79")
        ax.broken_barh([(x0, mdates.date2num(span.end) - x0)],
                       (lane[span.role] + LANE_HEIGHT / 2, 0.15), facecolors=color, edgecolor=color,
                       hatch="//")
    for mark in tl.heals:
        ax.plot(mdates.date2num(mark.time), lane[mark.role] + LANE_HEIGHT / 2 + 0.28,
                marker=HEAL_MARKERS.get(mark.label, "*"), color="#d62728", markersize=7, linestyle="none")
    for mark in tl.pings:
        if mark.source not in lane or mark.source == mark.role:
            continue
        x = mdates.date2num(mark.time)
        ax.annotate("", xy=(x, lane[mark.role]), xytext=(x, lane[mark.source]),
                    arrowprops={"arrowstyle": "->", "color": "#1f1f1f", "lw": 1.2})
    span = max((tl.end - tl.start).total_seconds(), 1e-9)
    for when, label in tl.phases:
        x = mdates.date2num(when)
        ax.axvline(x, color="#444444", linestyle="--", linewidth=1)
        # A boundary in the right fifth (the run's "complete" at its very end) is labelled to
        # its left, so the label stays inside the plot instead of being cut at the edge.
        near_end = (when - tl.start).total_seconds() / span > 0.8
        ax.text(x, len(tl.roles) - 0.35, label, fontsize=7, rotation=0, va="bottom",
                ha="right" if near_end else "left")
    ax.set_yticks(list(lane.values()), list(lane.keys()))
    ax.set_ylim(-0.8, len(tl.roles) - 0.1)
    ax.set_xlim(mdates.date2num(tl.start), mdates.date2num(tl.end))
    ax.xaxis.set_major_formatter(mdates.DateFormatter("%H:%M:%S"))
    ax.set_title(f"LoopPhase run {tl.start:%Y-%m-%d %H:%M:%S} - {tl.end:%H:%M:%S} UTC", fontsize=10)
    used_states = sorted({s.label for s in tl.states})
    used_limits = sorted({s.label for s in tl.limits})
    handles = [Patch(color=STATE_COLORS.get(s, "#000000"), label=s) for s in used_states]
    handles += [Patch(facecolor=LIMIT_COLORS.get(c, "#393b79"), hatch="//", label=f"limit: {c}") for c in used_limits]
    handles += [plt.Line2D([], [], marker=HEAL_MARKERS.get(t, "*"), color="#d62728", linestyle="none",
                           label=f"heal: {t}") for t in sorted({m.label for m in tl.heals})]
    ax.legend(handles=handles, loc="upper center", bbox_to_anchor=(0.5, -0.12), ncol=6, fontsize=7,
              frameon=False)
    fig.subplots_adjust(left=0.1, right=0.98, top=0.88, bottom=0.3)
    return fig, ax


def _layout(fig: plt.Figure, ax: plt.Axes, tl: Timeline) -> Layout:
    fig.canvas.draw()
    width, height = fig.canvas.get_width_height()
    rows = {}
    for i, role in enumerate(tl.roles):
        _, y = ax.transData.transform((mdates.date2num(tl.start), len(tl.roles) - 1 - i))
        rows[role] = int(round(height - y))
    x_start, _ = ax.transData.transform((mdates.date2num(tl.start), 0))
    x_end, _ = ax.transData.transform((mdates.date2num(tl.end), 0))
    return Layout(rows, int(round(x_start)), int(round(x_end)), width, height)


def render(tl: Timeline, out: Path) -> Layout:
    """Write ``out`` (.png, .svg or .html by suffix); returns where the lanes are in pixels.

    ValueError for any other suffix.
    """
    suffix = out.suffix.lower()
    if suffix not in {".png", ".svg", ".html"}:
        raise ValueError(f"-o {out}: the output must end in .png, .svg or .html")
    fig, ax = _figure(tl)
    try:
        layout = _layout(fig, ax, tl)
        if suffix == ".html":
            buffer = io.StringIO()
            fig.savefig(buffer, format="svg", dpi=DPI)
            title = html.escape(f"LoopPhase timeline {tl.start:%Y-%m-%d %H:%M}")
            out.write_text(f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>"
                           f"<body>\n{buffer.getvalue()}\n</body></html>\n", encoding="utf-8")
        else:
            fig.savefig(out, format=suffix[1:], dpi=DPI)
    finally:
        plt.close(fig)
    return layout
