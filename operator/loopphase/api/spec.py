"""The ``LoopPhase`` spec: what the user declares.

Every validation error names the field (pydantic's location, camelCase) and says how to fix it.
"""

from __future__ import annotations

import re
import string
from typing import Literal

from pydantic import Field, field_validator, model_validator

from loopphase.api.base import (
    DNS_LABEL_RE,
    K8S_NAME_RE,
    ApiModel,
    Duration,
    check_relative_path,
    check_safe_token,
    ref_name_problem,
    shown,
)
from loopphase.api.errors import FieldError
from loopphase.api.notify import NotifySpec
from loopphase.core.patterns import injected_text_violations
from loopphase.core.typeable import untypeable_reason
from loopphase.core.userpattern import compile_pattern

Role = Literal["builder", "adversary", "orchestrator"]
LoopRole = Literal["builder", "adversary"]
ROLES: tuple[Role, ...] = ("builder", "adversary", "orchestrator")
Backend = Literal["claude", "opencode", "sim"]

HOUR = 3600.0
_RESOURCE_NAME_RE = re.compile(r"^(?:[a-z0-9.-]+/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?\Z")
PATTERN_MAX_CHARS = 200
# Kubernetes keeps a quantity in an int64 of its base unit: anything larger is not a quantity
# any cluster accepts (and 1e99999999 "parses" as a finite decimal).
QUANTITY_MAX = 2**63 - 1

# An image reference (the OCI distribution reference grammar, as `docker pull` and the kubelet
# read it): [domain[:port]/]path[:tag][@digest]; path components lower-case.
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?"
_PATH_PART = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
IMAGE_RE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_PATH_PART}(?:/{_PATH_PART})*)"
    r"(?::(?P<tag>[\w][\w.-]{0,127}))?"
    r"(?:@(?P<digest>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}))?\Z"
)
NAME_MAX = 255


def image_problem(value: str) -> str | None:
    """Why ``value`` is not an image reference, or None."""
    match = IMAGE_RE.match(value)
    if match is None:
        return (f"{shown(value)} is not an image reference: [registry[:port]/]name[:tag][@digest], "
                "the name in lower case (e.g. ghcr.io/acme/agent:1.2 or "
                "registry.local:5000/agent@sha256:<64 hex>)")
    if len(match.group("name")) > NAME_MAX:
        return f"the image name is {len(match.group('name'))} characters; at most {NAME_MAX}"
    return None
DAY = 86400.0


class KeyRef(ApiModel):
    name: str
    key: str

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not K8S_NAME_RE.match(value):
            raise ValueError(f"{shown(value)} must be a Kubernetes object name")
        return value


class WebhookSpec(ApiModel):
    """Push webhooks from the git host: handoffs at push speed, the poll as a slow safety net.

    On a cluster the secret comes from ``secretRef``; with ``loopphase run`` from
    ``secretFile`` (or ``--webhook-secret-file`` / ``LOOPPHASE_WEBHOOK_SECRET``).
    """

    secret_ref: KeyRef | None = Field(
        None, description="Secret key holding the webhook secret (GitHub/Gitea/Forgejo: the HMAC "
        "key; GitLab: the secret token)"
    )
    secret_file: str | None = Field(
        None, description="loopphase run: file holding the webhook secret, relative to the spec file"
    )
    poll_interval: Duration = Field(
        60, ge=1, le=DAY,
        description="the safety-net poll of the remote while webhooks are expected (a missed "
        "webhook is caught within this)",
    )

    @field_validator("secret_file")
    @classmethod
    def _secret_file(cls, value: str | None) -> str | None:
        if value is not None and (not value.strip() or any(c in value for c in "\n\r\0")):
            raise ValueError("must be a file path (one line, not empty)")
        return value


class RepoSpec(ApiModel):
    url: str = Field(description="git URL both agents clone and push to")
    branch: str = Field("main", description="the branch the loop pushes to")
    state_dir: str = Field("machine-docs", description="folder of loop-state files")
    credentials_secret: str | None = Field(
        None, description="Secret with git credentials (keys: username/password or ssh key)"
    )
    max_file_bytes: int = Field(
        1024 * 1024, ge=1024, le=8 * 1024 * 1024,
        description="the largest status/inbox file read at the pushed head (bytes); a larger "
        "one is reported in the Degraded condition and treated as absent",
    )
    webhook: WebhookSpec | None = Field(
        None, description="receive push webhooks; polling then slows to webhook.pollInterval"
    )

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not value or any(ch.isspace() or not ch.isprintable() for ch in value) or value.startswith("-"):
            raise ValueError(
                "must be a git URL without spaces or control characters, not starting with '-'"
            )
        return value

    @field_validator("branch")
    @classmethod
    def _branch(cls, value: str) -> str:
        problem = ref_name_problem(value)
        if problem is not None:
            raise ValueError(f"{shown(value)} is not a valid branch name: {problem}")
        check_safe_token(value, "branch")
        return value

    @field_validator("state_dir")
    @classmethod
    def _state_dir(cls, value: str) -> str:
        return check_relative_path(value, "the path")

    @field_validator("credentials_secret")
    @classmethod
    def _secret(cls, value: str | None) -> str | None:
        if value is not None and not K8S_NAME_RE.match(value):
            raise ValueError(f"{shown(value)} must be a Kubernetes object name")
        return value

    @model_validator(mode="after")
    def _no_credentials_in_clear(self) -> RepoSpec:
        if self.credentials_secret and self.url.lower().startswith(("http://", "git://")):
            raise FieldError((("credentialsSecret",),
                f"is set but spec.repo.url {self.url.split('://')[0]}:// is not encrypted: "
                "credentials are only sent over https:// or ssh; change the URL or drop the Secret"))
        return self


class PhaseSpec(ApiModel):
    id: str = Field(description="phase id, a DNS label (e.g. 1c, gate-2)")
    plan: str = Field(description="plan file, relative to the repository root")
    status_file: str = Field(description="status file; looked up in stateDir first, then root")
    models: dict[Role, str] | None = Field(None, description="per-role model overrides")
    approval: Literal["auto", "manual"] = Field(
        "auto", description="manual: a verified DONE waits for `loopphase approve` (or the "
        "loopphase.dev/approve annotation) before the next phase starts",
    )
    approval_agents: Literal["idle", "stop"] = Field(
        "idle", description="while awaiting approval: idle (left running, no pings or heals) "
        "or stop (stopped; started warm again after a reject)",
    )

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not DNS_LABEL_RE.match(value):
            raise ValueError(
                f"{shown(value)} must be a DNS label: lower-case letters, digits and '-', "
                "at most 63 characters, starting and ending with a letter or digit"
            )
        return value

    @field_validator("plan")
    @classmethod
    def _plan(cls, value: str) -> str:
        return check_relative_path(value, "the path")

    @field_validator("status_file")
    @classmethod
    def _status(cls, value: str) -> str:
        return check_relative_path(value, "the path")

    @field_validator("models")
    @classmethod
    def _models(cls, value: dict[str, str] | None) -> dict[str, str] | None:
        for role, model in (value or {}).items():
            try:
                check_safe_token(model, "the model")
            except ValueError as err:
                raise FieldError(((role,), str(err))) from None
        return value


class PromptSource(ApiModel):
    """Exactly one of: inline text, a ConfigMap key, or a file (local runs only)."""

    inline: str | None = None
    config_map_key_ref: KeyRef | None = None
    file: str | None = Field(None, description="path relative to the spec file (loopphase run)")

    @model_validator(mode="after")
    def _exactly_one(self) -> PromptSource:
        given = [n for n in ("inline", "configMapKeyRef", "file") if self._get(n) is not None]
        if len(given) != 1:
            raise ValueError(
                "needs exactly one of inline, configMapKeyRef or file "
                f"(got {', '.join(given) or 'none'})"
            )
        return self

    def _get(self, wire_name: str) -> object:
        return {
            "inline": self.inline,
            "configMapKeyRef": self.config_map_key_ref,
            "file": self.file,
        }[wire_name]


class SecretEnv(ApiModel):
    """An environment variable taken from a Secret (API keys): never inline."""

    name: str
    secret_key_ref: KeyRef

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not value.replace("_", "a").isalnum() or value[0].isdigit():
            raise ValueError(f"{shown(value)} must be letters, digits and '_'")
        return value


class Resources(ApiModel):
    """Container resources as Kubernetes quantities (``cpu: 500m``, ``memory: 2Gi``)."""

    requests: dict[str, str | int] | None = None
    limits: dict[str, str | int] | None = None

    @field_validator("requests", "limits")
    @classmethod
    def _quantities(cls, value: dict[str, str | int] | None) -> dict[str, str | int] | None:
        for name, amount in (value or {}).items():
            if not _RESOURCE_NAME_RE.match(name):
                raise FieldError(((name,),
                    f"{shown(name)} is not a resource name (e.g. cpu, memory, ephemeral-storage)"))
            # Imported here: the shim imports the spec module, and every agent pod carries a
            # shim (the kubernetes package costs it megabytes; tests/shim checks its imports).
            from kubernetes.utils.quantity import parse_quantity

            try:
                quantity = parse_quantity(amount)
                if not quantity.is_finite():
                    raise ValueError("not finite")
            # ArithmeticError: decimal.InvalidOperation ("NaN" and "sNaN" parse, then refuse
            # to compare).
            except (ValueError, ArithmeticError) as err:
                raise FieldError(((name,),
                    f"{shown(amount)} is not a Kubernetes quantity (e.g. 500m, 2, 512Mi, 2Gi)")) from err
            if quantity < 0:
                raise FieldError(((name,), f"{shown(amount)} is negative; quantities are zero or more"))
            if quantity > QUANTITY_MAX:
                raise FieldError(((name,), f"{shown(amount)} is too large for Kubernetes (at most "
                                           f"{QUANTITY_MAX} {'cores' if name == 'cpu' else 'bytes'}); "
                                           "e.g. cpu: 2, memory: 4Gi"))
        return value


class AgentSpec(ApiModel):
    backend: Backend = "claude"
    model: str | None = None
    image: str | None = None
    resources: Resources | None = None
    prompt: PromptSource | None = None
    env: list[SecretEnv] = Field(default_factory=list)
    opencode_server: str | None = Field(None, description="opencode server URL to attach to")
    sim_scenario: str | None = Field(
        None,
        description="sim backend: the scenario as inline YAML text (a mapping with 'phases'), or "
        "one line naming a scenario file relative to the spec file (loopphase run only)",
    )
    account: str | None = Field(
        None,
        description="the subscription this agent's usage limits count on: a hard limit on one "
        "agent holds every agent of the same account (in every LoopPhase of the operator). "
        "Default: `local` for `loopphase run`; on Kubernetes `secret:<namespace>/<name>` of the "
        "first Secret in env, else none (the agent holds only itself). On Kubernetes a set "
        "account is scoped to the LoopPhase's namespace (`ns:<namespace>/<account>`): "
        "LoopPhases of one namespace share it, other namespaces cannot name it",
    )

    @field_validator("model")
    @classmethod
    def _model(cls, value: str | None) -> str | None:
        return None if value is None else check_safe_token(value, "the model")

    @field_validator("image")
    @classmethod
    def _image(cls, value: str | None) -> str | None:
        problem = None if value is None else image_problem(value)
        if problem is not None:
            raise ValueError(problem)
        return value

    @field_validator("account")
    @classmethod
    def _account(cls, value: str | None) -> str | None:
        # Printable only: the account is shown in every LoopPhase's status and Events that it
        # holds (other namespaces' included), and "loopphase status" prints it as is.
        if value is not None and (not value.strip() or any(
                ch.isspace() or not ch.isprintable() for ch in value) or len(value) > 253):
            raise ValueError("must be a non-empty name of at most 253 printable "
                             "characters without spaces (e.g. team-max-1)")
        return value

    @field_validator("opencode_server")
    @classmethod
    def _server(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("http://", "https://")):
            raise ValueError("must be an http:// or https:// URL")
        return None if value is None else check_safe_token(value, "the URL")


class OrchestratorSpec(AgentSpec):
    """The optional supervising agent; woken every timing.orchestratorWake when idle."""

    wake_prompt: str = (
        "loopphase wake: scheduled supervision pass. Review both loops' progress, state files "
        "and recent commits, and nudge them if needed."
    )


class AgentsSpec(ApiModel):
    builder: AgentSpec = Field(default_factory=AgentSpec)
    adversary: AgentSpec | None = Field(
        None, description="defaults to the builder's settings; the model falls back to it too"
    )
    orchestrator: OrchestratorSpec | None = None


class TimingSpec(ApiModel):
    signal_interval: Duration = Field(
        1, ge=0.2, le=HOUR,
        description="the tick: observe, decide, act (the reference launcher used 30s); raise it "
        "for many loops on a hosted remote, since each tick does one cheap ls-remote per remote",
    )
    heavy_interval: Duration = Field(
        300, ge=1, le=DAY, description="period of the DONE check when doneOnPush is false"
    )
    done_on_push: bool = Field(
        True,
        description="check DONE the moment the pushed head moves (false: only every "
        "heavyInterval, like the reference launcher)",
    )
    stall_idle: Duration = Field(300, ge=1, le=DAY)
    opencode_idle: Duration = Field(900, ge=1, le=DAY)
    wait_grace: Duration = Field(180, ge=0, le=DAY)
    max_declared_wait: Duration = Field(6 * HOUR, gt=0, le=7 * DAY)
    limit_reset_slack: Duration = Field(45, ge=0, le=HOUR)
    probe_fallback: Duration = Field(300, ge=1, le=DAY)
    reset_horizon: Duration = Field(6 * HOUR, gt=0, le=DAY)
    spend_probe_interval: Duration = Field(
        HOUR, ge=1, le=7 * DAY,
        description="probe cadence of a limit with no reset to wait for (spend cap, credit balance)",
    )
    auto_resume_grace: Duration = Field(
        180, ge=0, le=HOUR,
        description="while the screen promises the CLI's own automatic resume, the limit probe "
        "waits this long past the reset (Claude Code resends 1-2 minutes after it); it is typed "
        "only if nothing resumed by then",
    )
    orchestrator_wake: Duration = Field(HOUR, gt=0, le=7 * DAY)
    start_grace: Duration = Field(
        60, ge=0, le=HOUR, description="a freshly started agent is not judged idle before this"
    )
    host_start_timeout: Duration = Field(
        600, ge=0, le=DAY,
        description="how long a host the platform is still preparing (a Pending pod: scheduling, "
                    "volume binding, image pull) may take before it is healed (recreated)",
    )


class HealSpec(ApiModel):
    tier_cooldown: Duration = Field(45, ge=0, le=DAY)
    post_heal_quiet: Duration = Field(60, ge=0, le=DAY)
    circuit_breaker: int = Field(3, ge=1, le=100)
    compact_on_context_full: bool = Field(
        True,
        description="a full context gets `/compact` typed once; false (or when that did not "
        "help): a cold restart. Never a warm one (it resumes the same full conversation)",
    )


class HandoffSpec(ApiModel):
    claim_pattern: str = "^claim"
    review_pattern: str = "^review"
    pass_pattern: str = r"\bPASS\b"
    adversary_inbox: str = "ADVERSARY-INBOX.md"
    builder_inbox: str = "BUILDER-INBOX.md"

    @field_validator("claim_pattern", "review_pattern", "pass_pattern")
    @classmethod
    def _regex(cls, value: str) -> str:
        if len(value) > PATTERN_MAX_CHARS:
            raise ValueError(
                f"pattern is {len(value)} characters; at most {PATTERN_MAX_CHARS} (a marker at "
                "the start of a commit subject needs a short pattern)"
            )
        compile_pattern(value)  # PatternError is a ValueError naming the RE2 rule
        return value

    @field_validator("adversary_inbox", "builder_inbox")
    @classmethod
    def _inbox(cls, value: str) -> str:
        return check_relative_path(value, "the inbox file")


class DoneSpec(ApiModel):
    marker: str = Field("## DONE", description="a line exactly equal to this marks DONE")
    require_review: bool = Field(
        False, description="also require a PASS review commit after the phase's last claim"
    )

    @field_validator("marker")
    @classmethod
    def _marker(cls, value: str) -> str:
        if not value.strip() or "\n" in value:
            raise ValueError("must be one non-empty line")
        return value.strip()


class TextsSpec(ApiModel):
    """What the supervisor types. Placeholders: {role} {phase} {inbox} {kickoff}."""

    claim_ping: str = (
        "loopphase ping: the Builder pushed a gate CLAIM (claim commit). "
        "Pull and verify the claimed gate now."
    )
    review_ping: str = (
        "loopphase ping: the Adversary pushed a verdict or finding (review commit). "
        "Pull REVIEW and act: proceed if it passes your gate, address it if it is a finding."
    )
    adversary_inbox_ping: str = (
        "loopphase ping: the Builder pushed {inbox}. Pull, read it, act, then delete the file "
        "(commit + push) to mark it consumed."
    )
    builder_inbox_ping: str = (
        "loopphase ping: the Adversary pushed {inbox}. Pull, read it, act, then delete the file "
        "(commit + push) to mark it consumed."
    )
    limit_probe: str = (
        "loopphase probe: if the quota window has reset, resume your loop now. Pull, re-read "
        "your phase state files and continue where you stopped."
    )
    stall_nudge: str = (
        "loopphase nudge: no progress seen for a while. Continue your loop now: pull, re-read "
        "your phase state files and carry on, or declare a deliberate wait with your wait marker."
    )
    continuation: str = (
        "Continue where you left off: pull, re-read phase {phase}'s plan and your state files, "
        "then resume your loop."
    )
    bootstrap: str = "Your full kickoff prompt is in {kickoff}. Read it now and follow it exactly."


SAMPLE_PLACEHOLDERS = {
    "role": "builder",
    "phase": "phase-1",
    "inbox": "machine-docs/ADVERSARY-INBOX.md",
    "kickoff": "/work/.loopphase/kickoff.txt",
}


class _Placeholders(string.Template):
    """``{name}`` placeholders and nothing else: no format specs, attributes or indexing.

    ``str.format`` would run ``{role:>200000000}`` (a 200 MB string) and ``{role.__class__}``
    from a spec; ``string.Template`` with a braces-only pattern substitutes plain names only.
    ``{{`` is a literal ``{``.
    """

    delimiter = "{"
    pattern = r"""\{(?:
        (?P<escaped>\{)
      | (?P<braced>[a-z]+)\}
      | (?P<named>(?!))
      | (?P<invalid>)
    )"""  # type: ignore[assignment]


def render_text(template: str, **values: str) -> str:
    """Fill ``{role}``-style placeholders from ``values``; whitespace runs become one space.

    Raises KeyError for a name not in ``values`` and ValueError for anything else in braces
    (format specs, attribute access): spec validation turns both into a field-named error.
    """
    return " ".join(_Placeholders(template).substitute(values).split())


def _check_injected(field: tuple[str, ...], template: str) -> None:
    """Raises FieldError at ``field`` (a wire path below the spec) when the text cannot be typed."""
    try:
        _check_text(template)
    except ValueError as err:
        raise FieldError((field, str(err))) from None


def _check_text(template: str) -> None:
    try:
        text = render_text(template, **SAMPLE_PLACEHOLDERS)
    except (KeyError, IndexError, ValueError) as err:
        raise ValueError(
            f"unknown or malformed placeholder ({err}); use only "
            "{role}, {phase}, {inbox}, {kickoff} (no format specs or attributes; '{{' is a "
            "literal brace)"
        ) from err
    if not text.strip():
        raise ValueError("must not be empty (an empty continuation aborts warm resume)")
    problem = untypeable_reason(text)
    if problem is not None:
        raise ValueError(f"{problem} (the shim types this text and would refuse it)")
    hits = injected_text_violations(text)
    if hits:
        found = "; ".join(f"{rule} detector matches {excerpt!r}" for rule, excerpt in hits)
        raise ValueError(
            f"would be mistaken for agent output once typed ({found}): reword it so it "
            "does not look like a limit banner, a fatal error, a spinner or a wait marker"
        )


def agent_path(spec: LoopPhaseSpec, role: Role) -> tuple[str, str]:
    """The wire path below ``spec`` that configures ``role``'s agent (the adversary may borrow
    the builder's)."""
    if role == "adversary" and spec.agents.adversary is None:
        return ("agents", "builder")
    return ("agents", role)


def agent_field(spec: LoopPhaseSpec, role: Role) -> str:
    """The full wire path of ``role``'s agent settings, e.g. ``spec.agents.builder``."""
    return "spec." + ".".join(agent_path(spec, role))


def _check_sim_scenarios(spec: LoopPhaseSpec) -> None:
    """A sim agent needs a scenario; an inline one must parse with known steps (names the field)."""
    from loopphase.sim.scenario import ScenarioError, scenario_source

    problems: list[tuple[tuple[str, ...], str]] = []
    for role in spec.roles():
        agent = spec.agent(role)
        where = (*agent_path(spec, role), "simScenario")
        if agent.backend != "sim" or any(path == where for path, _ in problems):
            continue
        if agent.sim_scenario is None:
            problems.append((where,
                "required for backend sim (the scenario the simulated agent plays): give "
                "inline scenario YAML (a mapping with 'phases') or a path to a scenario file"
            ))
            continue
        try:
            scenario_source(agent.sim_scenario)
        except ScenarioError as err:
            problems.append((where, str(err)))
    if problems:
        raise FieldError(*problems)


class LoopPhaseSpec(ApiModel):
    repo: RepoSpec
    phases: list[PhaseSpec] = Field(min_length=1, max_length=200)
    agents: AgentsSpec = Field(default_factory=AgentsSpec)
    timing: TimingSpec = Field(default_factory=TimingSpec)
    heal: HealSpec = Field(default_factory=HealSpec)
    handoff: HandoffSpec = Field(default_factory=HandoffSpec)
    done: DoneSpec = Field(default_factory=DoneSpec)
    texts: TextsSpec = Field(default_factory=TextsSpec)
    suspend: bool = False
    start_at: str | None = Field(None, description="phase id to start at (explicit jump)")
    time_zone: str | None = Field(
        None, description="IANA zone for banners that name none (default: the agent's, UTC)"
    )
    notify: NotifySpec | None = Field(None, description="webhooks announcing chosen events")

    @model_validator(mode="after")
    def _cross_checks(self) -> LoopPhaseSpec:
        ids = [phase.id for phase in self.phases]
        dupes = sorted({pid for pid in ids if ids.count(pid) > 1})
        if dupes:
            first = ids.index(dupes[0], ids.index(dupes[0]) + 1)
            raise FieldError((("phases", first, "id"),
                              f"duplicate phase id(s) {', '.join(dupes)}: ids must be unique"))
        if self.start_at is not None and self.start_at not in ids:
            raise FieldError((("startAt",),
                f"{shown(self.start_at)} is not a phase id; choose one of {', '.join(ids)}"))
        if self.time_zone is not None:
            from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

            try:
                ZoneInfo(self.time_zone)
            # OSError: a directory ("America") or a name too long for a file name.
            except (ZoneInfoNotFoundError, ValueError, OSError) as err:
                raise FieldError((("timeZone",),
                    f"{shown(self.time_zone)} is not an IANA zone (e.g. Europe/Berlin)")) from err
        for name in TextsSpec.model_fields:
            alias = TextsSpec.model_fields[name].alias or name
            _check_injected(("texts", alias), getattr(self.texts, name))
        if self.agents.orchestrator is not None:
            _check_injected(("agents", "orchestrator", "wakePrompt"), self.agents.orchestrator.wake_prompt)
        for role in ("builder", "adversary", "orchestrator"):
            agent = self.agent(role) if role != "orchestrator" else self.agents.orchestrator
            if agent is not None and agent.backend == "opencode" and not agent.opencode_server:
                where = agent_path(self, role) if role != "orchestrator" else ("agents", role)
                raise FieldError(((*where, "opencodeServer"),
                    "required for the opencode backend (the URL of the opencode server to attach to)"))
        _check_sim_scenarios(self)
        return self

    # -- derived views (one source of truth: the fields above) -------------------------------

    def roles(self) -> list[Role]:
        roles: list[Role] = ["builder", "adversary"]
        if self.agents.orchestrator is not None:
            roles.append("orchestrator")
        return roles

    def agent(self, role: Role) -> AgentSpec:
        if role == "builder":
            return self.agents.builder
        if role == "adversary":
            return self.agents.adversary or self.agents.builder
        if self.agents.orchestrator is None:
            raise KeyError("this LoopPhase has no orchestrator")
        return self.agents.orchestrator

    def model_for(self, role: Role, phase_index: int) -> str | None:
        """Phase override, else the role's model; the adversary falls back to the builder's."""
        overrides = self.phases[phase_index].models or {}
        if role in overrides:
            return overrides[role]
        if role == "adversary":
            own = self.agents.adversary.model if self.agents.adversary else None
            return own or overrides.get("builder") or self.agents.builder.model
        return self.agent(role).model

    def stall_idle_for(self, role: Role) -> float:
        backend = self.agent(role).backend
        return self.timing.opencode_idle if backend == "opencode" else self.timing.stall_idle

    def phase_index(self, phase_id: str) -> int | None:
        for index, phase in enumerate(self.phases):
            if phase.id == phase_id:
                return index
        return None
