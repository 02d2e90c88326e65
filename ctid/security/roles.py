"""Roles and what each may see and do on the bus.

A client key carries one role:

- `agent:<id>`: its own agent and call events and screen pops, control of its own calls
  and of its own agent state;
- `supervisor:<team>`: for a `[[team]]` of the config, its agents' events, the calls they are
  on and the events of the team's `queues`, monitor requests and forced states for its agents;
  for a name the config does not define, the queue of that name (as before `[[team]]` existed):
  that queue's calls and events and the agents logged on to it;
- `crm`: everything on the bus, call and agent control on behalf of any agent;
- `admin`: everything.

`Policy.may_subscribe` decides each XPUB subscription (a byte prefix) for the client that
sent it: a prefix is allowed only if every topic it can match is the role's to see, so
an agent cannot take the empty prefix or `screenpop.` and read another desk's pops.
`Policy.authorize` decides each request by op and by target.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import AbstractSet, Any

from ctid.bus import RequestError
from ctid.events import _segment
from ctid.state import State
from ctid.teams import NO_TEAMS, Teams

ROLE_KINDS = ("agent", "supervisor", "crm", "admin")
#: The topic segment (0-based) holding the agent id, per category whose topics name one.
AGENT_SEGMENT = {"agent": 2, "screenpop": 2, "call": 3, "recording": 3}
#: Categories whose topics name a queue at segment 2 (a supervisor sees its team's queues).
QUEUE_SEGMENT = {"call": 2, "recording": 2, "queue": 2, "route": 2}
OPEN_OPS = frozenset({"ping", "ops"})
SUPERVISOR_OPS = frozenset({"monitor.listen", "monitor.whisper", "monitor.barge", "monitor.force_release",
                            "agent.force_state"})
AGENT_OPS = frozenset({"call.make", "call.answer", "call.hold", "call.retrieve", "call.transfer", "call.consult",
                       "call.transfer_complete", "call.conference", "call.hangup", "call.send_dtmf", "call.set_data",
                       "agent.login", "agent.logout", "agent.ready", "agent.not_ready", "agent.acw"})
ADMIN_PREFIXES = ("keys.", "audit.")
#: Ops any role may send because they run as the sender's role (they read `current_client`
#: and narrow their answer to it): an agent's search returns only that agent's recordings.
SCOPED_OPS = frozenset({"recordings.search", "qa.sample", "qa.evaluate", "qa.evaluations", "qa.acknowledge",
                        "qa.dispute", "qa.report", "qa.calibration"})  # qa: plugins/qa/ops.py as_client


def parse_role(text: str) -> tuple[str, str | None]:
    """`agent:1001` -> ("agent", "1001"); `crm` -> ("crm", None). Raises ValueError."""
    kind, sep, arg = text.partition(":")
    if kind not in ROLE_KINDS:
        raise ValueError(f"role {text!r}: the kind must be one of {', '.join(ROLE_KINDS)}")
    if kind in ("agent", "supervisor"):
        if not arg or not all(c.isalnum() or c in "_-+@" for c in arg):
            raise ValueError(f"role {text!r}: {kind} roles are '{kind}:<id>' (letters, digits, _-+@)")
        return kind, arg
    if sep:
        raise ValueError(f"role {text!r}: {kind} takes no argument")
    return kind, None


@dataclass(frozen=True)
class Principal:
    """Who sent a message: its key (None with plain access) and role."""

    key: str | None
    kind: str
    arg: str | None = None

    @property
    def role(self) -> str:
        return f"{self.kind}:{self.arg}" if self.arg else self.kind

    @classmethod
    def of(cls, key: str | None, role: str) -> Principal:
        kind, arg = parse_role(role)
        return cls(key, kind, arg)


#: Plain access (loopback only, explicitly configured): every client is trusted as admin.
PLAIN = Principal(None, "admin")


@dataclass(frozen=True)
class TeamScope:
    """What a `supervisor:<team>` oversees: agent ids, queue names, and the agents whose calls
    it sees in any queue (a configured team's agents; none for a queue-named team, whose calls
    are those of its queue)."""

    agents: AbstractSet[str]
    queues: AbstractSet[str]
    call_agents: AbstractSet[str]

    def sees_call(self, queue: str | None, agent: str | None) -> bool:
        return queue in self.queues or agent in self.call_agents


class Policy:
    def __init__(self, site: str, state: State, teams: Teams = NO_TEAMS) -> None:
        self.site = _segment(site)
        self.state = state
        self.teams = teams  # the config's [[team]] tables

    # -- events ------------------------------------------------------------------------------

    def may_subscribe(self, who: Principal, prefix: str) -> bool:
        if who.kind in ("admin", "crm"):
            return True
        parts = prefix.split(".")
        if parts[0] == "system" and len(parts) > 1:
            return True  # driver health is no one's secret
        # Only complete segments count: `agent.hq.100` would also match agent 1001.
        complete = parts[:-1]
        if len(complete) < 2 or complete[1] != self.site:
            return False
        if who.kind == "agent":
            k = AGENT_SEGMENT.get(complete[0])
            return k is not None and len(complete) > k and complete[k] == _segment(who.arg)
        scope = self.team_scope(who)
        k = QUEUE_SEGMENT.get(complete[0])
        if k is not None and len(complete) > k and complete[k] in {_segment(q) for q in scope.queues}:
            return True  # a queue of the team: every call in it (an `-` queue segment matches no queue)
        k = AGENT_SEGMENT.get(complete[0])
        if k is None or len(complete) <= k or complete[0] == "screenpop":
            return False
        # agent.<site>.<agent> for its agents; call/recording.<site>.<queue>.<agent> for their calls
        agents = scope.agents if complete[0] == "agent" else scope.call_agents
        return complete[k] in {_segment(a) for a in agents}

    def team_scope(self, who: Principal) -> TeamScope:
        """The agents and queues a supervisor oversees: its `[[team]]`, else the queue of its name."""
        team = self.teams.get(who.arg)
        if team is not None:
            return TeamScope(frozenset(team.agents), frozenset(team.queues), frozenset(team.agents))
        serving = frozenset(a.agent for a in self.state.agents.values() if who.arg in a.queues)
        return TeamScope(serving, frozenset((who.arg,)), frozenset())

    # -- requests ----------------------------------------------------------------------------

    def authorize(self, who: Principal, op: str, request: dict[str, Any]) -> None:
        """Raise RequestError(forbidden) unless `who` may send this request."""
        if who.kind == "admin" or op in OPEN_OPS:
            return
        if op.startswith(ADMIN_PREFIXES):
            raise _forbidden(who, op)
        if who.kind == "crm":
            if op in SUPERVISOR_OPS:
                raise _forbidden(who, op)
            return
        if op == "snapshot" or op in SCOPED_OPS:
            return  # answered, but only with what the role may see (`filter_snapshot`, the op itself)
        if who.kind == "agent" and op in AGENT_OPS:
            if "agent" in request and request["agent"] != who.arg:
                raise _forbidden(who, op, f"agent {request['agent']!r} is not you")
            call_id = request.get("call_id")
            call = self.state.calls.get(call_id) if isinstance(call_id, str) else None
            # A ringing call is no one's in the state yet: answering it is allowed, and the driver
            # checks that it rings this agent's device (`invalid_state` otherwise).
            if call is not None and call.agent != who.arg and not (call.agent is None and op == "call.answer"):
                raise _forbidden(who, op, f"call {call_id!r} is not yours")
            return
        if who.kind == "supervisor" and op in SUPERVISOR_OPS:
            scope = self.team_scope(who)
            if op == "monitor.force_release":
                call_id = request.get("call_id")
                call = self.state.calls.get(call_id) if isinstance(call_id, str) else None
                if call is not None and not scope.sees_call(call.queue, call.agent):
                    raise _forbidden(who, op, f"call {call_id!r} is not in team {who.arg!r}")
            elif request.get("agent") not in scope.agents:
                raise _forbidden(who, op, f"agent {request.get('agent')!r} is not in team {who.arg!r}")
            return
        raise _forbidden(who, op)

    def filter_snapshot(self, who: Principal, snapshot: dict[str, Any]) -> dict[str, Any]:
        """The snapshot cut down to what the role may see."""
        if who.kind in ("admin", "crm"):
            return snapshot
        if who.kind == "agent":
            keep_call = lambda c: c.get("agent") == who.arg  # noqa: E731
            keep_agent = lambda a: a.get("agent") == who.arg  # noqa: E731
            keep_queue = lambda q: False  # noqa: E731
        else:
            scope = self.team_scope(who)
            keep_call = lambda c: scope.sees_call(c.get("queue"), c.get("agent"))  # noqa: E731
            keep_agent = lambda a: a.get("agent") in scope.agents  # noqa: E731
            keep_queue = lambda q: q.get("queue") in scope.queues  # noqa: E731
        return {**snapshot, "calls": [c for c in snapshot.get("calls", []) if keep_call(c)],
                "agents": [a for a in snapshot.get("agents", []) if keep_agent(a)],
                "queues": [q for q in snapshot.get("queues", []) if keep_queue(q)]}


def _forbidden(who: Principal, op: str, why: str = "") -> RequestError:
    return RequestError("forbidden", f"{op} is not allowed for {who.role}" + (f": {why}" if why else ""))
