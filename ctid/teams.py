"""The site's teams (`[[team]]` in the config): groups of agents under one supervisor.

A team is not a queue: its agents may serve several queues, and a queue may be served by
several teams. `Teams` is the one lookup everything uses: bus access control
(`supervisor:<team>` keys), the team a recording is filed under, and `ctid report --by team`.
`ctid.config` parses and checks the tables (an agent is in at most one team); this module
only holds them, so the plugins and the security layer need no config parsing to use them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Iterator, Mapping


@dataclass(frozen=True)
class TeamConfig:
    """A `[[team]]` table: its agents (ids) and the queues its supervisor oversees."""

    name: str
    agents: tuple[str, ...] = ()
    queues: tuple[str, ...] = ()


@dataclass(frozen=True)
class Teams:
    """The site's teams by name, and each agent's team. Empty when the site defines none."""

    by_name: Mapping[str, TeamConfig] = field(default_factory=dict)
    agent_team: Mapping[str, str] = field(default_factory=dict)  # agent id -> team name

    @classmethod
    def of(cls, teams: Iterable[TeamConfig]) -> Teams:
        """From validated tables (config.parse refuses an agent in two teams; here the last wins)."""
        teams = tuple(teams)
        return cls({t.name: t for t in teams}, {a: t.name for t in teams for a in t.agents})

    def team_of(self, agent: str | None) -> str | None:
        """The configured team of an agent, or None (no agent, or in no team)."""
        return self.agent_team.get(agent) if agent else None

    def get(self, name: str | None) -> TeamConfig | None:
        """The `[[team]]` of that name, or None when the site defines no such team."""
        return self.by_name.get(name) if name else None

    def __iter__(self) -> Iterator[TeamConfig]:
        return iter(self.by_name.values())

    def __len__(self) -> int:
        return len(self.by_name)


NO_TEAMS = Teams()
