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
import logging
import time
from typing import Any, Mapping

from ctid.drivers.csta.protocol import EVENT_ID, NS_CSTA, NS_SESSION, FrameParser, Message, encode
from ctid.drivers.csta.simrender import CstaRenderer
from ctid.drivers.csta.simrequests import Requests
from ctid.sim import CallCenter, SimConfig
from ctid.sim import server
from ctid.sim.server import SimClient, SimServer

log = logging.getLogger("ctid.sim.csta")

class Client(SimClient):
    """One connection: its session and its monitors (device -> monitorCrossRefID)."""

    wire = "csta"

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        super().__init__(writer)
        self.session: str | None = None
        self.monitors: dict[str, str] = {}
        self.routes: dict[str, str] = {}  # routeRegisterReqID -> routing device



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
    server.add_arguments(parser, 4721, "CSTA")


def build(args: argparse.Namespace) -> CstaSimulator:
    return CstaSimulator(server.config_from_args(args), seed=args.seed, speed=args.speed,
                         traffic=not args.no_traffic, secret=args.secret, username=args.username)


async def main(args: argparse.Namespace) -> int:
    return await server.serve(build, args, "csta", "CSTA XML", "CSTA server",
                              lambda sim: f"; devices {' '.join(sorted(sim.devices))}")  # type: ignore[attr-defined]
