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

A call's current callID and an agent's station come from the mapper. A `CstaError` from the
server is `rejected` (its category and code attached); a link that is down `pbx_unavailable`;
no answer in time `timeout`. send_dtmf, set_data and monitor are not here: the control
service answers `not_supported`.
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
