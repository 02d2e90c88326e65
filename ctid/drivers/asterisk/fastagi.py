"""Asterisk route point: a FastAGI server on asyncio streams in front of the routing engine.

The dialplan (config/extensions-ctid.conf) sends a call here with
`AGI(agi://HOST:PORT/route?queue=sales&skills=french:5&priority=0)`. The session asks the
channel's linkedid (ctid's call id), asks the engine, and answers by setting channel variables
before it ends the AGI: `CTID_ACTION` (agent | fallback | reject), `CTID_AGENT`, `CTID_DEVICE`,
`CTID_TARGET` (e.g. `voicemail:100`), `CTID_REASON`. When the answer is `wait`, the session
turns music on hold on and keeps the AGI open, polling the channel with `WAIT FOR DIGIT` every `poll` seconds
(the AGI cannot be interrupted: that is also the longest delay a decision waits), until
the engine decides for the call (an agent freed up, an escalation step, the max wait) or the
caller hangs up (the call leaves its queue). pyst2's `asterisk.fastagi` is Python 2 only; the
AGI protocol is small enough to speak directly: `key: value` lines then a blank line, then one
command line per `200 result=N (data)` reply.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

from ctid.acd.decision import Decision, RouteRequest
from ctid.acd.engine import RoutingEngine
from ctid.metrics import Counters

log = logging.getLogger("ctid.fastagi")

_RESULT = re.compile(r"^200 result=(-?\d+)(?: \((.*)\))?")
MAX_ENV_LINES = 200  # an AGI environment is ~25 lines; more is not Asterisk


class AgiError(Exception):
    """The channel or the peer cannot go on (hung up, bad reply)."""


class BadRoute(AgiError):
    """The dialplan's AGI URL is not a route request; the call gets the routing-wide fallback."""


def parse_env(lines: list[str]) -> dict[str, str]:
    """`agi_key: value` lines (without the blank line) as a dict."""
    env = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if not sep:
            raise AgiError(f"not an AGI environment line: {line!r}")
        env[key.strip()] = value.strip()
    return env


def parse_result(line: str) -> tuple[int, str | None]:
    """`200 result=1 (data)` -> (1, 'data'). Anything else (a hangup, 5xx) raises AgiError."""
    m = _RESULT.match(line)
    if m is None:
        raise AgiError(f"AGI command failed: {line.strip()!r}")
    return int(m.group(1)), m.group(2)


def route_request(env: dict[str, str], call_id: str) -> RouteRequest:
    """The route request a session's environment asks: query string of the AGI URL, else
    `agi_arg_1` for the queue. `skills=french:5,english:3`, `priority=10`."""
    query = parse_qs(urlsplit(env.get("agi_network_script", "")).query)
    queue = (query.get("queue") or [env.get("agi_arg_1", "")])[0]
    if not queue:
        raise BadRoute("no queue: use agi://host:port/route?queue=NAME")
    skills = None
    if query.get("skills"):
        skills = {}
        for item in query["skills"][0].split(","):
            skill, _, level = item.partition(":")
            if not level.lstrip("-").isdigit():
                raise BadRoute(f"skills: {item!r} is not skill:level")
            skills[skill] = int(level)
    priority = query.get("priority", ["0"])[0]
    if not priority.lstrip("-").isdigit():
        raise BadRoute(f"priority: {priority!r} is not an int")
    caller = env.get("agi_callerid") or None
    return RouteRequest(call_id, queue, None if caller == "unknown" else caller, skills, int(priority), "fastagi")


class AgiSession:
    """One AGI conversation: send a command, read its reply."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def environment(self) -> dict[str, str]:
        lines = []
        while True:
            raw = await self.reader.readline()
            if not raw:
                raise AgiError("connection closed before the AGI environment ended")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if not line:
                return parse_env(lines)
            lines.append(line)
            if len(lines) > MAX_ENV_LINES:
                raise AgiError("AGI environment too long")

    async def command(self, text: str) -> tuple[int, str | None]:
        self.writer.write(text.encode() + b"\n")
        await self.writer.drain()
        while True:
            raw = await self.reader.readline()
            if not raw:
                raise AgiError("connection closed")
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            if line == "HANGUP":  # Asterisk says so once, then answers 511 to what follows
                continue
            return parse_result(line)

    async def set(self, name: str, value: Any) -> None:
        await self.command(f'SET VARIABLE {name} "{str(value)}"'.replace("\n", " "))


class FastAgiServer:
    """The route point server. `poll` is how often (seconds) a waiting session checks the
    channel is still there; the decision itself wakes the session at once."""

    def __init__(self, engine: RoutingEngine, counters: Counters, poll: float = 0.25) -> None:
        self.engine = engine
        self.counters = counters
        self.poll = poll
        self._waiting: dict[str, asyncio.Future] = {}
        self._server: asyncio.base_events.Server | None = None
        engine.listen(self._decided)

    async def start(self, host: str, port: int) -> int:
        self._server = await asyncio.start_server(self._serve, host, port)
        bound = self._server.sockets[0].getsockname()[1]
        log.info("FastAGI route point listening", extra={"ctx": {"host": host, "port": bound}})
        return bound

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _decided(self, decision: Decision) -> None:
        future = self._waiting.get(decision.call_id)
        if future is not None and not future.done() and decision.action != "wait":
            future.set_result(decision)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.counters.inc("fastagi.sessions")
        session = AgiSession(reader, writer)
        call_id = None
        try:
            env = await session.environment()
            _, linkedid = await session.command("GET VARIABLE CHANNEL(linkedid)")
            call_id = linkedid or env.get("agi_uniqueid", "")
            try:
                request = route_request(env, call_id)
            except BadRoute as exc:
                self.counters.inc("fastagi.bad_requests")
                log.warning("bad FastAGI route request", extra={"ctx": {"call_id": call_id, "error": str(exc)}})
                await self._answer(session, Decision(call_id, "fallback", target=str(self.engine.rules.fallback),
                                                     reason=f"bad_request: {exc}"))
                return
            decision = self.engine.route(request)
            if decision.action == "wait":
                decision = await self._wait(session, call_id)
            if decision is not None:
                await self._answer(session, decision)
        except AgiError as exc:
            self.counters.inc("fastagi.errors")
            log.warning("FastAGI session failed", extra={"ctx": {"call_id": call_id, "error": str(exc)}})
            if call_id is not None and self.engine.leave(call_id):
                self.counters.inc("fastagi.hangups")
        except (ConnectionError, asyncio.IncompleteReadError) as exc:
            self.counters.inc("fastagi.errors")
            log.warning("FastAGI connection lost", extra={"ctx": {"call_id": call_id, "error": repr(exc)}})
            if call_id is not None:
                self.engine.leave(call_id)
        finally:
            if call_id is not None:
                self._waiting.pop(call_id, None)
            writer.close()

    async def _wait(self, session: AgiSession, call_id: str) -> Decision | None:
        """Music on hold while the engine has nobody; the first decision for the call ends it.
        A hangup (WAIT FOR DIGIT answers -1, or an error) takes the call out of its queue."""
        future = self._waiting[call_id] = asyncio.get_running_loop().create_future()
        await session.command("SET MUSIC ON")
        while not future.done():
            poll = asyncio.ensure_future(session.command(f"WAIT FOR DIGIT {int(self.poll * 1000)}"))
            await asyncio.wait([future, poll], return_when=asyncio.FIRST_COMPLETED)
            if not poll.done():
                await poll  # the reply is due within `poll`: keep the conversation in step
            result, _ = poll.result()
            if result < 0 and not future.done():
                self.counters.inc("fastagi.hangups")
                self.engine.leave(call_id, time.time())
                return None
        await session.command("SET MUSIC OFF")
        return future.result()

    async def _answer(self, session: AgiSession, d: Decision) -> None:
        await session.set("CTID_ACTION", d.action)
        for name, value in (("CTID_AGENT", d.agent), ("CTID_DEVICE", d.device), ("CTID_TARGET", d.target),
                            ("CTID_REASON", d.reason)):
            if value:
                await session.set(name, value)
        self.counters.inc(f"fastagi.answers.{d.action}")
