"""TOML -> typed config. Every error names its key path; all errors are reported at once.

A bad config never half-starts the daemon: `load()` either returns a complete
`Config` or raises `ConfigError` listing every problem found.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from ctid.acd.rules import RoutingRules, parse_routing
from ctid.teams import TeamConfig, Teams

_LOOPBACK = re.compile(r"^(tcp://(127\.0\.0\.1|localhost|\[::1\]):\d{1,5}|ipc://\S+|inproc://\S+)$")
_ENDPOINT = re.compile(r"^(tcp://[^:/\s]+:\d{1,5}|ipc://\S+|inproc://\S+)$")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


class ConfigError(Exception):
    """The config is invalid; `errors` holds one 'key.path: problem' line per error."""

    def __init__(self, source: str, errors: list[str]) -> None:
        self.source = source
        self.errors = errors
        super().__init__(f"{source}: {len(errors)} error(s)\n" + "\n".join(f"  {e}" for e in errors))


@dataclass(frozen=True)
class BusConfig:
    pub: str = "tcp://127.0.0.1:5560"
    req: str = "tcp://127.0.0.1:5561"
    hwm: int = 100_000  # per-subscriber queue before ZeroMQ drops (counted as `dropped`)
    security: str = "curve"  # curve | plain (no keys at all: loopback endpoints only, and said explicitly)
    server_key: str = "var/ctid-server.key_secret"  # the daemon's CURVE certificate, made on first start


@dataclass(frozen=True)
class DatabaseConfig:
    url: str = "sqlite:///var/ctid.db"
    batch_size: int = 500
    flush_interval: float = 0.5


@dataclass(frozen=True)
class LogConfig:
    level: str = "INFO"
    format: str = "kv"  # kv | json
    stats_interval: float = 60.0  # seconds between counter log lines; 0 = never


@dataclass(frozen=True)
class QueueConfig:
    """A `[[queue]]` table, as `ctid import asterisk-queues` writes it."""

    name: str
    strategy: str = "ringall"
    timeout: int = 15
    wrapuptime: int = 0  # seconds of after-call work
    maxlen: int = 0
    servicelevel: int = 20  # seconds: "answered within" for this queue's service level (0 = 20)
    weight: int = 0
    members: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class DriverConfig:
    kind: str
    name: str
    host: str = "127.0.0.1"
    port: int = 5038
    username: str = ""
    secret: str = field(default="", repr=False)  # never printed or logged
    options: dict[str, Any] = field(default_factory=dict)  # driver-specific keys
    queues: tuple[QueueConfig, ...] = ()  # the site's [[queue]] tables, for the defaults they give

    def wrapup(self) -> dict[str, float]:
        """After-call work seconds per queue: the `[[queue]] wrapuptime`s, overridden by the
        driver's own `wrapup` option (the PBX announces no ACW length, so this is where it comes from)."""
        seconds = {q.name: float(q.wrapuptime) for q in self.queues if q.wrapuptime > 0}
        seconds.update({str(k): float(v) for k, v in dict(self.options.get("wrapup", {})).items()})
        return seconds

    def agent_names(self) -> dict[str, str]:
        """Agent names by agent id: the `[[queue]]` members' `name`s, overridden by the driver's
        own `agent_names` option (for a PBX whose agent events carry no name, as CSTA's)."""
        names = {agent_id_of(m["interface"]): str(m["name"]) for q in self.queues for m in q.members
                 if m.get("name") and m["name"] != m["interface"]}
        names.update({str(k): str(v) for k, v in dict(self.options.get("agent_names", {})).items()})
        return names


def agent_id_of(interface: str) -> str:
    """The PBX-neutral agent id of a queue member interface: its extension
    (`Local/1001@agents/n` -> `1001`, `PJSIP/1001` -> `1001`, `1001` -> `1001`)."""
    _, _, rest = interface.partition("/")
    rest = rest or interface
    return rest.split("@", 1)[0].split("/", 1)[0]


_QUEUE_INTS = ("timeout", "wrapuptime", "maxlen", "servicelevel", "weight")
_MEMBER_KEYS = {"interface": str, "name": str, "penalty": int, "state_interface": str, "ringinuse": bool,
                "wrapuptime": int, "paused": bool}


@dataclass(frozen=True)
class PluginsConfig:
    enabled: tuple[str, ...] = ()
    timeout: float = 2.0  # seconds a plugin call may take before it counts as a failure
    max_failures: int = 5  # failures in a row before the plugin is disabled
    options: dict[str, dict[str, Any]] = field(default_factory=dict)  # [plugins.NAME] tables


@dataclass(frozen=True)
class Config:
    site: str
    bus: BusConfig
    database: DatabaseConfig
    log: LogConfig
    drivers: tuple[DriverConfig, ...]
    plugins: PluginsConfig = PluginsConfig()
    source: str = "<defaults>"
    queues: tuple[QueueConfig, ...] = ()
    routing: RoutingRules = RoutingRules()  # [routing]: ctid's own ACD (docs/routing.md)
    teams: tuple[TeamConfig, ...] = ()  # [[team]]: agents under one supervisor (ctid.teams)

    @cached_property
    def site_teams(self) -> Teams:
        """The `[[team]]` tables as the one lookup access control, recordings and reports use."""
        return Teams.of(self.teams)

    def team_of(self, agent: str | None) -> str | None:
        """The configured team of an agent, or None."""
        return self.site_teams.team_of(agent)


class _Checker:
    """Collects errors while reading a table, so every problem is reported in one go."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def get(self, table: dict, path: str, key: str, kind: type | tuple, default: Any, required: bool = False) -> Any:
        where = f"{path}.{key}" if path else key
        if key not in table:
            if required:
                self.errors.append(f"{where}: required key is missing")
            return default
        value = table[key]
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if isinstance(value, bool) and kind is not bool or not isinstance(value, kind):
            names = kind.__name__ if isinstance(kind, type) else "/".join(k.__name__ for k in kind)
            self.errors.append(f"{where}: expected {names}, got {type(value).__name__} {value!r}")
            return default
        return value

    def unknown(self, table: dict, path: str, known: set[str]) -> None:
        for key in sorted(set(table) - known):
            self.errors.append(f"{path + '.' if path else ''}{key}: unknown key")


def _table(c: _Checker, raw: dict, key: str) -> dict:
    value = raw.get(key, {})
    if not isinstance(value, dict):
        c.errors.append(f"{key}: expected a table, got {type(value).__name__}")
        return {}
    return value


def _secret(c: _Checker, d: dict, path: str) -> str:
    """The PBX secret from `secret`, `secret_env` (an environment variable) or `secret_file`."""
    secret = c.get(d, path, "secret", str, "")
    env = c.get(d, path, "secret_env", str, "")
    file = c.get(d, path, "secret_file", str, "")
    if sum(map(bool, (secret, env, file))) > 1:
        c.errors.append(f"{path}: give only one of secret, secret_env, secret_file")
    if env:
        if env not in os.environ:
            c.errors.append(f"{path}.secret_env: environment variable {env} is not set")
        return os.environ.get(env, "")
    if file:
        try:
            mode = Path(file).stat().st_mode
            if mode & 0o077:  # a password others can read is not a secret: refuse to start with it
                c.errors.append(f"{path}.secret_file: {file} is readable by other users (mode {mode & 0o777:o}); "
                                "make it readable by the daemon's user only (chmod 600)")
                return ""
            return Path(file).read_text().strip()
        except OSError as exc:
            c.errors.append(f"{path}.secret_file: cannot read {file}: {exc.strerror}")
    return secret


def _driver(c: _Checker, d: Any, i: int, names: set[str]) -> DriverConfig | None:
    path = f"driver[{i}]"
    if not isinstance(d, dict):
        c.errors.append(f"{path}: expected a table")
        return None
    kind = c.get(d, path, "kind", str, "", required=True)
    name = c.get(d, path, "name", str, kind)
    if name in names:
        c.errors.append(f"{path}.name: duplicate driver name {name!r} (set `name` to tell them apart)")
    names.add(name)
    host = c.get(d, path, "host", str, "127.0.0.1")
    port = c.get(d, path, "port", int, 5038)
    if not 0 < port < 65536:
        c.errors.append(f"{path}.port: {port} is not a TCP port (1-65535)")
    username = c.get(d, path, "username", str, "")
    secret = _secret(c, d, path)
    core = {"kind", "name", "host", "port", "username", "secret", "secret_env", "secret_file"}
    options = {k: v for k, v in d.items() if k not in core}
    return DriverConfig(kind, name, host, port, username, secret, options)


def parse(raw: dict, source: str = "<string>") -> Config:
    """Validate a decoded TOML document; raise ConfigError with every problem found."""
    c = _Checker()
    c.unknown(raw, "", {"site", "bus", "database", "log", "driver", "plugins", "queue", "routing", "team"})
    site = c.get(raw, "", "site", str, "", required=True)
    if site and not _NAME.match(site):
        c.errors.append(f"site: {site!r} may only hold letters, digits, '_' and '-' (it is a topic segment)")

    b = _table(c, raw, "bus")
    c.unknown(b, "bus", {"pub", "req", "hwm", "security", "server_key"})
    bus = BusConfig(
        pub=c.get(b, "bus", "pub", str, BusConfig.pub),
        req=c.get(b, "bus", "req", str, BusConfig.req),
        hwm=c.get(b, "bus", "hwm", int, BusConfig.hwm),
        security=c.get(b, "bus", "security", str, BusConfig.security),
        server_key=c.get(b, "bus", "server_key", str, BusConfig.server_key),
    )
    if bus.security not in ("curve", "plain"):
        c.errors.append(f"bus.security: {bus.security!r} must be 'curve' or 'plain'")
    elif bus.security == "plain":
        for key in ("pub", "req"):  # unauthenticated access must never leave the host
            if not _LOOPBACK.match(getattr(bus, key)):
                c.errors.append(f"bus.{key}: {getattr(bus, key)!r} is not a loopback endpoint, and bus.security "
                                "is 'plain': plain access is allowed on 127.0.0.1, [::1], localhost and ipc:// only")
    for key in ("pub", "req"):
        if not _ENDPOINT.match(getattr(bus, key)):
            c.errors.append(f"bus.{key}: {getattr(bus, key)!r} is not a ZeroMQ endpoint (tcp://host:port or ipc://path)")
    if bus.pub == bus.req:
        c.errors.append("bus.req: must differ from bus.pub")

    db = _table(c, raw, "database")
    c.unknown(db, "database", {"url", "batch_size", "flush_interval"})
    database = DatabaseConfig(
        url=c.get(db, "database", "url", str, DatabaseConfig.url),
        batch_size=c.get(db, "database", "batch_size", int, DatabaseConfig.batch_size),
        flush_interval=c.get(db, "database", "flush_interval", float, DatabaseConfig.flush_interval),
    )
    if "://" not in database.url:
        c.errors.append(f"database.url: {database.url!r} is not an SQLAlchemy URL (e.g. sqlite:///var/ctid.db)")

    lg = _table(c, raw, "log")
    c.unknown(lg, "log", {"level", "format", "stats_interval"})
    log = LogConfig(
        level=c.get(lg, "log", "level", str, LogConfig.level).upper(),
        format=c.get(lg, "log", "format", str, LogConfig.format),
        stats_interval=c.get(lg, "log", "stats_interval", float, LogConfig.stats_interval),
    )
    if log.level not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
        c.errors.append(f"log.level: {log.level!r} is not one of DEBUG, INFO, WARNING, ERROR")
    if log.format not in {"kv", "json"}:
        c.errors.append(f"log.format: {log.format!r} is not 'kv' or 'json'")

    raw_drivers = raw.get("driver", [])
    if not isinstance(raw_drivers, list):
        c.errors.append("driver: expected an array of tables ([[driver]])")
        raw_drivers = []
    names: set[str] = set()
    parsed = [_driver(c, d, i, names) for i, d in enumerate(raw_drivers)]
    drivers = tuple(d for d in parsed if d is not None)
    if not drivers:
        c.errors.append("driver: at least one [[driver]] is required")

    plugins = _plugins(c, _table(c, raw, "plugins"))
    queues = _queues(c, raw.get("queue", []))
    routing = parse_routing(raw.get("routing"), c.errors)
    teams = _teams(c, raw.get("team", []))
    if c.errors:
        raise ConfigError(source, c.errors)
    drivers = tuple(replace(d, queues=queues) for d in drivers)
    return Config(site, bus, database, log, drivers, plugins, source, queues, routing, teams)


def _queues(c: _Checker, raw: Any) -> tuple[QueueConfig, ...]:
    if not isinstance(raw, list):
        c.errors.append("queue: expected an array of tables ([[queue]])")
        return ()
    queues, names = [], set()
    for i, q in enumerate(raw):
        path = f"queue[{i}]"
        if not isinstance(q, dict):
            c.errors.append(f"{path}: expected a table")
            continue
        c.unknown(q, path, {"name", "strategy", "members", *_QUEUE_INTS})
        name = c.get(q, path, "name", str, "", required=True)
        if name in names:
            c.errors.append(f"{path}.name: duplicate queue {name!r}")
        names.add(name)
        ints = {k: c.get(q, path, k, int, getattr(QueueConfig, k)) for k in _QUEUE_INTS}
        members = []
        for j, m in enumerate(c.get(q, path, "members", list, [])):
            mpath = f"{path}.members[{j}]"
            if not isinstance(m, dict):
                c.errors.append(f"{mpath}: expected a table")
                continue
            c.unknown(m, mpath, set(_MEMBER_KEYS))
            c.get(m, mpath, "interface", str, "", required=True)
            for key, kind in _MEMBER_KEYS.items():
                c.get(m, mpath, key, kind, None)
            members.append(dict(m))
        queues.append(QueueConfig(name, c.get(q, path, "strategy", str, "ringall"), members=tuple(members), **ints))
    return tuple(queues)


def _teams(c: _Checker, raw: Any) -> tuple[TeamConfig, ...]:
    """`[[team]]` tables: a unique `name`, its `agents` (each in one team at most), its `queues`."""
    if not isinstance(raw, list):
        c.errors.append("team: expected an array of tables ([[team]])")
        return ()
    teams: list[TeamConfig] = []
    member_of: dict[str, str] = {}  # agent -> the team that named it first
    for i, t in enumerate(raw):
        path = f"team[{i}]"
        if not isinstance(t, dict):
            c.errors.append(f"{path}: expected a table")
            continue
        c.unknown(t, path, {"name", "agents", "queues"})
        name = c.get(t, path, "name", str, "", required=True)
        if name and not _NAME.match(name):  # it is the argument of a `supervisor:<team>` role
            c.errors.append(f"{path}.name: {name!r} may only hold letters, digits, '_' and '-'")
        if name and any(name == other.name for other in teams):
            c.errors.append(f"{path}.name: duplicate team {name!r}")
        lists = {key: _names(c, t, path, key) for key in ("agents", "queues")}
        for agent in lists["agents"]:
            if agent in member_of:
                c.errors.append(f"{path}.agents: agent {agent!r} is already in team {member_of[agent]!r}")
            else:
                member_of[agent] = name
        teams.append(TeamConfig(name, lists["agents"], lists["queues"]))
    return tuple(teams)


def _names(c: _Checker, table: dict, path: str, key: str) -> tuple[str, ...]:
    """A list of non-empty strings (agent ids, queue names); ints are taken as ids too."""
    values = c.get(table, path, key, list, [])
    good = []
    for j, v in enumerate(values):
        if isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        if not isinstance(v, str) or not v:
            c.errors.append(f"{path}.{key}[{j}]: expected a non-empty string, got {type(v).__name__} {v!r}")
        elif v in good:
            c.errors.append(f"{path}.{key}[{j}]: {v!r} is listed twice")
        else:
            good.append(v)
    return tuple(good)


def _plugins(c: _Checker, p: dict) -> PluginsConfig:
    """`[plugins] enabled = [...]` plus one `[plugins.NAME]` table per plugin's own settings."""
    enabled = c.get(p, "plugins", "enabled", list, [])
    if not all(isinstance(name, str) and _NAME.match(name) for name in enabled):
        c.errors.append(f"plugins.enabled: expected a list of plugin names, got {enabled!r}")
        enabled = []
    options = {k: v for k, v in p.items() if isinstance(v, dict)}
    for key in sorted(set(p) - set(options) - {"enabled", "timeout", "max_failures"}):
        c.errors.append(f"plugins.{key}: unknown key (a plugin's settings go in a [plugins.{key}] table)")
    for name in sorted(set(options) - set(enabled)):
        c.errors.append(f"plugins.{name}: settings for a plugin that is not in plugins.enabled")
    return PluginsConfig(
        enabled=tuple(enabled),
        timeout=c.get(p, "plugins", "timeout", float, PluginsConfig.timeout),
        max_failures=c.get(p, "plugins", "max_failures", int, PluginsConfig.max_failures),
        options=options,
    )


def load(path: str | os.PathLike) -> Config:
    """Read and validate a TOML file. Relative sqlite paths are taken from the working directory."""
    p = Path(path)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(str(p), [f"cannot read: {exc.strerror}"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), [f"not valid TOML: {exc}"]) from None
    return parse(raw, str(p))
