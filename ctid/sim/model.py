"""The call center's configuration and live state, PBX-neutral.

Nothing here knows a wire protocol: a renderer (AMI today, CSTA later) turns the
`Happening`s of `ctid.sim.traffic.CallCenter` into its own frames and reads the
live objects below to answer status queries. All times are virtual seconds since
the simulation started.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

#: Queue strategies the model implements (Asterisk's names; `roundrobin` is an alias of `rrmemory`).
STRATEGIES = ("rrmemory", "roundrobin", "leastrecent", "fewestcalls", "random", "linear")

DEFAULT_AGENTS = (
    "Alice Adams", "Bob Brown", "Carol Chen", "Dave Diaz", "Eve Evans", "Frank Fox", "Gina Green",
    "Hugo Hill", "Ivy Ito", "Jack Jones", "Kara King", "Liam Lopez", "Mona Moore", "Nils Novak",
)
#: Skills of the first default agents (indexes into the queue list): the transcripts' site, plus Hugo.
DEFAULT_SKILLS = ((0, 2), (0,), (0, 1), (1,), (0, 1), (2, 1), (2,), (1, 0))
DEFAULT_QUEUES = (("sales", "rrmemory", 120.0, None, 5.0), ("support", "leastrecent", 90.0, 90.0, 10.0),
                  ("vip", "fewestcalls", 60.0, None, 5.0))


class SimError(Exception):
    """A control request the call center refuses; `code` says why (the wire picks its message)."""

    def __init__(self, code: str, detail: str = "") -> None:
        super().__init__(detail or code)
        self.code = code  # no_such_queue | no_such_member | already_member | not_dynamic | no_such_agent | bad_state


@dataclass
class QueueSpec:
    name: str
    strategy: str = "rrmemory"
    rate: float = 60.0  # Poisson arrivals, calls per hour
    timeout: float | None = None  # the queue's maximum wait; None waits forever
    wrapup: float = 5.0  # after-call work of a member after a call from this queue
    ring_timeout: float = 15.0  # how long one member rings before the next is tried
    retry: float = 2.0  # pause between two ring attempts
    service_level: int = 20


@dataclass
class AgentSpec:
    name: str
    extension: str
    queues: list[str]
    dynamic: bool = False  # logs itself in and out of its queues (QueueAdd/QueueRemove on the wire)
    no_answer: float = 0.04  # probability of letting a ring time out
    penalty: int = 0


@dataclass
class Behaviour:
    """The probabilities and durations (seconds) that make the traffic."""

    talk_mean: float = 40.0  # exponential, added to talk_min
    talk_min: float = 5.0
    ring_min: float = 1.0
    ring_max: float = 4.0
    patience_mean: float = 60.0  # caller patience in a queue: exponential, added to patience_min
    patience_min: float = 5.0
    hold: float = 0.12
    hold_min: float = 5.0
    hold_max: float = 25.0
    blind_transfer: float = 0.04
    attended_transfer: float = 0.03
    consult_target: str = "2001"  # the supervisor line an attended transfer goes to
    caller_hangup: float = 0.25  # the caller, not the agent, ends the talk
    record_stop: float = 0.03  # the recording is stopped explicitly during the talk
    late_complete: float = 0.05  # the PBX reports the completion after the caller's hangup
    pause_every: float = 900.0  # mean seconds between two pauses of one agent
    pause_min: float = 30.0
    pause_max: float = 240.0
    pause_reasons: tuple[str, ...] = ("Lunch", "Training", "Coaching", "Meeting", "Break")
    pause_all: float = 0.7  # a pause covers every queue (else one queue)
    login_min: float = 300.0  # a dynamic agent stays logged in this long at least...
    login_max: float = 900.0
    logout_min: float = 120.0  # ...and away this long
    logout_max: float = 600.0
    withheld: float = 0.08
    outbound_answer: float = 0.85


@dataclass
class SimConfig:
    queues: list[QueueSpec]
    agents: list[AgentSpec]
    behaviour: Behaviour = field(default_factory=Behaviour)
    traffic_until: float | None = None  # no spontaneous activity after this virtual time

    def __post_init__(self) -> None:
        names = [q.name for q in self.queues]
        if not names or len(set(names)) != len(names):
            raise ValueError("queues: names must be unique and there must be at least one")
        exts = [a.extension for a in self.agents]
        if len(set(exts)) != len(exts):
            raise ValueError("agents: extensions must be unique")
        for q in self.queues:
            if q.strategy not in STRATEGIES:
                raise ValueError(f"queue {q.name}: unknown strategy {q.strategy!r} (one of {', '.join(STRATEGIES)})")
            if q.rate < 0:
                raise ValueError(f"queue {q.name}: rate must be >= 0")
        for a in self.agents:
            unknown = set(a.queues) - set(names)
            if unknown:
                raise ValueError(f"agent {a.extension}: unknown queue(s) {', '.join(sorted(unknown))}")

    @classmethod
    def default(cls, agents: int = 8, queues: list[QueueSpec] | None = None) -> SimConfig:
        """Three queues (sales, support, vip) and `agents` agents with one or two skills each."""
        qs = queues or [QueueSpec(n, s, r, t, w) for n, s, r, t, w in DEFAULT_QUEUES]
        names = [q.name for q in qs]
        specs = []
        for i in range(agents):
            name = DEFAULT_AGENTS[i] if i < len(DEFAULT_AGENTS) else f"Agent {1001 + i}"
            if i < len(DEFAULT_SKILLS) and len(names) == len(DEFAULT_QUEUES):
                skills = [names[k] for k in DEFAULT_SKILLS[i]]
            else:
                skills = [names[i % len(names)]]
                if i % 2 == 0 and len(names) > 1:
                    skills.append(names[(i + 1) % len(names)])
            # the fifth agent floats: logs in and out by itself, as Eve does in the transcripts
            specs.append(AgentSpec(name, str(1001 + i), skills, dynamic=(i == 4 and agents > 5)))
        return cls(qs, specs)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> SimConfig:
        """`{"queues": [{"name", "strategy", "rate", "timeout", "wrapup", ...}], "agents": [{"name",
        "extension", "queues", "dynamic", "no_answer"}], "rates": {queue: calls_per_hour},
        "behaviour": {...}, "traffic_until": s}`; missing parts come from the defaults."""
        unknown = set(raw) - {"queues", "agents", "rates", "behaviour", "traffic_until"}
        if unknown:
            raise ValueError(f"unknown key(s) {', '.join(sorted(unknown))}")
        queues = [_build(QueueSpec, q) for q in raw["queues"]] if "queues" in raw else None
        base = cls.default(queues=queues)
        for name, rate in dict(raw.get("rates", {})).items():
            spec = next((q for q in base.queues if q.name == name), None)
            if spec is None:
                raise ValueError(f"rates: unknown queue {name!r}")
            spec.rate = float(rate)
        agents = [_build(AgentSpec, a) for a in raw["agents"]] if "agents" in raw else base.agents
        behaviour = _build(Behaviour, raw.get("behaviour", {}))
        return cls(base.queues, agents, behaviour, raw.get("traffic_until"))


def _build(kind: type, raw: Mapping[str, Any]) -> Any:
    known = {f.name for f in fields(kind)}
    unknown = set(raw) - known
    if unknown:
        raise ValueError(f"{kind.__name__}: unknown key(s) {', '.join(sorted(unknown))}")
    values = dict(raw)
    if "extension" in values:
        values["extension"] = str(values["extension"])
    if "pause_reasons" in values:
        values["pause_reasons"] = tuple(values["pause_reasons"])
    return kind(**values)


# -- live state ------------------------------------------------------------------------------


@dataclass(eq=False)
class Membership:
    queue: str
    dynamic: bool
    penalty: int = 0
    paused: bool = False
    reason: str = ""
    login_time: float = 0.0
    last_pause: float | None = None


@dataclass(eq=False)
class Agent:
    name: str
    ext: str
    no_answer: float = 0.04
    interface: str | None = None  # a wire may keep the interface it was added with
    state: str = "idle"  # idle | ringing | talking | wrapup | outbound
    call: Call | None = None
    calls_taken: int = 0  # shared by all the agent's queues
    last_call: float | None = None
    members: dict[str, Membership] = field(default_factory=dict)
    spec: AgentSpec | None = None

    def available(self, queue: str) -> bool:
        m = self.members.get(queue)
        return m is not None and not m.paused and self.state == "idle"


@dataclass(eq=False)
class Queue:
    spec: QueueSpec
    members: list[str] = field(default_factory=list)  # agent extensions, in order
    waiting: list[Call] = field(default_factory=list)
    rr_next: int = 0
    completed: int = 0
    abandoned: int = 0
    completed_in_sl: int = 0
    abandoned_in_sl: int = 0
    holdtime: float = 0.0  # Asterisk's running averages: (old * 3 + new) / 4
    talktime: float = 0.0

    @property
    def name(self) -> str:
        return self.spec.name

    def position(self, call: Call) -> int:
        return self.waiting.index(call) + 1


@dataclass(eq=False)
class Call:
    id: int
    ref: str
    number: str  # "anonymous" when withheld
    name: str  # "" when the network gave none
    did: str  # the number dialled (a queue's DID) or, outbound, the number the agent called
    direction: str  # inbound | outbound
    t_start: float
    patience: float = float("inf")
    talk: float = 30.0
    state: str = "new"  # queued | ringing | talking | consult | transferred | dialing | outbound | ended
    queue: str | None = None
    agent: Agent | None = None  # the connected agent (or, outbound, the calling agent)
    ringing: Agent | None = None
    t_join: float = 0.0
    t_connect: float = 0.0
    wait: float = 0.0  # time in queue until the answer
    original_position: int = 0
    tried: set[str] = field(default_factory=set)
    retry_at: float = 0.0
    ring_id: int = 0
    ring_t0: float = 0.0
    phase: int = 0  # bumped at every change of phase: timers of an older phase are stale
    held: bool = False
    recording: bool = False
    target: str | None = None  # attended transfer target
    tag: str | None = None  # who asked for the call (a wire's originate request)
    joins: int = 0


#: The kinds of happening, in the order they can occur in a call's life.
KINDS = (
    "arrive", "record_start", "join", "ring", "ring_noanswer", "ring_cancel", "connect", "hold", "unhold",
    "record_stop", "blind_transfer", "consult", "consult_answer", "consult_fail", "attended_transfer",
    "redirect", "abandon", "timeout", "end", "dial_agent", "outbound_dial", "outbound_answer",
    "wrapup_start", "wrapup_end", "pause", "unpause", "member_add", "member_remove",
)
#: A call's last happening is one of these.
TERMINAL = frozenset({"abandon", "timeout", "end"})


@dataclass(frozen=True, eq=False)
class Happening:
    """One thing that happened at virtual time `t`. `info` holds kind-specific figures
    (position, wait, ring, talk, by, target, reason, queues...)."""

    kind: str
    t: float
    call: Call | None = None
    agent: Agent | None = None
    queue: str | None = None
    info: Mapping[str, Any] = field(default_factory=dict)
