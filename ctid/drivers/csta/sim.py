"""`ctid sim csta`: a stand-in AES-like CSTA XML server on a TCP port, running the same
simulated call center as `ctid sim asterisk` (ctid.sim), on a different wire.

Per connection: DMCC frames (protocol.py) both ways; an application session first
(any credentials unless `secret` is set), then monitors, snapshots, agent state, call
control and routing requests (simrequests.py). Events go to the monitor of the first
device of each rendered event the client monitors (simrender.py). Bad requests are
answered the way a server does: CSTAErrorCode (or the session's NegResponse).
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any, Mapping

from ctid.drivers.asterisk.sim import _queue_arg
from ctid.drivers.csta.protocol import EVENT_ID, NS_CSTA, NS_SESSION, FrameParser, Message, encode
from ctid.drivers.csta.simrender import CstaRenderer
from ctid.drivers.csta.simrequests import Requests
from ctid.sim import CallCenter, SimConfig
from ctid.sim.server import SimServer

log = logging.getLogger("ctid.sim.csta")

WRITE_LIMIT = 32 << 20  # a client this far behind is dropped


class Client:
    """One connection: its session and its monitors (device -> monitorCrossRefID)."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.session: str | None = None
        self.monitors: dict[str, str] = {}
        self.routes: dict[str, str] = {}  # routeRegisterReqID -> routing device
        self.closed = False

    def write(self, data: bytes) -> None:
        if self.closed or not data:
            return
        if self.writer.transport.get_write_buffer_size() > WRITE_LIMIT:
            log.warning("dropping a CSTA client that does not read")
            self.close()
            return
        self.writer.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.writer.close()


class CstaSimulator(Requests, SimServer):
    """The simulated CSTA server. `start()` listens; the clock starts with it unless `paused`."""

    def __init__(self, config: SimConfig | Mapping[str, Any] | None = None, *, seed: int | None = None,
                 speed: float = 1.0, traffic: bool = True, secret: str | None = None, username: str | None = None,
                 epoch: float | None = None, paused: bool = False, session_duration: int = 180) -> None:
        if config is not None and not isinstance(config, SimConfig):
            config = SimConfig.from_dict(config)
        SimServer.__init__(self, CallCenter(config, seed, traffic=traffic), speed, paused)
        self.renderer = CstaRenderer(self.model, epoch if epoch is not None else int(time.time()))
        self.model.sinks.append(self.renderer)
        self.secret = secret
        self.username = username
        self.session_duration = session_duration
        self.clients: set[Client] = set()
        self.events_sent = 0
        self.routing: dict[str, int] = {}
        self._xrefs = itertools.count(1)
        self.model.sinks.append(self._left)

    @property
    def devices(self) -> set[str]:
        """Every device a client may monitor: stations, splits (and their VDNs), the consult line."""
        return {*self.model.agents, *self.model.queues, self.model.b.consult_target}

    def _left(self, h: Any) -> None:
        if h.kind in ("abandon", "timeout") and h.call is not None and self.routing:
            self.route_ended(h.call.id)

    # -- events ----------------------------------------------------------------------------

    def flush(self) -> None:
        rendered = self.renderer.take()
        if not rendered:
            return
        for client in list(self.clients):
            if client.session is None or not client.monitors:
                continue
            monitors = client.monitors
            out = []
            for devices, name, fields in rendered:
                xref = next((monitors[d] for d in devices if d in monitors), None)
                if xref is not None:
                    out.append(encode(name, {"monitorCrossRefID": xref, **fields}))
            self.events_sent += len(out)
            client.write(b"".join(out))

    def close_clients(self) -> None:
        for client in list(self.clients):
            client.close()

    # -- connections -------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = Client(writer)
        self.clients.add(client)
        parser = FrameParser()
        try:
            while not client.closed:
                data = await reader.read(65536)
                if not data:
                    break
                for message in parser.feed(data):
                    self.handle(client, message)
                for reason, _ in parser.take_errors():
                    # The invoke id of an unreadable request is lost with it: the error goes as an event.
                    log.warning("bad CSTA request", extra={"ctx": {"reason": reason}})
                    self.error(client, EVENT_ID, "operation", "generic")
                if parser.broken is not None:
                    break
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.clients.discard(client)
            client.close()

    def reply(self, client: Client, invoke_id: str, name: str, fields: dict[str, Any],
              namespace: str = NS_CSTA) -> None:
        client.write(encode(name, fields, invoke_id, namespace))

    def error(self, client: Client, invoke_id: str, category: str, value: str) -> None:
        """A negative acknowledgement: CSTAErrorCode with one category element."""
        client.write(encode("CSTAErrorCode", {category: value}, invoke_id))

    def handle(self, client: Client, message: Message) -> None:
        """Answer one request; the events it causes go out after its answer."""
        self.sync()  # what happened before the request is told before its answer
        invoke, name = message.invoke_id, message.name
        if name == "StartApplicationSession":
            self.start_session(client, message)
            return
        if client.session is None:
            if message.namespace == NS_SESSION:
                self.reply(client, invoke, name + "NegResponse",
                           {"errorCode": {"sessionManagementError": "invalidSessionID"}}, NS_SESSION)
            else:
                self.error(client, invoke, "security", "requestIncompatibleWithObject")
            return
        handler = getattr(self, "req_" + name, None)
        if handler is None:
            self.error(client, invoke, "operation", "invalidFeature")
            return
        handler(client, message)
        self.flush()
        self.poke()


# -- CLI ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=4721, help="CSTA port (default 4721; 0 picks a free one)")
    parser.add_argument("--secret", default=None, help="refuse sessions without this password (default: accept any)")
    parser.add_argument("--username", default=None, help="with --secret: the only user name accepted")
    parser.add_argument("--seed", type=int, default=None, help="seed of the traffic (same seed, same calls)")
    parser.add_argument("--no-traffic", action="store_true", help="no calls by themselves: only what clients ask")
    parser.add_argument("--speed", type=float, default=1.0, help="simulated time runs this many times faster (default 1)")
    parser.add_argument("--agents", type=int, default=8, help="number of agents (default 8)")
    parser.add_argument("--queues", nargs="+", type=_queue_arg, default=None, metavar="NAME[:STRATEGY[:RATE[:TIMEOUT]]]",
                        help="queues (default: sales:rrmemory:120 support:leastrecent:90:90 vip:fewestcalls:60)")
    parser.add_argument("--config", default=None, help="a JSON call center (queues, agents, rates, behaviour)")
    parser.add_argument("--duration", type=float, default=None,
                        help="stop after this many seconds (default: run until Ctrl-C)")


def build(args: argparse.Namespace) -> CstaSimulator:
    if args.config:
        config = SimConfig.from_dict(json.loads(Path(args.config).read_text(encoding="utf-8")))
    else:
        config = SimConfig.default(agents=args.agents, queues=args.queues)
    return CstaSimulator(config, seed=args.seed, speed=args.speed, traffic=not args.no_traffic, secret=args.secret,
                         username=args.username)


async def main(args: argparse.Namespace) -> int:
    try:
        sim = build(args)
    except (ValueError, OSError) as exc:
        print(f"ctid sim csta: {exc}", file=sys.stderr)
        return 2
    try:
        host, port = await sim.start(args.host, args.port)
    except OSError as exc:
        print(f"ctid sim csta: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    log.info("simulated CSTA server listening", extra={"ctx": {
        "host": host, "port": port, "seed": sim.seed, "speed": sim.speed, "traffic": sim.model.traffic,
        "queues": list(sim.model.queues), "agents": len(sim.model.agents)}})
    print(f"ctid sim csta: CSTA XML on {host}:{port} (seed {sim.seed}, speed {sim.speed:g}; devices "
          f"{' '.join(sorted(sim.devices))})", flush=True)
    try:
        if args.duration is not None:
            await asyncio.sleep(args.duration)
        else:
            await asyncio.Event().wait()
    finally:
        await sim.stop()
    return 0
