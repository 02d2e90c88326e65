"""Call and agent control as CSTA requests (the CSTA `CallControl`).

| request | CSTA |
|---|---|
| make_call | MakeCall from the agent's station; the new callID is the call's `call_id` |
| answer / hold / retrieve | AnswerCall / HoldCall / RetrieveCall on the agent's connection |
| transfer | SingleStepTransferCall of the agent's connection to `target` |
| consult / transfer_complete / conference | ConsultationCall, then TransferCall / ConferenceCall of the held and the consultation call |
| hangup / force_release | ClearConnection of the agent's / the caller's connection |
| agent_login / logout | SetAgentState loggedOn / loggedOff per ACD group |
| agent_ready / not_ready | SetAgentState ready / notReady (reason code through `reason_codes` reversed) |
| send_dtmf | GenerateDigits on the agent's connection |
| set_data | AssociateData on the caller's connection: the call's data so far as correlatorData (at most 32 octets) |
| monitor | listen / barge: SingleStepConferenceCall of the supervisor's device into the agent's call, silent / active |

A call's current callID and an agent's station come from the mapper. A `CstaError` from the
server is `rejected` (its category and code attached); a link that is down `pbx_unavailable`;
no answer in time `timeout`. What CSTA cannot express is refused before anything is sent,
as `not_supported` saying why: whisper (ECMA-269 has no participation type in which only the
agent hears the supervisor), call data over correlatorData's 32 octets, digits GenerateDigits
cannot send.
"""

from __future__ import annotations

from ctid.drivers import ControlError
from ctid.drivers.csta import requests as rq
from ctid.drivers.csta.link import CstaLink, LinkError
from ctid.drivers.csta.mapper import CstaMapper
from ctid.drivers.csta.protocol import CstaError


class CstaControl:
    def __init__(self, link: CstaLink, mapper: CstaMapper, timeout: float = 4.0) -> None:
        self.link = link
        self.mapper = mapper
        self.timeout = timeout
        self.consulting: dict[str, str] = {}  # call_id -> the consultation's callID
        # call_id -> the data the PBX holds for it: AssociateData replaces the correlator, so each
        # request sends the whole map so far (as the daemon's call.data event carries it).
        self.data: dict[str, dict[str, str]] = {}

    async def _ask(self, req: rq.Request) -> dict:
        if not self.link.connected.is_set():
            raise ControlError("pbx_unavailable", f"{self.link.name}: not connected to the PBX")
        try:
            return await self.link.request(req, self.timeout)
        except CstaError as exc:
            raise ControlError("rejected", f"{req[0]}: {exc.category} {exc.code}") from None
        except LinkError as exc:
            code = "timeout" if "no answer" in str(exc) else "pbx_unavailable"
            raise ControlError(code, str(exc)) from None

    def _station(self, agent: str) -> str:
        for dev, known in self.mapper.agents.by_device.items():
            if known.agent == agent:
                return dev
        if agent in self.mapper.agents.stations:
            return agent
        raise ControlError("no_such_agent", f"no station known for agent {agent!r}")

    def _current(self, call_id: str) -> str:
        call = self.mapper.calls.get(call_id)
        if call is None:
            raise ControlError("no_such_call", f"no live call {call_id!r}")
        return call.current

    async def make_call(self, agent: str, number: str, caller_id: str | None) -> str:
        answer = await self._ask(rq.make_call(self._station(agent), number))
        return str(answer["callingDevice"]["callID"])

    async def answer(self, call_id: str, agent: str) -> None:
        await self._ask(rq.answer_call(self._current(call_id), self._station(agent)))

    async def hold(self, call_id: str, agent: str) -> None:
        await self._ask(rq.hold_call(self._current(call_id), self._station(agent)))

    async def retrieve(self, call_id: str, agent: str) -> None:
        await self._ask(rq.retrieve_call(self._current(call_id), self._station(agent)))

    async def transfer(self, call_id: str, agent: str, target: str) -> None:
        await self._ask(rq.single_step_transfer(self._current(call_id), self._station(agent), target))

    async def consult(self, call_id: str, agent: str, target: str) -> None:
        answer = await self._ask(rq.consultation_call(self._current(call_id), self._station(agent), target))
        self.consulting[call_id] = str(answer["initiatedCall"]["callID"])

    async def _join(self, call_id: str, agent: str, conference: bool) -> None:
        consultation = self.consulting.get(call_id)
        if consultation is None:
            raise ControlError("invalid_state", f"call {call_id!r} has no consultation in progress")
        make = rq.conference_call if conference else rq.transfer_call
        await self._ask(make(self._current(call_id), consultation, self._station(agent)))
        self.consulting.pop(call_id, None)

    async def transfer_complete(self, call_id: str, agent: str) -> None:
        await self._join(call_id, agent, conference=False)

    async def conference(self, call_id: str, agent: str) -> None:
        await self._join(call_id, agent, conference=True)

    async def hangup(self, call_id: str, agent: str) -> None:
        await self._ask(rq.clear_connection(self._current(call_id), self._station(agent)))

    async def force_release(self, call_id: str) -> None:
        call = self.mapper.calls.get(call_id)
        if call is None or not call.caller:
            raise ControlError("no_such_call", f"no live call {call_id!r} with a known caller")
        await self._ask(rq.clear_connection(call.current, call.caller))

    def _agent_call(self, call_id: str, agent: str) -> tuple[str, str]:
        """(the call's current callID, the agent's station) when the agent is on the call."""
        station = self._station(agent)
        call = self.mapper.calls.get(call_id)
        if call is None:
            raise ControlError("no_such_call", f"no live call {call_id!r}")
        if call.agent != agent and call.device != station:
            raise ControlError("invalid_state", f"agent {agent!r} is not on call {call_id!r}")
        return call.current, station

    async def send_dtmf(self, call_id: str, agent: str, digits: str) -> None:
        current, station = self._agent_call(call_id, agent)
        try:
            req = rq.generate_digits(current, station, digits.upper())
        except ValueError as exc:
            raise ControlError("bad_request", f"GenerateDigits: {exc}; nothing sent") from None
        await self._ask(req)

    async def set_data(self, call_id: str, data: dict[str, str]) -> None:
        call = self.mapper.calls.get(call_id)
        if call is None:
            raise ControlError("no_such_call", f"no live call {call_id!r}")
        party = call.caller or call.device
        if not party:
            raise ControlError("invalid_state", f"call {call_id!r} has no known connection yet")
        for gone in [c for c in self.data if c not in self.mapper.calls]:
            del self.data[gone]  # calls that ended since: their data went with them
        merged = {**self.data.get(call_id, {}), **data}
        try:
            req = rq.associate_data(call.current, party, merged)
        except ValueError as exc:
            raise ControlError("not_supported", f"AssociateData: {exc}; nothing sent, nothing kept") from None
        await self._ask(req)
        self.data[call_id] = merged

    async def monitor(self, supervisor_device: str, agent: str, mode: str) -> None:
        if mode not in rq.PARTICIPATION:
            raise ControlError("not_supported", f"CSTA has no {mode}: ECMA-269 SingleStepConferenceCall joins a "
                                                "device silent (listen) or active (barge), never heard by the agent "
                                                "alone")
        station = self._station(agent)
        call = next((c for c in self.mapper.calls.values()
                     if not c.consult and (c.agent == agent or c.device == station)), None)
        if call is None:
            raise ControlError("invalid_state", f"agent {agent!r} is not on a call")
        await self._ask(rq.single_step_conference(call.current, station, supervisor_device, mode))

    async def agent_login(self, agent: str, queues: list[str], device: str | None, name: str | None) -> None:
        station = device or self._station(agent)
        for queue in queues:
            await self._ask(rq.set_agent_state(station, "loggedOn", agent, queue))

    async def agent_logout(self, agent: str, queues: list[str]) -> None:
        station = self._station(agent)
        for queue in queues:
            await self._ask(rq.set_agent_state(station, "loggedOff", agent, queue))

    async def agent_ready(self, agent: str, queue: str | None) -> None:
        await self._ask(rq.set_agent_state(self._station(agent), "ready", agent, queue))

    async def agent_not_ready(self, agent: str, reason: str, queue: str | None) -> None:
        codes = {name: code for code, name in self.mapper.agents.reason_codes.items()}
        await self._ask(rq.set_agent_state(self._station(agent), "notReady", agent, queue, codes.get(reason, reason)))
