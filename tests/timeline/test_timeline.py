"""`loopphase timeline`: a real local run's logs drawn to PNG, opened and checked pixel by pixel."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from loopphase.runner.loop import Runner
from loopphase.runner.specfile import load_spec
from loopphase.timeline.model import build, load
from loopphase.timeline.render import LIMIT_COLORS, STATE_COLORS, render
from matplotlib import colors as mcolors
from matplotlib import image as mimage

from tests.runner.test_local_e2e import QUIET_ADVERSARY, _write_spec, processes_under

CLAIM_LIMIT_DONE = """
phases:
  p1-handoff:
    - work: {seconds: 2}
    - git: {commit: "claim(p1): real work", files: {"src/a.txt": "a\\n"}, push: true}
    - work: {seconds: 2}
    - banner: {style: epoch, reset_in: 12}
    - work: {seconds: 2}
    - append_done: {commit: "done(p1)", push: true}
  p2-limits:
    - work: {seconds: 2}
    - append_done: {commit: "done(p2)", push: true}
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("timeline")
    spec_path = _write_spec(root, CLAIM_LIMIT_DONE, QUIET_ADVERSARY)
    runner = Runner(load_spec(spec_path), root / "state")
    try:
        final = asyncio.run(asyncio.wait_for(runner.run(exit_on_complete=True), timeout=150))
    finally:
        asyncio.run(runner.stop_everything())
    assert final.completed_at is not None
    assert processes_under(root) == []
    return root / "state"


def rgb(hex_colour: str) -> np.ndarray:
    return np.array(mcolors.to_rgb(hex_colour))


def share(row: np.ndarray, colour: str) -> float:
    """The fraction of a pixel row within a small distance of ``colour``."""
    return float((np.abs(row[:, :3] - rgb(colour)).max(axis=1) < 0.03).mean())


@pytest.mark.slow
def test_png_has_a_lane_per_role_coloured_by_state(run_dir: Path, tmp_path: Path) -> None:
    timeline = load(run_dir)
    assert timeline.roles == ["builder", "adversary"]
    # The model follows the run: one claim ping builder -> adversary, a limit window, phases.
    assert [(p.label, p.source, p.role) for p in timeline.pings] == [("claim", "builder", "adversary")]
    assert [s.role for s in timeline.limits] == ["builder"]
    assert [label.split(":")[0] for _, label in timeline.phases] == ["start", "advance", "complete"]

    out = tmp_path / "t.png"
    layout = render(timeline, out)
    pixels = mimage.imread(out)
    assert pixels.shape[:2] == (layout.height, layout.width)
    assert (pixels[:, :, :3] < 0.9).any(axis=2).mean() > 0.02, "the picture is blank"
    for role in timeline.roles:
        row = pixels[layout.rows[role], layout.x_start:layout.x_end]
        span_seconds: dict[str, float] = {}
        for span in timeline.states:
            if span.role == role:
                span_seconds[span.label] = span_seconds.get(span.label, 0) + (span.end - span.start).total_seconds()
        total = (timeline.end - timeline.start).total_seconds()
        for state, seconds in span_seconds.items():
            if seconds / total > 0.1:  # long enough to be many pixels wide
                assert share(row, STATE_COLORS[state]) > 0.5 * seconds / total, (role, state)
        absent = set(STATE_COLORS) - set(span_seconds)
        for state in absent:
            assert share(row, STATE_COLORS[state]) < 0.01, (role, state)
    # Between the lanes: background, not a lane colour.
    gap = (layout.rows["builder"] + layout.rows["adversary"]) // 2
    assert share(pixels[gap, layout.x_start:layout.x_end], "#ffffff") > 0.9
    # The builder's limit window: a band just above its lane in the class colour.
    window = timeline.limits[0]
    band_row = layout.rows["builder"] - int(0.375 * (layout.rows["adversary"] - layout.rows["builder"]))
    band = pixels[band_row - 3: band_row + 4, layout.x_start:layout.x_end].reshape(-1, pixels.shape[2])
    assert share(band, LIMIT_COLORS[window.label]) > 0.02, window


def test_svg_and_html_outputs(tmp_path: Path) -> None:
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    states = [
        {"time": t0.isoformat(), "role": "builder", "state": "Active", "limitClass": None},
        {"time": (t0 + timedelta(seconds=30)).isoformat(), "role": "builder", "state": "Limited", "limitClass": "weekly"},
        {"time": t0.isoformat(), "role": "adversary", "state": "Idle", "limitClass": None},
    ]
    actions = [{"time": (t0 + timedelta(seconds=10)).isoformat(), "action": "RestartAgent", "role": "builder",
                "rule": "heal.dead", "reason": "r", "ok": True, "mode": "cold"}]
    timeline = build(states, actions, end=t0 + timedelta(seconds=60))
    assert [(h.role, h.label) for h in timeline.heals] == [("builder", "restart-cold")]
    assert [(s.label, s.start, s.end) for s in timeline.limits] == [
        ("weekly", t0 + timedelta(seconds=30), t0 + timedelta(seconds=60))]
    render(timeline, tmp_path / "t.svg")
    assert (tmp_path / "t.svg").read_text().lstrip().startswith("<?xml")
    render(timeline, tmp_path / "t.html")
    page = (tmp_path / "t.html").read_text()
    assert page.startswith("<!doctype html>") and "<svg" in page
    with pytest.raises(ValueError, match=r"\.png, \.svg or \.html"):
        render(timeline, tmp_path / "t.jpg")


def test_cli_explains_an_empty_state_dir(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "loopphase.cli", "timeline", "--state-dir", str(tmp_path),
                           "-o", str(tmp_path / "x.png")], capture_output=True, text=True, timeout=60)
    assert done.returncode == 1 and "no recorded history" in done.stderr


def test_phase_labels_stay_inside_the_plot() -> None:
    """The run's last boundary ("complete", at its very end) was labelled to its right and cut
    off at the edge of the picture (a new user's trial)."""
    from loopphase.timeline.model import Timeline
    from loopphase.timeline.render import _figure

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    end = t0 + timedelta(seconds=120)
    states = [{"time": t0.isoformat(), "role": "builder", "state": "Active", "limitClass": None}]
    timeline = build(states, [], end=end)
    timeline = Timeline(**{**timeline.__dict__, "phases": [
        (t0 + timedelta(seconds=5), "phase p1"), (end, "complete")]})
    fig, ax = _figure(timeline)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    figure_box = fig.bbox
    labels = [t for t in ax.texts if t.get_text() in ("phase p1", "complete")]
    assert len(labels) == 2
    for text in labels:
        box = text.get_window_extent(renderer)
        assert figure_box.x0 <= box.x0 and box.x1 <= figure_box.x1, (text.get_text(), box, figure_box)
