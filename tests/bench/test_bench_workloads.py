"""The benchmark workloads themselves (pure: scenario generation, no processes)."""

from __future__ import annotations

import yaml
from loopphase.bench import latency, limits
from loopphase.sim.scenario import parse_scenario


def _work_seconds(text: str) -> list[float]:
    data = yaml.safe_load(text)
    return [step["work"]["seconds"] for steps in data["phases"].values() for step in steps if "work" in step]


def test_latency_jitter_is_seeded_and_shared_between_cadences() -> None:
    fast = latency.scenarios(3, 2, latency.Jitter(seed=6, push=1.0, done=1.0), inbox_exchanges=1)
    again = latency.scenarios(3, 2, latency.Jitter(seed=6, push=1.0, done=1.0), inbox_exchanges=1)
    slow = latency.scenarios(3, 2, latency.Jitter(seed=6, push=30.0, done=300.0), inbox_exchanges=1)
    other = latency.scenarios(3, 2, latency.Jitter(seed=7, push=1.0, done=1.0), inbox_exchanges=1)
    plain = latency.scenarios(3, 2, None, inbox_exchanges=1)
    assert fast == again
    assert fast != other
    for role in (0, 1):
        base = _work_seconds(plain[role])
        extra_fast = [f - b for f, b in zip(_work_seconds(fast[role]), base, strict=True)]
        extra_slow = [s - b for s, b in zip(_work_seconds(slow[role]), base, strict=True)]
        assert all(x >= 0 for x in extra_fast) and any(x > 0 for x in extra_fast)
        # The same fractions, scaled by each run's cadence (rounded to ms).
        for f, s in zip(extra_fast, extra_slow, strict=True):
            assert s >= f
    for text in fast:
        parse_scenario(yaml.safe_load(text))  # the sim accepts it


def test_latency_scenario_has_inbox_exchanges_with_unique_contents() -> None:
    builder, adversary = latency.scenarios(2, 1, None, inbox_exchanges=2)
    b, a = yaml.safe_load(builder)["phases"], yaml.safe_load(adversary)["phases"]
    notes = [s["write_file"]["content"] for steps in b.values() for s in steps if "write_file" in s]
    replies = [s["git"]["files"][latency.BUILDER_INBOX] for steps in a.values() for s in steps
               if "git" in s and latency.BUILDER_INBOX in s["git"].get("files", {})]
    assert len(notes) == len(set(notes)) == 4
    assert len(replies) == len(set(replies)) == 4
    subjects = [s[k]["commit"] for steps in [*b.values(), *a.values()] for s in steps for k in s if "commit" in s[k]]
    inbox = [x for x in subjects if x.startswith(("inbox(adversary)", "inbox(builder)"))]
    assert len(inbox) == 8
    # No inbox commit subject may read as a claim or a review (they would ping twice).
    assert not any(x.startswith(("claim", "review")) for x in inbox)


def test_limits_scenario_has_epoch_then_minute_banners() -> None:
    builder, _adversary = limits.scenarios(2, 35.0, 32.0, ["five_hour", "hit_limit"])
    (steps,) = yaml.safe_load(builder)["phases"].values()
    styles = [s["banner"]["style"] for s in steps if "banner" in s]
    assert styles == ["epoch", "epoch", "five_hour", "hit_limit"]
    zones = {s["banner"]["style"]: s["banner"]["tz"] for s in steps if "banner" in s}
    assert zones["hit_limit"] == "America/New_York" and zones["five_hour"] == "UTC"
