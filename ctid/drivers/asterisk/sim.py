"""`ctid sim asterisk`: a stand-in Asterisk 22 on a TCP port, running a simulated call center.

A real AMI server (banner, Login, Events, list actions, call control) in front of
`ctid.sim.CallCenter`; its happenings are rendered by `simrender.AmiRenderer` into the
frames a real Asterisk sends (see shared/ami for the recordings it follows). The
virtual clock runs `speed` times faster than the wall clock; the same seed (and the
same `epoch`) gives the same event stream.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from typing import Any, Mapping

from ctid.drivers.asterisk.simactions import Actions, goodbye
from ctid.drivers.asterisk.simcontrol import ControlActions
from ctid.drivers.asterisk.simrender import AmiRenderer
from ctid.drivers.asterisk.simwire import encode
from ctid.sim import CallCenter, SimConfig, server
from ctid.sim.server import SimClient, SimServer


BANNER = b"Asterisk Call Manager/11.0.0\r\n"
ALL_CLASSES = frozenset({"system", "call", "log", "verbose", "command", "agent", "user", "config", "dtmf",
                         "reporting", "cdr", "dialplan", "originate", "agi", "cc", "aoc", "test", "security",
                         "message"})
OFF = frozenset({"off", "no", "false", "0", "n", "f"})


class Request:
    """One action: header names are case-insensitive; `Variable` may repeat."""

    def __init__(self, raw: bytes) -> None:
        self.fields: dict[str, list[str]] = {}
        for line in raw.decode("utf-8", "replace").split("\r\n"):
            key, sep, value = line.partition(":")
            if sep and key.strip():
                self.fields.setdefault(key.strip().lower(), []).append(value.strip())

    def get(self, key: str) -> str | None:
        values = self.fields.get(key)
        return values[0] if values else None

    @property
    def action_id(self) -> str | None:
        return self.get("actionid")

    def variables(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for value in self.fields.get("variable", []):
            for pair in value.split(","):
                name, sep, val = pair.partition("=")
                if sep:
                    out[name.strip()] = val
        return out


class Client(SimClient):
    """One AMI connection."""

    wire = "asterisk"

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        super().__init__(writer)
        self.authed = False
        self.username = ""
        self.classes: frozenset[str] = frozenset()  # event classes wanted; empty = events off

    def set_events(self, value: str | None) -> None:
        value = (value or "on").strip().lower()
        if value in OFF:
            self.classes = frozenset()
        elif value in ("on", "yes", "true", "1", "all"):
            self.classes = ALL_CLASSES
        else:
            self.classes = frozenset(p.strip() for p in value.split(",")) & ALL_CLASSES



class AmiSimulator(ControlActions, Actions, SimServer):
    """The simulated PBX. `start()` listens; the clock starts with it unless `paused`."""

    def __init__(self, config: SimConfig | Mapping[str, Any] | None = None, *, seed: int | None = None,
                 speed: float = 1.0, traffic: bool = True, secret: str | None = None, username: str | None = None,
                 epoch: float | None = None, paused: bool = False) -> None:
        if config is not None and not isinstance(config, SimConfig):
            config = SimConfig.from_dict(config)
        SimServer.__init__(self, CallCenter(config, seed, traffic=traffic), speed, paused)
        self.renderer = AmiRenderer(self.model, epoch if epoch is not None else int(time.time()), self.model.seed)
        self.model.sinks.append(self.renderer)
        self.secret = secret
        self.username = username
        self.clients: set[Client] = set()
        self.spies: dict[str, Any] = {}  # supervisors' ChanSpy channels by name
        self.frames_sent = 0

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], **options: Any) -> AmiSimulator:
        """A simulator from a plain config dict (see `SimConfig.from_dict`)."""
        return cls(SimConfig.from_dict(raw), **options)

    # -- frames ------------------------------------------------------------------------------

    def flush(self) -> None:
        frames = self.renderer.take()
        if not frames:
            return
        self.frames_sent += len(frames)
        everything = b"".join(data for _, data in frames)
        for client in list(self.clients):
            if not client.authed or not client.classes:
                continue
            if client.classes == ALL_CLASSES:
                client.write(everything)
            else:
                client.write(b"".join(data for cls, data in frames if cls in client.classes))

    def close_clients(self) -> None:
        for client in list(self.clients):
            client.close()

    # -- server ------------------------------------------------------------------------------

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        client = Client(writer)
        self.clients.add(client)
        writer.write(BANNER)
        buf = b""
        try:
            while not client.closed:
                data = await reader.read(65536)
                if not data:
                    break
                buf += data
                while not client.closed:
                    end = buf.find(b"\r\n\r\n")
                    if end < 0:
                        break
                    raw, buf = buf[:end], buf[end + 4:]
                    if raw.strip():
                        self.handle(client, Request(raw))
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            self.clients.discard(client)
            client.close()

    # -- actions -----------------------------------------------------------------------------

    def respond(self, client: Client, req: Request, response: str, message: str | None = None,
                *extra: tuple[str, Any]) -> None:
        fields: list[tuple[str, Any]] = [("Response", response)]
        if req.action_id is not None:
            fields.append(("ActionID", req.action_id))
        if message is not None:
            fields.append(("Message", message))
        client.write(encode([*fields, *extra]))

    def error(self, client: Client, req: Request, message: str) -> None:
        self.respond(client, req, "Error", message)

    def handle(self, client: Client, req: Request) -> None:
        """Answer one action; events it causes go out after its response."""
        self.sync()  # what happened before the request is told before its answer
        action = req.get("action")
        if not action:
            self.error(client, req, "Missing action in request")
            return
        name = action.lower()
        if name == "login":
            self._login(client, req)
        elif name == "logoff":
            client.write(goodbye(req.action_id))
            client.close()
        elif not client.authed:
            self.error(client, req, "Permission denied")
        else:
            handler = getattr(self, "act_" + name, None)
            if handler is None:
                self.error(client, req, f"Invalid/unknown command: {action}. "
                                        "Use Action: ListCommands to show available commands.")
                return
            handler(client, req)
            self.flush()
            self._wake.set()  # a control action may have scheduled something sooner than the ticker thinks

    def _login(self, client: Client, req: Request) -> None:
        user, secret = req.get("username") or "", req.get("secret") or ""
        if self.secret is not None and (secret != self.secret or (self.username is not None and user != self.username)):
            self.error(client, req, "Authentication failed")
            client.close()  # Asterisk ends the session on a failed login
            return
        client.authed, client.username = True, user
        client.set_events(req.get("events"))
        self.respond(client, req, "Success", "Authentication accepted")
        uptime = int(self.clock())
        if "system" in client.classes:
            client.write(encode([("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", uptime),
                                 ("LastReload", uptime), ("Status", "Fully Booted")]))
        if "security" in client.classes:
            peer = client.writer.get_extra_info("peername") or ("127.0.0.1", 0)
            local = client.writer.get_extra_info("sockname") or ("127.0.0.1", 0)
            tv = time.strftime("%Y-%m-%dT%H:%M:%S.000+0000", time.gmtime())
            client.write(encode([
                ("Event", "SuccessfulAuth"), ("Privilege", "security,all"), ("EventTV", tv),
                ("Severity", "Informational"), ("Service", "AMI"), ("EventVersion", 1), ("AccountID", user),
                ("SessionID", f"0x{id(client) & 0xFFFFFFFFFFFF:x}"), ("LocalAddress", f"IPV4/TCP/{local[0]}/{local[1]}"),
                ("RemoteAddress", f"IPV4/TCP/{peer[0]}/{peer[1]}"), ("UsingPassword", 0), ("SessionTV", tv)]))


# -- CLI ---------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    server.add_arguments(parser, 5038, "AMI")


def build(args: argparse.Namespace) -> AmiSimulator:
    return AmiSimulator(server.config_from_args(args), seed=args.seed, speed=args.speed, traffic=not args.no_traffic,
                        secret=args.secret, username=args.username)


async def main(args: argparse.Namespace) -> int:
    return await server.serve(build, args, "asterisk", "AMI", "Asterisk")
