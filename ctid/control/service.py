"""The control service: call, agent and supervisor requests from the bus to the drivers.

For each request: check it (`ops.OPS`), find the driver that owns its call or agent
(the `source` of the call or agent in the live state, or the only driver), answer a
retried `request_id` from `RecentRequests`, call the driver's `CallControl` method
under a timeout, and turn every failure into a clear error reply with a code.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

from ctid.bus import RequestError, current_client
from ctid.control.ops import OPS, Op
from ctid.control.recent import RecentRequests
from ctid.drivers import ControlError, Driver
from ctid.metrics import Counters
from ctid.state import State

log = logging.getLogger("ctid.control")

RegisterOp = Callable[[str, Callable[[dict[str, Any]], Any], str], None]
RETRY = "it may still act, so retry with the same request_id"
DEFAULT_TIMEOUT = 5.0  # seconds; below the bus's own 10 s so the client gets the precise error


class ControlService:
    def __init__(self, drivers: list[Driver], state: State, counters: Counters, *, timeout: float = DEFAULT_TIMEOUT,
                 window: float = 60.0) -> None:
        self.drivers = {d.name: d for d in drivers}
        self.state = state
        self.counters = counters
        self.timeout = timeout
        self.recent = RecentRequests(window)
        self.observers: list[Callable[[dict[str, Any], str, dict[str, Any]], None]] = []

    def register(self, register_op: RegisterOp) -> None:
        """Add every control op to the bus."""
        for op in OPS:
            register_op(op.name, self._handler(op), op.doc)

    def _handler(self, op: Op) -> Callable[[dict[str, Any]], Any]:
        def handle(request: dict[str, Any]) -> Any:
            return self.handle(op, request)

        return handle

    async def handle(self, op: Op, request: dict[str, Any]) -> Any:
        """Serve one request; the reply's result, or RequestError with its code."""
        self.counters.inc("control.requests")
        who = current_client.get()
        scope = who.key or "" if who is not None else ""  # request ids are per client key
        try:
            params = op.check(request)  # a malformed request never reaches idempotency or the PBX
            request_id = request.get("request_id")
            if request_id is not None and (not isinstance(request_id, str) or not 0 < len(request_id) <= 128):
                raise RequestError("bad_request", "'request_id' must be a string of 1 to 128 characters")
            if request_id is None:
                result = await self._execute(op, params, request)
            else:
                earlier = self.recent.seen(scope, request_id)
                if earlier is not None:
                    self.counters.inc("control.replayed")
                    if earlier[0] != op.name:
                        raise RequestError("bad_request", f"request_id {request_id!r} was already used for {earlier[0]}")
                    future = earlier[1]
                else:
                    future = self.recent.run(scope, request_id, op.name, lambda: self._execute(op, params, request))
                result = await asyncio.shield(future)  # a client giving up must not cancel the PBX action
        except RequestError as exc:
            self.counters.inc(f"control.errors.{exc.code}")
            self._tell(request, "error", {"code": exc.code, "message": exc.message})
            raise
        self._tell(request, "ok", {"result": result})
        return result

    def _tell(self, request: dict[str, Any], outcome: str, detail: dict[str, Any]) -> None:
        for observer in self.observers:
            try:
                observer(request, outcome, detail)
            except Exception:  # an observer (the audit) must not change the reply
                log.exception("control observer failed")

    async def _execute(self, op: Op, params: dict[str, Any], request: dict[str, Any]) -> Any:
        driver = self._driver_for(op, params, request.get("source"))
        method_name, kwargs = op.bind(params)
        control = getattr(driver, "control", None)
        method = getattr(control, method_name, None) if control is not None else None
        if method is None:
            raise RequestError("not_supported", f"{op.name}: driver {driver.name!r} ({getattr(driver, 'kind', '?')}) "
                                                 "cannot do this")
        try:
            result = await asyncio.wait_for(method(**kwargs), self.timeout)
        except ControlError as exc:
            log.info("control request refused", extra={"ctx": {"op": op.name, "code": exc.code, "reason": exc.message}})
            advice = f"; {RETRY}" if exc.code == "timeout" else ""
            raise RequestError(exc.code, f"{op.name}: {exc.message}{advice}") from None
        except asyncio.TimeoutError:
            raise RequestError("timeout", f"{op.name}: the PBX did not answer within {self.timeout:g}s; {RETRY}") from None
        if op.name == "call.make":
            return {"call_id": result}
        return {}

    def _driver_for(self, op: Op, params: dict[str, Any], source: Any) -> Driver:
        if source is not None:
            driver = self.drivers.get(source) if isinstance(source, str) else None
            if driver is None:
                raise RequestError("bad_request", f"no driver named {source!r} (drivers: {', '.join(self.drivers)})")
            return driver
        owner = None
        if op.target == "call":
            call = self.state.calls.get(params["call_id"])
            if call is None:
                raise RequestError("no_such_call", f"{op.name}: no live call {params['call_id']!r}")
            owner = call.source
        else:
            agent = self.state.agents.get(params["agent"])
            owner = agent.source if agent is not None else None
        if owner in self.drivers:
            return self.drivers[owner]
        if len(self.drivers) == 1:
            return next(iter(self.drivers.values()))
        if not self.drivers:
            raise RequestError("not_supported", f"{op.name}: no PBX driver is configured")
        raise RequestError("bad_request", f"{op.name}: several drivers; say which with 'source' "
                                          f"({', '.join(self.drivers)})")
