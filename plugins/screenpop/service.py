"""The running screen pop: wiring at startup, one task per pop, order kept per call.

`ctid_event` only hands the event to `submit()`, which starts the pop as a task and returns:
the plugin's queue keeps moving at 200 calls/s even when every pop waits the full deadline
for a dead CRM. Each pop is bounded by the deadline itself. The "answered" pop of a call
waits for its "ringing" pop (bounded by its own deadline), so a desktop never gets them
in the wrong order.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from ctid.plugins import PluginContext
from ctid.store.engine import make_engine

from ctid_plugins.screenpop import adapters as registry
from ctid_plugins.screenpop.adapters.base import Adapter, AdapterEnv
from ctid_plugins.screenpop.config import Options
from ctid_plugins.screenpop.contacts.store import ContactStore
from ctid_plugins.screenpop.history import History
from ctid_plugins.screenpop.numbers import WITHHELD, normalize, variants
from ctid_plugins.screenpop.pop import Lookups, build, customer_type
from ctid_plugins.screenpop.regions import RegionTable, sample_path

PHASES = {"call.delivered": "ringing", "call.established": "answered"}
LOG_EVERY = 10.0  # seconds between two log lines about the same failing source


class Service:
    def __init__(self, ctx: PluginContext, options: Options) -> None:
        self.ctx = ctx
        self.options = options
        self.engine = make_engine(ctx.database_url)
        self.contacts = ContactStore(self.engine, options.plan)
        self.history = History(self.engine, options.history) if options.history > 0 else None
        self.regions = RegionTable({})
        self.adapters: list[tuple[str, Adapter]] = []
        self.lookups = Lookups([], self.history, options.deadline)
        self.tasks: set[asyncio.Task[None]] = set()
        self._last_pop: dict[str, asyncio.Task[None]] = {}  # call_id -> its latest pop
        self._logged: dict[str, tuple[float, int]] = {}  # source -> (last logged, suppressed since)

    @classmethod
    async def start(cls, ctx: PluginContext) -> Service:
        self = cls(ctx, Options.parse(ctx.options))
        await asyncio.to_thread(self.contacts.create_tables)
        self.regions = await asyncio.to_thread(self._load_regions)
        for name in self.options.adapters:
            env = AdapterEnv(name=name, engine=self.engine, plan=self.options.plan, log=ctx.log, count=ctx.count)
            adapter = registry.load(name)(self.options.adapter_options.get(name, {}), env)
            await adapter.start()
            self.adapters.append((name, adapter))
        self.lookups = Lookups(self.adapters, self.history, self.options.deadline)
        if self.history is not None and self.options.history_index:
            # Can take a while on a big cdr table: never inside the startup timeout.
            self._track(asyncio.ensure_future(self._ensure_index()))
        ctx.log.info("screen pop ready", extra={"ctx": {"adapters": ",".join(self.options.adapters),
                                                         "deadline": self.options.deadline, "regions": len(self.regions)}})
        return self

    def _load_regions(self) -> RegionTable:
        path = self.options.regions
        if path == "":
            return RegionTable({})
        table, problems = RegionTable.load(Path(path) if path else sample_path())
        for problem in problems:
            self.ctx.log.warning("bad row in the region table, skipped", extra={"ctx": {"file": path, "problem": problem}})
        return table

    async def _ensure_index(self) -> None:
        try:
            await asyncio.to_thread(self.history.ensure_index, self.ctx.log)  # type: ignore[union-attr]
        except Exception as exc:  # the history still works, only slower
            self.ctx.log.warning("could not create the cdr caller index", extra={"ctx": {"error": repr(exc)}})

    def _track(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        # A pop runs outside the host's call (so that it is bounded by the deadline, not by the
        # plugin's queue): its bugs are logged and counted here, as the host would.
        self.tasks.discard(task)
        if not task.cancelled() and (exc := task.exception()) is not None:
            self.ctx.count("pop_failures")
            self.ctx.log.error("screen pop failed", exc_info=exc, extra={"ctx": {"error": repr(exc)}})

    # -- the event path --------------------------------------------------------------------

    def submit(self, event: dict[str, Any]) -> None:
        """Start the pop of a call.delivered / call.established; never waits."""
        phase = PHASES.get(event.get("type", ""))
        if phase is None or (phase == "answered" and not self.options.on_answer):
            return
        if not event.get("agent"):
            self.ctx.count("skipped_no_agent")
            return
        direction = event.get("direction")
        if direction is not None and direction not in self.options.directions:
            self.ctx.count("skipped_direction")
            return
        call_id = str(event.get("call_id"))
        previous = self._last_pop.get(call_id)
        task = asyncio.ensure_future(self._pop(event, phase, previous, asyncio.get_running_loop().time()))
        self._last_pop[call_id] = task
        task.add_done_callback(lambda t: self._last_pop.pop(call_id) if self._last_pop.get(call_id) is t else None)
        self._track(task)

    async def _pop(self, event: dict[str, Any], phase: str, previous: asyncio.Task[None] | None, t0: float) -> None:
        loop = asyncio.get_running_loop()
        deadline = t0 + self.options.deadline
        raw = event.get("caller")
        number: str | None
        reason: str | None
        if (event.get("x") or {}).get("withheld"):
            number, reason = None, WITHHELD
        else:
            number, reason = normalize(raw, self.options.plan)
        fields = {"caller": number or "", "caller_raw": raw or "", "caller_name": event.get("caller_name") or "",
                  "called": event.get("called") or "", "queue": event.get("queue") or "", "agent": event["agent"],
                  "call_id": event.get("call_id") or "", "site": self.ctx.site, "phase": phase}
        found = await self.lookups.run(number, variants(number, raw) if number else [], fields, deadline)
        if previous is not None and not previous.done():
            await asyncio.wait({previous}, timeout=max(0.0, deadline - loop.time()))
        pop = build(event, phase, number, reason, self.regions.lookup(number), found, (loop.time() - t0) * 1000)
        self.ctx.publish(pop)
        self.ctx.count("pops")
        if found.contact is not None and "customer_type" not in (event.get("data") or {}):
            # the call's customer type as call data: the daemon keeps it with the call and the
            # CDR stores it (x.data.customer_type), which the reports group by
            self.ctx.publish({"type": "call.data", "call_id": event.get("call_id"), "queue": event.get("queue"),
                              "agent": event.get("agent"), "data": {"customer_type": customer_type(found.contact)}})
            self.ctx.count("customer_types")
        if reason is not None and number is None:
            self.ctx.count(f"no_lookup_{reason}")
        for error in found.errors:
            self.ctx.count(f"{'deadline_missed' if error['kind'] == 'deadline' else 'lookup_errors'}.{error['source']}")
            self._log_failure(event, phase, error)
        if found.errors:
            self.ctx.count("partial")

    def _log_failure(self, event: dict[str, Any], phase: str, error: dict[str, str]) -> None:
        """Log a failing source at most every LOG_EVERY seconds (a dead CRM fails every call)."""
        now = time.monotonic()
        source = error["source"]
        last, suppressed = self._logged.get(source, (0.0, 0))
        if now - last < LOG_EVERY:
            self._logged[source] = (last, suppressed + 1)
            return
        self._logged[source] = (now, 0)
        self.ctx.log.warning("screen pop lookup failed; the pop went out partial", extra={"ctx": {
            "source": source, "error": error["error"], "call_id": event.get("call_id"), "agent": event.get("agent"),
            "phase": phase, "suppressed_since_last": suppressed}})

    # -- shutdown --------------------------------------------------------------------------

    async def close(self) -> None:
        if self.tasks:  # pops in flight finish (each is bounded by the deadline)
            _, pending = await asyncio.wait(set(self.tasks), timeout=self.options.deadline + 0.5)
            for task in pending:
                task.cancel()
        self.lookups.cancel_late()
        for name, adapter in self.adapters:
            try:
                await adapter.close()
            except Exception as exc:
                self.ctx.log.warning("adapter did not close cleanly", extra={"ctx": {"adapter": name, "error": repr(exc)}})
        await asyncio.to_thread(self.engine.dispose)
