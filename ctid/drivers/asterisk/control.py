"""Call, agent and supervisor control as AMI actions (the Asterisk `CallControl`).

Which action does what:

| request | AMI |
|---|---|
| make_call | `Originate` of the agent's member device into `outbound_context`, with `ChannelId` = the new call_id |
| answer, retrieve / hold | `PJSIPNotify` `Event: talk` / `Event: hold` to the agent's phone (BroadSoft remote control, which most desk phones honour) |
| transfer | `BlindTransfer` of the agent's channel to `target@transfer_context` |
| consult / transfer_complete | `Atxfer` to `target@transfer_context`, then `Hangup` of the agent's channel (Asterisk completes an attended transfer when the transferer leaves) |
| hangup / force_release | `Hangup` of the agent's channel / of the caller's channel |
| send_dtmf | `PlayDTMF` on the far party's channel, one digit per action |
| set_data | `Setvar` `__CTI_<key>` on the caller's channel (`__`: inherited by the channels it makes) |
| agent_login / logout | `QueueAdd` / `QueueRemove` per queue |
| agent_ready / not_ready | `QueuePause` `Paused: false` / `true` with `Reason` |
| monitor | `Originate` of the supervisor's device into `ChanSpy(<agent device>,qE[w|B])` |

`conference` is not here: Asterisk has no AMI action for a three-way join (its `atxferthreeway`
is a DTMF feature of the transferer's phone), so the control service answers `not_supported`.
Channels come from the mapper, which knows every live call's channels and every member.
"""

from __future__ import annotations

import itertools
import os
import time
from typing import Any

from ctid.drivers import ControlError
from ctid.drivers.asterisk.link import ActionError, ActionTimeout, AmiLink, LinkDown
from ctid.drivers.asterisk.mapper import AsteriskMapper
from ctid.drivers.asterisk.members import Member, interface_device

SPY_OPTIONS = {"listen": "qE", "whisper": "qEw", "barge": "qEB"}


class AsteriskControl:
    def __init__(self, link: AmiLink, mapper: AsteriskMapper, *, endpoint: str = "{agent}",
                 agent_interface: str = "Local/{agent}@agents/n", spy_device: str = "PJSIP/{agent}",
                 outbound_context: str = "outbound", transfer_context: str = "xfer",
                 outbound_callerid: str | None = None, timeout: float = 4.0) -> None:
        self.link = link
        self.mapper = mapper
        self.endpoint = endpoint
        self.agent_interface = agent_interface
        self.spy_device = spy_device
        self.outbound_context = outbound_context
        self.transfer_context = transfer_context
        self.outbound_callerid = outbound_callerid
        self.timeout = timeout
        # Call ids this driver makes: unique across daemon runs and sites sharing one PBX.
        self._ids = itertools.count(1)
        self._prefix = f"ctid{int(time.time()):x}{os.getpid() & 0xFFFF:04x}"

    # -- plumbing --------------------------------------------------------------------------

    async def _act(self, name: str, fields: dict[str, Any]) -> dict[str, str]:
        if not self.link.connected.is_set():
            raise ControlError("pbx_unavailable", f"{self.link.name}: not connected to the PBX")
        try:
            return await self.link.action(name, fields, self.timeout)
        except ActionError as exc:
            code = "timeout" if isinstance(exc, ActionTimeout) else \
                "pbx_unavailable" if isinstance(exc, LinkDown) else "rejected"
            text = str(exc)
            raise ControlError(code, text if text.startswith(name) else f"{name}: {text}") from None

    def _member(self, agent: str) -> Member:
        for member in self.mapper.members.by_device.values():
            if member.agent == agent:
                return member
        raise ControlError("no_such_agent", f"agent {agent!r} is not a member of any queue")

    def _busy(self, agent: str) -> str | None:
        """A live call one of the agent's channels is in, if any."""
        names = self.mapper.chan_name
        for call in self.mapper.calls.values():
            for uid in call.channels:
                member = self.mapper.members.find(names.get(uid))
                if member is not None and member.agent == agent:
                    return call.call_id
        return None

    def _channels(self, call_id: str) -> list[str]:
        call = self.mapper.calls.get(call_id)
        if call is None:
            raise ControlError("no_such_call", f"no live call {call_id!r} on {self.link.name}")
        names = self.mapper.chan_name
        return sorted(names[uid] for uid in call.channels if uid in names)

    def _agent_channel(self, call_id: str, agent: str) -> str:
        """The agent's channel in the call: for a Local member its `;1`, the half in the customer's bridge."""
        mine = [c for c in self._channels(call_id) if (m := self.mapper.members.find(c)) is not None and m.agent == agent]
        if not mine:
            raise ControlError("invalid_state", f"agent {agent!r} is not on call {call_id!r}")
        return next((c for c in mine if not c.endswith(";2")), mine[0])

    def _party_channel(self, call_id: str) -> str:
        """The customer's (or the dialled party's) channel: the one that is not an agent's."""
        others = [c for c in self._channels(call_id) if not self.mapper.members.is_agent_channel(c)]
        if not others:
            raise ControlError("invalid_state", f"call {call_id!r} has no party but agents")
        return next((c for c in others if not c.startswith("Local/")), others[0])

    async def _notify(self, call_id: str, agent: str, event: str) -> None:
        self._agent_channel(call_id, agent)  # the agent must be on this call, whatever the phone does
        await self._act("PJSIPNotify", {"Endpoint": self.endpoint.format(agent=agent), "Variable": f"Event={event}"})

    # -- calls -------------------------------------------------------------------------------

    async def make_call(self, agent: str, number: str, caller_id: str | None) -> str:
        device = interface_device(self._member(agent).interface)
        busy = self._busy(agent)
        if busy is not None:  # the PBX would accept the Originate and fail it later, out of sight
            raise ControlError("invalid_state", f"agent {agent!r} is on call {busy!r}")
        call_id = f"{self._prefix}.{next(self._ids)}"
        fields: dict[str, Any] = {"Channel": device, "Context": self.outbound_context, "Exten": number,
                                  "Priority": 1, "Async": "true", "ChannelId": call_id,
                                  "OtherChannelId": call_id + ".2", "Timeout": 30000}
        callerid = caller_id or self.outbound_callerid
        if callerid:
            fields["CallerID"] = callerid
        await self._act("Originate", fields)
        return call_id  # the first channel's Uniqueid, hence its Linkedid: the call_id of its events

    async def answer(self, call_id: str, agent: str) -> None:
        await self._notify(call_id, agent, "talk")

    async def hold(self, call_id: str, agent: str) -> None:
        await self._notify(call_id, agent, "hold")

    async def retrieve(self, call_id: str, agent: str) -> None:
        await self._notify(call_id, agent, "talk")

    async def transfer(self, call_id: str, agent: str, target: str) -> None:
        await self._act("BlindTransfer", {"Channel": self._agent_channel(call_id, agent),
                                          "Context": self.transfer_context, "Exten": target})

    async def consult(self, call_id: str, agent: str, target: str) -> None:
        await self._act("Atxfer", {"Channel": self._agent_channel(call_id, agent),
                                   "Context": self.transfer_context, "Exten": target})

    async def transfer_complete(self, call_id: str, agent: str) -> None:
        await self._act("Hangup", {"Channel": self._agent_channel(call_id, agent), "Cause": 16})

    async def hangup(self, call_id: str, agent: str) -> None:
        await self._act("Hangup", {"Channel": self._agent_channel(call_id, agent), "Cause": 16})

    async def force_release(self, call_id: str) -> None:
        await self._act("Hangup", {"Channel": self._party_channel(call_id), "Cause": 16})

    async def send_dtmf(self, call_id: str, agent: str, digits: str) -> None:
        self._agent_channel(call_id, agent)
        channel = self._party_channel(call_id)
        for digit in digits:
            await self._act("PlayDTMF", {"Channel": channel, "Digit": digit, "Duration": 100})

    async def set_data(self, call_id: str, data: dict[str, str]) -> None:
        channel = self._party_channel(call_id)
        for key, value in data.items():
            await self._act("Setvar", {"Channel": channel, "Variable": f"__CTI_{key}", "Value": value})

    # -- agents ------------------------------------------------------------------------------

    async def agent_login(self, agent: str, queues: list[str], device: str | None, name: str | None) -> None:
        interface = device or self.agent_interface.format(agent=agent)
        done: list[str] = []
        for queue in queues:
            try:
                await self._act("QueueAdd", {"Queue": queue, "Interface": interface, "MemberName": name or agent,
                                             "Paused": "false"})
            except ControlError as exc:
                raise ControlError(exc.code, f"{exc.message} (queue {queue}; joined so far: {', '.join(done) or 'none'})") from None
            done.append(queue)

    async def agent_logout(self, agent: str, queues: list[str] | None) -> None:
        member = self._member(agent)
        for queue in queues if queues is not None else sorted(member.paused):
            await self._act("QueueRemove", {"Queue": queue, "Interface": member.interface})

    async def agent_ready(self, agent: str, queue: str | None) -> None:
        await self._pause(agent, False, queue, None)

    async def agent_not_ready(self, agent: str, reason: str, queue: str | None) -> None:
        await self._pause(agent, True, queue, reason)

    async def _pause(self, agent: str, paused: bool, queue: str | None, reason: str | None) -> None:
        fields: dict[str, Any] = {"Interface": self._member(agent).interface, "Paused": "true" if paused else "false"}
        if queue:
            fields["Queue"] = queue
        if reason:
            fields["Reason"] = reason
        await self._act("QueuePause", fields)

    # -- supervisors -------------------------------------------------------------------------

    async def monitor(self, supervisor_device: str, agent: str, mode: str) -> None:
        self._member(agent)
        if self._busy(agent) is None:
            raise ControlError("invalid_state", f"agent {agent!r} is not on a call")
        target = self.spy_device.format(agent=agent)
        await self._act("Originate", {"Channel": supervisor_device, "Application": "ChanSpy",
                                      "Data": f"{target},{SPY_OPTIONS[mode]}", "Async": "true", "Timeout": 30000})
