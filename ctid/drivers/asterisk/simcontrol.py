"""The AMI actions a CTI client sends to steer calls, as the simulated PBX and its phones answer them.

A mixin of `sim.AmiSimulator` beside `simactions.Actions`: PJSIPNotify (the BroadSoft
`talk`/`hold` remote control desk phones honour), BlindTransfer, Atxfer, PlayDTMF, Setvar
and ChanSpy originates (supervisor monitoring), with Asterisk 22's messages. The call
center model does what the phone or the PBX would; its happenings are rendered as usual.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ctid.drivers.asterisk.simrender import AmiRenderer
from ctid.drivers.asterisk.simwire import Chan
from ctid.sim import Agent, CallCenter, SimError

if TYPE_CHECKING:
    from ctid.drivers.asterisk.sim import Client, Request

SPY_MODES = {"": "listen", "w": "whisper", "B": "barge"}


class ControlActions:
    model: CallCenter
    renderer: AmiRenderer
    spies: dict[str, Chan]  # the supervisor's channel name -> its channel, while it spies

    if TYPE_CHECKING:
        def respond(self, client: Client, req: Request, response: str, message: str | None = None,
                    *extra: tuple[str, Any]) -> None: ...
        def error(self, client: Client, req: Request, message: str) -> None: ...
        def _owner(self, channel: str | None) -> tuple[Any, str] | None: ...
        def _originate_failed(self, req: Request, channel: str, reason: int) -> None: ...

    def _endpoint_agent(self, endpoint: str) -> Agent | None:
        """The agent whose phone is this PJSIP endpoint: its extension, or its `PJSIP/<endpoint>` member."""
        agent = self.model.agents.get(endpoint)
        if agent is not None:
            return agent
        return next((a for a in self.model.agents.values() if a.interface == f"PJSIP/{endpoint}"), None)

    def _agent_call(self, client: Client, req: Request) -> tuple[Any, str] | None:
        channel = req.get("channel")
        if not channel:
            self.error(client, req, "No channel specified")
            return None
        owner = self._owner(channel)
        if owner is None:
            self.error(client, req, "Channel specified does not exist")
            return None
        return owner

    # -- the phone ---------------------------------------------------------------------------

    def act_pjsipnotify(self, client: Client, req: Request) -> None:
        endpoint = req.get("endpoint")
        if not endpoint:
            self.error(client, req, "Endpoint parameter missing.")
            return
        agent = self._endpoint_agent(endpoint)
        if agent is None:
            self.error(client, req, f"Unable to retrieve endpoint {endpoint}")
            return
        event = req.variables().get("Event", "").strip().lower()
        if not event:
            self.error(client, req, "Variable parameter missing.")
            return
        self.respond(client, req, "Success", "NOTIFY sent")
        # The phone acts on what it understands and ignores the rest, as a desk phone does.
        try:
            if event == "talk" and agent.state in ("ringing", "outbound") and agent.call is not None \
                    and agent.call.state in ("ringing", "dialing"):
                self.model.answer(agent)
            elif event == "talk" and agent.call is not None and agent.call.held:
                self.model.hold(agent.call, False)
            elif event == "hold" and agent.call is not None:
                self.model.hold(agent.call, True)
        except SimError:
            pass

    # -- transfers ---------------------------------------------------------------------------

    def _transfer(self, client: Client, req: Request, failed: str, do: Callable[[Any, str], None]) -> bool:
        """The part both transfer actions share: the agent's own call and a target extension."""
        owner = self._agent_call(client, req)
        if owner is None:
            return False
        exten = req.get("exten")
        if not exten:
            self.error(client, req, "No extension specified")
            return False
        call, side = owner
        try:
            if side != "agent":
                raise SimError("bad_state", side)
            do(call, exten)
        except SimError as exc:
            where = f": no extension {exten}@{req.get('context') or 'default'}" if exc.code == "no_such_queue" else ""
            self.error(client, req, failed + where)
            return False
        return True

    def act_blindtransfer(self, client: Client, req: Request) -> None:
        if self._transfer(client, req, "Transfer failed", self.model.blind_transfer):
            self.respond(client, req, "Success", "Transfer succeeded")

    def act_atxfer(self, client: Client, req: Request) -> None:
        if self._transfer(client, req, "Atxfer failed", self.model.consult):
            self.respond(client, req, "Success", "Atxfer successfully queued")

    # -- media and variables -----------------------------------------------------------------

    def act_playdtmf(self, client: Client, req: Request) -> None:
        channel, digit = req.get("channel"), req.get("digit")
        ch = self.renderer.channels.get(channel or "")
        if ch is None:
            self.error(client, req, "Channel not found")
            return
        if not digit or len(digit) != 1:
            self.error(client, req, "No digit specified")
            return
        self.respond(client, req, "Success", "DTMF successfully queued")
        self.renderer.now = self.model.now
        ms = int(req.get("duration") or 100) if (req.get("duration") or "100").isdigit() else 100
        self.renderer.plain("DTMFBegin", ch, ("Digit", digit), ("Direction", "Sent"), privilege="dtmf,all")
        self.renderer.plain("DTMFEnd", ch, ("Digit", digit), ("DurationMs", ms), ("Direction", "Sent"),
                            privilege="dtmf,all")

    def act_setvar(self, client: Client, req: Request) -> None:
        variable, channel = req.get("variable"), req.get("channel")
        if not variable:
            self.error(client, req, "No variable specified")
            return
        ch = self.renderer.channels.get(channel) if channel else None
        if channel and ch is None:
            self.error(client, req, "No such channel")
            return
        self.respond(client, req, "Success", "Variable Set")
        self.renderer.now = self.model.now
        self.renderer.varset(ch, (variable, req.get("value") or ""))

    # -- supervisors ---------------------------------------------------------------------------

    def spy(self, client: Client, req: Request, channel: str) -> None:
        """Originate(Application=ChanSpy): the supervisor's phone answers and spies on the agent's call."""
        target, _, options = (req.get("data") or "").partition(",")
        endpoint = target.partition("/")[2]
        agent = self._endpoint_agent(endpoint) if endpoint else None
        legs = self.renderer.legs.get(agent.call.id) if agent is not None and agent.call is not None else None
        self.respond(client, req, "Success", "Originate successfully queued")
        if legs is None or legs.talk is None:
            self._originate_failed(req, channel, 0)  # nothing to spy on: ChanSpy would hang up at once
            return
        r = self.renderer
        r.now = self.model.now
        tech, _, sup = channel.partition("/")
        spyer = r.single(tech, sup, "from-internal", "s")
        self.spies[spyer.name] = spyer
        r.newchannel(spyer)
        r.newstate(spyer, 6)
        mode = next((m for flag, m in SPY_MODES.items() if flag and flag in options), "listen")
        r.newexten(spyer, "ChanSpy", req.get("data") or "")
        r.originate_response(req.action_id, True, channel, [("Application", "ChanSpy"), ("Data", req.get("data") or "")],
                             4, spyer.uid)
        r.event("ChanSpyStart", "call,all", [*spyer.snapshot("Spyer"), *legs.talk.one.snapshot("Spyee"),
                                              ("Mode", mode)])

    def act_hangup(self, client: Client, req: Request) -> None:
        spyer = self.spies.pop(req.get("channel") or "", None)
        if spyer is None:
            super().act_hangup(client, req)  # type: ignore[misc]
            return
        self.respond(client, req, "Success", "Channel Hungup")
        self.renderer.now = self.model.now
        self.renderer.event("ChanSpyStop", "call,all", spyer.snapshot("Spyer"))
        self.renderer.hangup(spyer, 16)
