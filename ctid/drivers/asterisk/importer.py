"""Import an Asterisk site's queues: `ctid import asterisk-queues queues.conf [--json]`.

`queues.conf` is read with pyst2's `asterisk.config` (see `confparse`), then
resolved as Asterisk does: `[general]` and `(!)` templates are not queues, a queue
inherits its templates' settings and members first, `(+)` appends to a section,
a later setting overrides an earlier one, and a member listed again replaces the
first (same interface). Unset fields get Asterisk's defaults. Bad lines are
skipped and each becomes a `QueueImportError` with `file:line`; the rest imports.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterable

from ctid.drivers.asterisk.confparse import AsteriskConf, parse_bool, split_args, unescape

STRATEGIES = frozenset(
    {"ringall", "leastrecent", "fewestcalls", "random", "rrmemory", "rrordered", "linear", "wrandom"}
)
_INT_FIELDS = ("timeout", "wrapuptime", "maxlen", "servicelevel", "weight")


@dataclass(frozen=True)
class Member:
    """A static member: `member => interface,penalty,name,state_interface,ringinuse,wrapuptime,paused`."""

    interface: str
    name: str
    penalty: int = 0
    state_interface: str = ""
    ringinuse: bool | None = None  # None: the queue's setting
    wrapuptime: int | None = None  # None: the queue's setting
    paused: bool | None = None


@dataclass
class Queue:
    """One queue, with Asterisk's defaults for what the file does not set."""

    name: str
    strategy: str = "ringall"
    timeout: int = 15
    wrapuptime: int = 0
    maxlen: int = 0
    servicelevel: int = 0
    weight: int = 0
    members: list[Member] = field(default_factory=list)
    #: Every other setting, as written (musicclass, retry, ringinuse, joinempty ...).
    options: dict[str, str] = field(default_factory=dict)


class QueueImportError(Exception):
    """A file that cannot be read, or a line that cannot be imported (`path:line: message`).

    When raised after a whole file was read, `queues` holds what did import and
    `errors` every bad line.
    """

    def __init__(
        self,
        path: str | Path,
        message: str,
        line: int | None = None,
        *,
        queues: list[Queue] | None = None,
        errors: list[QueueImportError] | None = None,
    ) -> None:
        self.path, self.message, self.line = str(path), message, line
        self.queues = queues or []
        self.errors = errors or [self]
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        more = f" (and {len(self.errors) - 1} more)" if len(self.errors) > 1 else ""
        return f"{where}: {self.message}{more}"


# -- parsing ---------------------------------------------------------------------


def _int(text: str, what: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{what} is not a whole number: {text!r}") from None
    if value < 0:
        raise ValueError(f"{what} is negative: {text!r}")
    return value


def parse_member(value: str) -> Member:
    """One `member =>` value; ValueError says what is wrong with it."""
    fields = split_args(value) + [""] * 7
    interface = fields[0]
    if "/" not in interface:
        raise ValueError(f"interface {interface!r} is not Technology/Resource")
    return Member(
        interface=interface,
        name=fields[2] or interface,
        penalty=_int(fields[1], "penalty") if fields[1] else 0,
        state_interface=fields[3] or interface,
        ringinuse=parse_bool(fields[4], "ringinuse"),
        wrapuptime=_int(fields[5], "wrapuptime") if fields[5] else None,
        paused=parse_bool(fields[6], "paused"),
    )


Setting = tuple[str, str, int]  # key (lower case), value, line
Report = Callable[[int, str], None]  # line, message


def _sections(conf: AsteriskConf, problem: Report) -> dict[str, list[Setting]]:
    """Real sections (no templates, no [general]) with inherited settings first."""
    resolved: dict[str, list[Setting]] = {}
    real: list[str] = []
    for cat in conf.categories:
        if cat.number in conf.invalid_sections:
            continue
        head = conf.headers[cat.number]
        name = head.name
        items = [(i.name.strip().lower(), unescape(i.value), i.number) for i in cat.items]
        if head.append and name in resolved:
            resolved[name] += items
            continue
        if head.append:
            problem(head.line, f"[{name}](+) adds to a section not defined before it")
        inherited: list[Setting] = []
        for parent in head.parents:
            if parent in resolved:
                inherited += resolved[parent]
            else:
                problem(head.line, f"template [{parent}] of [{name}] is not defined before it")
        if name in resolved:
            problem(head.line, f"[{name}] is defined twice; merged (write [{name}](+) to add to it)")
            resolved[name] += inherited + items
            continue
        resolved[name] = inherited + items
        if not head.template and name.lower() != "general":
            real.append(name)
    return {name: resolved[name] for name in real}


def _queue(name: str, settings: list[Setting], problem: Report) -> Queue:
    queue = Queue(name)
    members: dict[str, Member] = {}
    for key, value, line in settings:
        try:
            if key == "member":
                member = parse_member(value)
                members[member.interface] = member
            elif key == "strategy":
                if value.lower() not in STRATEGIES:
                    raise ValueError(f"unknown strategy {value!r} (Asterisk then uses ringall)")
                queue.strategy = value.lower()
            elif key in _INT_FIELDS:
                setattr(queue, key, _int(value, key))
            else:
                queue.options[key] = value
        except ValueError as exc:
            problem(line, f"[{name}] {'member: ' if key == 'member' else ''}{exc}")
    queue.members = list(members.values())
    return queue


def read_agents(path: str | Path, errors: list[QueueImportError]) -> dict[str, str]:
    """Agent id -> full name from an agents.conf (`[1001]` + `fullname=`, or `agent => id,pw,name`)."""
    try:
        conf = AsteriskConf(str(path))
    except OSError as exc:
        raise QueueImportError(path, f"cannot read: {exc.strerror or exc}") from exc
    errors += [QueueImportError(path, p.message, p.line) for p in conf.problems]
    names: dict[str, str] = {}
    for cat in conf.categories:
        head = conf.headers.get(cat.number)
        if head is None or head.template:
            continue
        for item in cat.items:
            key, value = item.name.strip().lower(), unescape(item.value)
            if key == "fullname":
                names[head.name] = value
            elif key == "agent" and len(parts := split_args(value)) >= 3 and parts[2]:
                names[parts[0]] = parts[2]
    return names


def _agent_id(member: Member) -> str | None:
    for text, prefix in ((member.interface, "Agent/"), (member.state_interface, "Agent:")):
        if text.startswith(prefix):
            return text[len(prefix) :]
    return None


def import_queues(
    path: str | Path,
    *,
    agents: str | Path | None = None,
    errors: list[QueueImportError] | None = None,
) -> list[Queue]:
    """The queues of a `queues.conf`, with member names from an optional `agents.conf`.

    A missing file raises QueueImportError at once. Bad lines are skipped: with an
    `errors` list they are appended to it; without, the first is raised once the
    whole file is read, carrying all of them and the queues that did import.
    """
    try:
        conf = AsteriskConf(str(path))
    except OSError as exc:
        raise QueueImportError(path, f"cannot read: {exc.strerror or exc}") from exc
    found: dict[tuple[int, str], None] = {(p.line, p.message): None for p in conf.problems}

    def problem(line: int, message: str) -> None:
        found[(line, message)] = None

    queues = [_queue(name, s, problem) for name, s in _sections(conf, problem).items()]
    bad = [QueueImportError(path, msg, line) for line, msg in sorted(found)]
    if agents is not None:
        names = read_agents(agents, bad)
        for queue in queues:
            queue.members = [
                replace(m, name=names[aid])
                if (aid := _agent_id(m)) in names and m.name == m.interface
                else m
                for m in queue.members
            ]
    if errors is not None:
        errors += bad
    elif bad:
        raise QueueImportError(path, bad[0].message, bad[0].line, queues=queues, errors=bad)
    return queues


# -- output ----------------------------------------------------------------------


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return json.dumps(str(value), ensure_ascii=False).replace("\x7f", "\\u007f")


def to_toml(queues: Iterable[Queue], source: str | None = None) -> str:
    """`[[queue]]` tables, members as inline tables, ready to paste into ctid's config."""
    out = [f"# Imported from {source} by `ctid import asterisk-queues`." if source else ""]
    for q in queues:
        out += ["[[queue]]", f"name = {_toml(q.name)}"]
        out += [f"{k} = {_toml(getattr(q, k))}" for k in ("strategy", *_INT_FIELDS)]
        if not q.members:
            out += ["members = []", ""]
            continue
        out.append("members = [")
        for m in q.members:
            pairs = [f"{k} = {_toml(v)}" for k, v in asdict(m).items() if v is not None]
            out.append("    { " + ", ".join(pairs) + " },")
        out += ["]", ""]
    return "\n".join(out).strip() + "\n"


def to_json(queues: Iterable[Queue]) -> str:
    """The queues as a JSON array (every field, `options` included)."""
    return json.dumps([asdict(q) for q in queues], indent=2, ensure_ascii=False) + "\n"


# -- command line ----------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of `ctid import asterisk-queues`."""
    parser.add_argument("file", help="the site's queues.conf")
    parser.add_argument("--agents", metavar="FILE", help="agents.conf: names for Agent/<id> members")
    parser.add_argument("--json", action="store_true", help="print JSON instead of TOML")


def main(args: argparse.Namespace) -> int:
    """Print the queues on stdout and bad lines on stderr: 0 clean, 1 some lines bad, 2 no file."""
    errors: list[QueueImportError] = []
    try:
        queues = import_queues(args.file, agents=args.agents, errors=errors)
    except QueueImportError as exc:
        print(f"ctid: {exc}", file=sys.stderr)
        return 2
    for err in errors:
        print(f"ctid: skipped {err}", file=sys.stderr)
    sys.stdout.write(to_json(queues) if args.json else to_toml(queues, source=args.file))
    return 1 if errors else 0
