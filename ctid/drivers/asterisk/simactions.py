"""The AMI actions the simulator answers, with Asterisk 22's messages for success and error.

A mixin of `sim.AmiSimulator`: each `act_<name>` gets the client and the parsed
request, writes the response (and list items) to that client, and may change the
call center; events that follow are broadcast by the simulator afterwards.
"""

from __future__ import annotations

import re
import time
from typing import TYPE_CHECKING, Any

from ctid.drivers.asterisk import simlists
from ctid.config import agent_id_of
from ctid.drivers.asterisk.simrender import AmiRenderer
from ctid.drivers.asterisk.simwire import encode
from ctid.sim import Agent, CallCenter, SimError

if TYPE_CHECKING:
    from ctid.drivers.asterisk.sim import Client, Request

INBOUND_CONTEXTS = frozenset({"inbound", "from-pstn", "from-trunk", "from-did", "from-external", "queue-entry"})
TRUE = frozenset({"yes", "true", "y", "t", "1", "on"})
_CALLERID = re.compile(r'^\s*"?([^"<]*?)"?\s*<([^>]*)>\s*$')


def parse_callerid(value: str | None) -> tuple[str, str]:
    """`"Name" <num>`, `Name <num>` or `num` -> (num, name)."""
    if not value:
        return "", ""
    m = _CALLERID.match(value)
    if m:
        return m.group(2).strip(), m.group(1).strip()
    return value.strip(), ""


class Actions:
    model: CallCenter
    renderer: AmiRenderer

    if TYPE_CHECKING:
        def spy(self, client: Client, req: Request, channel: str) -> None: ...
        def respond(self, client: Client, req: Request, response: str, message: str | None = None,
                    *extra: tuple[str, Any]) -> None: ...
        def error(self, client: Client, req: Request, message: str) -> None: ...

    # -- session and system ----------------------------------------------------------------

    def act_ping(self, client: Client, req: Request) -> None:
        self.respond(client, req, "Success", None, ("Ping", "Pong"), ("Timestamp", f"{time.time():.6f}"))

    def act_events(self, client: Client, req: Request) -> None:
        mask = req.get("eventmask")
        if not mask:
            self.error(client, req, "Invalid event mask")
            return
        client.set_events(mask)
        self.respond(client, req, "Success", None, ("Events", "On" if client.classes else "Off"))

    def act_coresettings(self, client: Client, req: Request) -> None:
        self.respond(client, req, "Success", None, ("AMIversion", "11.0.0"), ("AsteriskVersion", "22.10.1"),
                     ("SystemName", ""), ("CoreMaxCalls", 0), ("CoreMaxLoadAvg", "0.000000"), ("CoreRunUser", ""),
                     ("CoreRunGroup", ""), ("CoreMaxFilehandles", 0), ("CoreRealTimeEnabled", "No"),
                     ("CoreCDRenabled", "Yes"), ("CoreHTTPenabled", "No"), ("SoundsSearchCustomDir", "No"))

    # -- lists -------------------------------------------------------------------------------

    def act_queuestatus(self, client: Client, req: Request) -> None:
        client.write(simlists.queue_status(self.renderer, req.action_id, req.get("queue"), req.get("member")))

    def act_queuesummary(self, client: Client, req: Request) -> None:
        client.write(simlists.queue_summary(self.renderer, req.action_id, req.get("queue")))

    def act_coreshowchannels(self, client: Client, req: Request) -> None:
        client.write(simlists.core_show_channels(self.renderer, req.action_id))

    def act_status(self, client: Client, req: Request) -> None:
        data = simlists.status(self.renderer, req.action_id, req.get("channel"))
        if data is None:
            self.error(client, req, "No such channel")
        else:
            client.write(data)

    # -- members -------------------------------------------------------------------------------

    def _agent_by_interface(self, interface: str) -> Agent | None:
        want = interface.lower().removesuffix("/n")
        for agent in self.model.agents.values():
            if self.renderer.iface(agent).lower().removesuffix("/n") == want:
                return agent
        return None

    def act_queuepause(self, client: Client, req: Request) -> None:
        interface, paused = req.get("interface"), req.get("paused")
        if not interface or not paused:
            self.error(client, req, "Need 'Interface' and 'Paused' parameters.")
            return
        agent = self._agent_by_interface(interface)
        on = paused.lower() in TRUE
        try:
            if agent is None:
                raise SimError("no_such_member")
            self.model.set_paused(agent.ext, on, req.get("queue") or None, req.get("reason") or "")
        except SimError:
            self.error(client, req, "Interface not found")
            return
        self.respond(client, req, "Success", "Interface paused successfully" if on else "Interface unpaused successfully")

    def act_queueadd(self, client: Client, req: Request) -> None:
        queue, interface = req.get("queue"), req.get("interface")
        if not queue:
            self.error(client, req, "'Queue' not specified.")
            return
        if not interface:
            self.error(client, req, "'Interface' not specified.")
            return
        agent = self._agent_by_interface(interface)
        ext = agent.ext if agent is not None else agent_id_of(interface)
        try:
            penalty = max(0, int(req.get("penalty") or 0))
        except ValueError:
            penalty = 0
        try:
            self.model.add_member(queue, ext, req.get("membername") or None,
                                  interface=None if agent is not None or ext in self.model.agents else interface,
                                  penalty=penalty, paused=(req.get("paused") or "").lower() in TRUE,
                                  reason=req.get("reason") or "")
        except SimError as exc:
            msg = "Unable to add interface: Already there" if exc.code == "already_member" else \
                "Unable to add interface to queue: No such queue"
            self.error(client, req, msg)
            return
        self.respond(client, req, "Success", "Added interface to queue")

    def act_queueremove(self, client: Client, req: Request) -> None:
        queue, interface = req.get("queue"), req.get("interface")
        if not queue or not interface:
            self.error(client, req, "Need 'Queue' and 'Interface' parameters.")
            return
        agent = self._agent_by_interface(interface)
        try:
            if agent is None:
                if queue not in self.model.queues:
                    raise SimError("no_such_queue")
                raise SimError("no_such_member")
            self.model.remove_member(queue, agent.ext)
        except SimError as exc:
            self.error(client, req, {"no_such_queue": "Unable to remove interface from queue: No such queue",
                                     "not_dynamic": "Member not dynamic"}.get(exc.code,
                                                                             "Unable to remove interface: Not there"))
            return
        self.respond(client, req, "Success", "Removed interface from queue")

    # -- calls ---------------------------------------------------------------------------------

    def act_originate(self, client: Client, req: Request) -> None:
        channel = req.get("channel")
        if not channel:
            self.error(client, req, "Channel not specified")
            return
        if "/" not in channel:
            self.error(client, req, "Invalid channel")
            return
        tag = req.action_id or ""
        if (req.get("application") or "").lower() == "chanspy":
            self.spy(client, req, channel)
            return
        variables = req.variables()
        tech, _, rest = channel.partition("/")
        exten, _, context = rest.removesuffix("/n").partition("@")
        agent = self.model.agents.get(exten)
        try:
            if tech.lower() == "local" and context in INBOUND_CONTEXTS and exten in self.model.queues:
                num, name = parse_callerid(req.get("callerid"))
                num = variables.get("CNUM", num) or "anonymous"
                name = variables.get("CNAME", name)
                data = req.get("data") or ""
                wait = (req.get("application") or "").lower() == "wait" and data.isdigit()
                self.respond(client, req, "Success", "Originate successfully queued")
                self.model.inbound(exten, num, name, patience=float(data) if wait else None, tag=tag)
                return
            if agent is not None and (tech.lower() != "local" or context == "agents"):
                number = req.get("exten")
                if not number:
                    self.error(client, req, "Exten not specified")
                    return
                self.respond(client, req, "Success", "Originate successfully queued")
                if req.get("channelid"):  # the client names the call's first channel (Asterisk 12+)
                    self.renderer.channel_ids[tag] = req.get("channelid") or ""
                self.model.outbound(agent.ext, number, tag=tag)
                return
        except SimError:  # the member's device is busy
            self.renderer.channel_ids.pop(tag, None)
            self._originate_failed(req, channel, 5)
            return
        self.respond(client, req, "Success", "Originate successfully queued")
        self._originate_failed(req, channel, 0)

    def _originate_failed(self, req: Request, channel: str, reason: int) -> None:
        how = [("Application", req.get("application") or ""), ("Data", req.get("data") or "")] if req.get("application") \
            else [("Context", req.get("context") or ""), ("Exten", req.get("exten") or "")]
        self.renderer.now = self.model.now
        self.renderer.originate_response(req.action_id or "", False, channel, how, reason)

    def _owner(self, channel: str | None) -> tuple[Any, str] | None:
        if not channel or channel not in self.renderer.channels:
            return None
        return self.renderer.owner.get(channel)

    def act_hangup(self, client: Client, req: Request) -> None:
        channel = req.get("channel")
        if not channel:
            self.error(client, req, "No channel specified")
            return
        owner = self._owner(channel)
        if owner is None:
            self.error(client, req, "No such channel")
            return
        self.respond(client, req, "Success", "Channel Hungup")
        call, side = owner
        try:
            self.model.hangup(call, side)
        except SimError:
            pass  # the call was already ending: nothing left to hang up

    def act_redirect(self, client: Client, req: Request) -> None:
        channel = req.get("channel")
        for key, message in (("channel", "Channel not specified"), ("context", "Context not specified"),
                             ("exten", "Exten not specified"), ("priority", "Priority not specified")):
            if not req.get(key):
                self.error(client, req, message)
                return
        owner = self._owner(channel)
        if owner is None:
            self.error(client, req, f"Channel does not exist: {channel}")
            return
        call, side = owner
        target = req.get("exten") or ""
        try:
            # The site's dialplan as simulated has one place to send a caller: a queue's DID in
            # `inbound` (its Newexten there is what tells a Redirect from a queue timeout).
            if req.get("context") != "inbound":
                raise SimError("no_such_context", req.get("context"))
            if side != "caller" or call.direction != "inbound":
                raise SimError("bad_state")
            self.model.redirect(call, target)
        except SimError:
            self.error(client, req, "Redirect failed")
            return
        self.respond(client, req, "Success", "Redirect successful")


def goodbye(action_id: str | None) -> bytes:
    fields: list[tuple[str, Any]] = [("Response", "Goodbye")]
    if action_id is not None:
        fields.append(("ActionID", action_id))
    return encode([*fields, ("Message", "Thanks for all the fish.")])
