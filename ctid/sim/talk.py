"""What an answered call does until its agent is free: hold, a recording stopped, a blind
transfer to another queue, a consultation and attended transfer, the end of the talk.

A mixin of `ctid.sim.traffic.CallCenter` (as `control.py` is); it uses the engine's clock,
random source and helpers. `_plan_talk` runs when a queue call is answered: it draws what the
talk will do (`Behaviour`) and schedules those steps. Each step carries the call's phase and
does nothing if the call has moved on since (hung up, transferred or redirected on request).
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Callable

from ctid.sim.model import Agent, Behaviour, Call, Queue


class Talk:
    """The steps of answered queue calls, mixed into `CallCenter`."""

    # provided by CallCenter
    rng: random.Random
    b: Behaviour
    now: float
    queues: dict[str, Queue]

    if TYPE_CHECKING:
        def _at(self, delay: float, step: Callable[..., None], *args: Any) -> None: ...
        def _emit(self, kind: str, call: Call | None = None, agent: Agent | None = None,
                  queue: str | None = None, **info: Any) -> None: ...
        def _drop(self, call: Call) -> None: ...
        def _enter_queue(self, call: Call) -> None: ...
        def _complete(self, call: Call, by: str, kind: str = "end", late: bool = False, **extra: Any) -> Agent: ...

    def _plan_talk(self, call: Call) -> None:
        b, r, phase, talk = self.b, self.rng, call.phase, call.talk
        others = [n for n in self.queues if n != call.queue]
        x = r.random()
        if x < b.blind_transfer and others:
            self._at(talk * r.uniform(0.3, 0.8), self._blind, call, phase, r.choice(others))
            return
        if x < b.blind_transfer + b.attended_transfer:
            self._at(talk * r.uniform(0.3, 0.8), self._consult, call, phase)
            return
        end = talk
        if r.random() < b.hold:
            start, length = talk * r.uniform(0.2, 0.6), r.uniform(b.hold_min, b.hold_max)
            self._at(start, self._hold, call, phase, True)
            self._at(start + length, self._hold, call, phase, False)
            end += length
        if r.random() < b.record_stop:
            self._at(talk * r.uniform(0.1, 0.9), self._record_stop, call, phase)
        by = "caller" if r.random() < b.caller_hangup else "agent"
        late = by == "agent" and r.random() < b.late_complete
        self._at(end, self._finish, call, phase, by, late)

    def _live(self, call: Call, phase: int, *states: str) -> bool:
        return call.phase == phase and call.state in states

    def _hold(self, call: Call, phase: int, on: bool) -> None:
        if self._live(call, phase, "talking") and call.held != on:
            call.held = on
            self._emit("hold" if on else "unhold", call, call.agent, call.queue)

    def _record_stop(self, call: Call, phase: int) -> None:
        if self._live(call, phase, "talking") and call.recording:
            call.recording = False
            self._emit("record_stop", call, call.agent, call.queue)

    def _finish(self, call: Call, phase: int, by: str, late: bool = False) -> None:
        if self._live(call, phase, "talking"):
            self._complete(call, by, late=late)

    def _blind(self, call: Call, phase: int, target: str) -> None:
        if not self._live(call, phase, "talking") or call.held:
            return
        self._complete(call, "transfer", kind="blind_transfer", target=target)
        call.queue = target
        self._enter_queue(call)

    def _consult(self, call: Call, phase: int) -> None:
        if not self._live(call, phase, "talking") or call.held:
            return
        call.state = "consult"
        call.held = True
        call.target = self.b.consult_target
        self._emit("consult", call, call.agent, call.queue, target=call.target)
        answer = self.rng.uniform(2.0, 4.0)
        self._at(answer, self._consult_answer, call, phase)
        self._at(answer + self.rng.uniform(3.0, 8.0), self._transfer_done, call, phase)

    def _consult_answer(self, call: Call, phase: int) -> None:
        if self._live(call, phase, "consult"):
            self._emit("consult_answer", call, call.agent, call.queue, target=call.target)

    def _transfer_done(self, call: Call, phase: int) -> None:
        if not self._live(call, phase, "consult"):
            return
        call.held = False
        call.state = "transferred"
        self._complete(call, "transfer", kind="attended_transfer", target=call.target)
        self._at(self.rng.uniform(10.0, 60.0), self._target_done, call, call.phase)

    def _target_done(self, call: Call, phase: int) -> None:
        if self._live(call, phase, "transferred"):
            self._drop(call)
            self._emit("end", call, None, call.queue, by="target", talk=self.now - call.t_connect, wait=call.wait)
