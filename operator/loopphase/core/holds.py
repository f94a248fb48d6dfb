"""Account-wide holds, pure: agents that share one subscription share its limit windows.

A hard limit (any class but ``transient``) on one agent holds every agent of the same account,
in this LoopPhase and, through ``Observations.account_holds``, in the other LoopPhases of the
same operator or run directory: pings stay queued, stall clocks are paused, nothing is
restarted. The hold is one shared window whose ``until`` is the earliest reliable (parsed from a
banner) reset among its sources; it lasts while any source window does. Each agent that shows a
banner of its own keeps its own window, probed (or auto-resumed) on its own screen.

Only holds from this LoopPhase's own windows are exported to the others (never the imported
ones), so a hold never echoes back and outlives its source.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from loopphase.api.spec import LoopPhaseSpec, Role
from loopphase.api.status import AccountHold, LimitWindow, LoopPhaseStatus

LOCAL_ACCOUNT = "local"
# Limits the CLI retries by itself are not the account's window.
NOT_A_HOLD = frozenset({"transient"})


def account_of(spec: LoopPhaseSpec, role: Role, namespace: str | None) -> str | None:
    """The account an agent's limits count on.

    ``agents.<role>.account`` when set; a local run (``namespace`` None) shares the machine's
    login: ``local``; on Kubernetes, the first Secret the agent's env reads
    (``secret:<namespace>/<name>``); else None (its own login: it holds only itself).

    On Kubernetes every account is scoped to the LoopPhase's namespace: a set ``account`` is
    ``ns:<namespace>/<account>`` (kept as written only when it is this namespace's own
    ``secret:<namespace>/...`` default), so an author cannot name another namespace's account
    and hold that namespace's agents with a banner of their own agent.
    """
    agent = spec.agent(role)
    if agent.account:
        if namespace is None or agent.account.startswith(f"secret:{namespace}/"):
            return agent.account
        return f"ns:{namespace}/{agent.account}"
    if namespace is None:
        return LOCAL_ACCOUNT
    for item in agent.env:
        return f"secret:{namespace}/{item.secret_key_ref.name}"
    return None


def compute(
    spec: LoopPhaseSpec,
    status: LoopPhaseStatus,
    external: Sequence[AccountHold],
    previous: Iterable[AccountHold],
    now: datetime,
    *,
    exclude: Role | None = None,
    windows: Mapping[Role, LimitWindow | None] | None = None,
) -> list[AccountHold]:
    """This tick's holds, one per account, from the agents' windows and the other LoopPhases'
    exported holds (only for accounts an agent of this LoopPhase uses). ``since`` carries over
    from ``previous`` for an account that stays held. ``exclude``: leave this role's own window
    out (what holds *it* is the others' limits; its own is its window). ``windows``: the
    windows to use instead of the agents' recorded ones (a preview of this tick's)."""
    wanted = spec.roles()
    # (account, window armed at, role, window) of every window that holds its account
    local: list[tuple[str, datetime, Role, LimitWindow]] = []
    for role, agent in status.agents.items():
        window = windows.get(role) if windows is not None else agent.limit
        if (window is None or window.limit_class in NOT_A_HOLD or role == exclude
                or agent.account is None or role not in wanted):
            continue
        local.append((agent.account, window.armed_at, role, window))
    if not local and not external:
        return []  # the usual tick: no window anywhere, nothing held
    ours = {a.account for r, a in status.agents.items() if r in wanted and a.account}
    # Another LoopPhase's hold counts until its stated end: past it, this LoopPhase's own agents
    # find out for themselves (a limit still there arms their own window). Its exporter may be
    # finished or gone and never lift it (a trial: a Complete run's hold blocked another run
    # two minutes past its `until`).
    imported = [h for h in external if h.account in ours and h.until > now]
    before = {h.account: h for h in previous}
    out: list[AccountHold] = []
    for account in sorted({entry[0] for entry in local} | {h.account for h in imported}):
        mine = [entry for entry in local if entry[0] == account]
        theirs = [h for h in imported if h.account == account]
        # The earliest reliable reset: banner-stated windows here, whatever the others exported.
        trusted = [w.until for _, _, _, w in mine if w.parsed] + [h.until for h in theirs]
        until = min(trusted) if trusted else min(w.until for _, _, _, w in mine)
        first_mine = min(mine, key=lambda e: (e[1], e[2])) if mine else None
        first_theirs = min(theirs, key=lambda h: (h.since, h.loop_phase or "", h.started_by)) if theirs else None
        if first_mine is not None and (first_theirs is None or first_mine[1] <= first_theirs.since):
            _, _, role, window = first_mine
            fields = {"started_by": role, "rule": window.rule, "excerpt": window.excerpt,
                      "limit_class": window.limit_class, "loop_phase": None}
        else:
            assert first_theirs is not None
            fields = {"started_by": first_theirs.started_by, "rule": first_theirs.rule,
                      "excerpt": first_theirs.excerpt, "limit_class": first_theirs.limit_class,
                      "loop_phase": first_theirs.loop_phase}
        kept = before.get(account)
        since = kept.since if kept is not None else now
        if kept is not None and kept.until == until and all(
            getattr(kept, name) == value for name, value in fields.items()
        ):
            out.append(kept)  # unchanged: the same object (no copy, a cheap compare)
            continue
        out.append(AccountHold(account=account, since=since, until=until, **fields))
    return out


def held(status: LoopPhaseStatus, account: str | None) -> AccountHold | None:
    """The hold on ``account`` as last computed (for pings and wakes after every role's pass)."""
    if account is None:
        return None
    return next((h for h in status.holds if h.account == account), None)


def held_by_others(
    spec: LoopPhaseSpec, status: LoopPhaseStatus, role: Role, external: Sequence[AccountHold],
    now: datetime,
    *,
    windows: Mapping[Role, LimitWindow | None] | None = None,
) -> AccountHold | None:
    """The hold other agents' limits put on ``role`` (its own window aside)."""
    account = status.agents[role].account
    if account is None:
        return None
    found = compute(spec, status, external, status.holds, now, exclude=role, windows=windows)
    return next((h for h in found if h.account == account), None)


def exported(spec: LoopPhaseSpec, status: LoopPhaseStatus, now: datetime) -> list[AccountHold]:
    """The holds from this LoopPhase's own agents' windows alone (what the others should see).
    None once the LoopPhase is complete: its agents are stopped, their windows hold nobody."""
    if status.completed_at is not None:
        return []
    return compute(spec, status, (), status.holds, now)


def describe(hold: AccountHold) -> str:
    who = f"{hold.loop_phase}:{hold.started_by}" if hold.loop_phase else hold.started_by
    kind = "usage" if hold.limit_class == "unknown" else hold.limit_class
    return (
        f"account {hold.account}: {who}'s {kind} limit ({hold.excerpt or hold.rule}) "
        f"until {hold.until.isoformat()}"
    )
