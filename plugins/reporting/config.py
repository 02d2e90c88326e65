"""The `[plugins.reporting]` table: options with their defaults, and the check that reports
every problem with its key path (`ctid_config_check`).

```toml
[plugins.reporting]
timezone = "Europe/London"       # days, weeks (Monday first) and months are local to this zone
short_abandon = 5                # abandons with a wait under this many seconds are "short"; 0 = none
service_level = 20               # "answered within" seconds where a queue sets none ([[queue]] servicelevel)
service_levels = { vip = 15 }    # per-queue override of the above
fcr_window = 86400               # a repeat call from the same number within this many seconds = not resolved
teams = { north = ["1001", "1002"] }   # deprecated: overrides the site's [[team]] tables for --by team
stats_interval = 5               # seconds between queue.stats events; 0 = none
wallboard = "127.0.0.1:8085"     # where the wallboard page is served; "" = not served
rollup_settle = 3600             # seconds a written CDR may still change (after-call work): rolled again meanwhile
```

`--by team` groups agents by the site's `[[team]]` tables (`ctid.teams`). The plugin's own
`teams` option is deprecated: when given it still replaces them for the reports (and is
checked as before), with the warning `TEAMS_DEPRECATED`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ctid.teams import NO_TEAMS, Teams

TEAMS_DEPRECATED = ("plugins.reporting.teams is deprecated: define the teams once for the site as [[team]] tables "
                    "(name, agents, queues); until it is removed it replaces them for the reports")


@dataclass(frozen=True)
class Options:
    """The plugin's settings, defaults as documented in README.md and docs/kpis.md."""

    timezone: str = "UTC"
    short_abandon: float = 5.0
    service_level: float = 20.0
    service_levels: dict[str, float] = field(default_factory=dict)
    fcr_window: float = 86400.0
    teams: Mapping[str, str] = field(default_factory=dict)  # agent -> team
    stats_interval: float = 5.0
    wallboard: str = ""
    rollup_settle: float = 3600.0

    @classmethod
    def parse(cls, options: Mapping[str, Any], queue_levels: Mapping[str, float] | None = None,
              site_teams: Teams = NO_TEAMS) -> Options:
        """Options from a table that `check()` passed; `queue_levels` are the `[[queue]]` servicelevels,
        `site_teams` the `[[team]]` tables (replaced by the deprecated `teams` option when given)."""
        levels = {q: float(s) for q, s in (queue_levels or {}).items() if s}
        levels.update({q: float(s) for q, s in (options.get("service_levels") or {}).items()})
        teams: Mapping[str, str] = site_teams.agent_team
        if "teams" in options:
            teams = {str(agent): team for team, agents in options["teams"].items() for agent in agents}
        return cls(
            timezone=str(options.get("timezone", cls.timezone)),
            short_abandon=float(options.get("short_abandon", cls.short_abandon)),
            service_level=float(options.get("service_level", cls.service_level)),
            service_levels=levels,
            fcr_window=float(options.get("fcr_window", cls.fcr_window)),
            teams=teams,
            stats_interval=float(options.get("stats_interval", cls.stats_interval)),
            wallboard=str(options.get("wallboard", cls.wallboard)),
            rollup_settle=float(options.get("rollup_settle", cls.rollup_settle)),
        )

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def threshold(self, queue: str | None) -> float:
        """The service level's "answered within" seconds of a queue."""
        return self.service_levels.get(queue or "", self.service_level)


def _seconds(value: Any, low: float, high: float) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and low <= value <= high


def check(options: Mapping[str, Any]) -> list[str]:
    """Every problem of the table as `key.path: problem` (relative to `plugins.reporting`)."""
    errors: list[str] = []
    tz = options.get("timezone", "UTC")
    try:
        ZoneInfo(tz) if isinstance(tz, str) else None
        if not isinstance(tz, str):
            errors.append(f"timezone: expected an IANA zone name such as 'Europe/Paris', got {tz!r}")
    except (ZoneInfoNotFoundError, ValueError):
        errors.append(f"timezone: unknown time zone {tz!r}")
    for key, low, high in (("short_abandon", 0, 600), ("service_level", 1, 3600), ("fcr_window", 0, 90 * 86400),
                           ("stats_interval", 0, 3600), ("rollup_settle", 0, 7 * 86400)):
        if key in options and not _seconds(options[key], low, high):
            errors.append(f"{key}: expected seconds from {low} to {high}, got {options[key]!r}")
    levels = options.get("service_levels", {})
    if not isinstance(levels, Mapping):
        errors.append(f"service_levels: expected a table of queue = seconds, got {levels!r}")
    else:
        errors += [f"service_levels.{q}: expected seconds from 1 to 3600, got {s!r}"
                   for q, s in levels.items() if not _seconds(s, 1, 3600)]
    teams = options.get("teams", {})
    if not isinstance(teams, Mapping):
        errors.append(f"teams: expected a table of team = [agents], got {teams!r}")
    else:
        seen: dict[str, str] = {}
        for team, agents in teams.items():
            if not isinstance(agents, list) or not all(isinstance(a, (str, int)) for a in agents):
                errors.append(f"teams.{team}: expected a list of agent ids, got {agents!r}")
                continue
            for agent in map(str, agents):
                if agent in seen:
                    errors.append(f"teams.{team}: agent {agent!r} is already in team {seen[agent]!r}")
                seen[agent] = team
    board = options.get("wallboard", "")
    if not isinstance(board, str) or (board and not _host_port(board)):
        errors.append(f"wallboard: expected 'host:port' (or '' for none), got {board!r}")
    if board and options.get("stats_interval", Options.stats_interval) == 0:
        errors.append("wallboard: needs stats_interval > 0 (the board shows the queue.stats events)")
    known = {"timezone", "short_abandon", "service_level", "service_levels", "fcr_window", "teams",
             "stats_interval", "wallboard", "rollup_settle"}
    errors += [f"{key}: unknown key" for key in options if key not in known]
    return errors


def _host_port(value: str) -> bool:
    host, _, port = value.rpartition(":")
    return bool(host) and port.isdigit() and 0 <= int(port) < 65536


def split_host_port(value: str) -> tuple[str, int]:
    """('127.0.0.1', 8085) from '127.0.0.1:8085' (a value `check()` passed)."""
    host, _, port = value.rpartition(":")
    return host, int(port)
