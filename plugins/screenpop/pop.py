"""One pop: every lookup of a call at once, bounded by the deadline, then the payload.

The adapters and the history run concurrently. Whatever has not answered when the
deadline comes is left out (the pop is `partial`, with an error naming it) and keeps running
in the background: an HTTP answer that comes late still fills the adapter's cache for the
call's next pop. A lookup that raises is an error too; the pop always goes out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ctid_plugins.screenpop.adapters.base import Adapter, Lookup
from ctid_plugins.screenpop.history import History

TYPE = "screenpop.pop"


@dataclass
class Found:
    """Everything the lookups of one call gave, merged in the configured adapter order."""

    contact: dict[str, Any] | None = None
    tickets: list[Any] = field(default_factory=list)
    url: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    errors: list[dict[str, str]] = field(default_factory=list)


def describe(exc: BaseException) -> str:
    from ctid_plugins.screenpop.adapters.base import LookupFailed

    return str(exc) if isinstance(exc, LookupFailed) else f"{type(exc).__name__}: {exc}"


class Lookups:
    def __init__(self, adapters: Sequence[tuple[str, Adapter]], history: History | None, deadline: float) -> None:
        self.adapters = list(adapters)
        self.history = history
        self.deadline_ms = round(deadline * 1000)
        self.late: set[asyncio.Future[Any]] = set()  # past their deadline, still running

    async def run(self, number: str | None, variants: list[str], fields: Mapping[str, Any], deadline: float) -> Found:
        """Ask every source; `deadline` is a loop time. Never raises for a source's failure."""
        jobs: dict[asyncio.Future[Any], str] = {}
        for name, adapter in self.adapters:
            if number is not None or not adapter.needs_number:
                jobs[asyncio.ensure_future(adapter.lookup(fields))] = name
        if number is not None and self.history is not None:
            jobs[asyncio.ensure_future(asyncio.to_thread(self.history.last_calls, variants))] = "history"
        found = Found()
        if not jobs:
            return found
        loop = asyncio.get_running_loop()
        done, _ = await asyncio.wait(jobs, timeout=max(0.0, deadline - loop.time()))
        results: dict[str, Any] = {}
        for job, name in jobs.items():
            if job not in done:
                found.errors.append({"source": name, "kind": "deadline",
                                     "error": f"no answer within the {self.deadline_ms} ms deadline"})
                self.late.add(job)
                job.add_done_callback(self._late_done)
            elif (exc := job.exception()) is not None:
                found.errors.append({"source": name, "kind": "failed", "error": describe(exc)})
            else:
                results[name] = job.result()
        found.history = results.pop("history", None) or []
        for name, _ in self.adapters:
            lookup: Lookup | None = results.get(name)
            if lookup is None:
                continue
            if found.contact is None and lookup.contact is not None:
                found.contact = {**lookup.contact, "source": name}  # a copy: the adapter may cache its Lookup
            found.tickets += lookup.tickets
            found.url = found.url or lookup.url
        return found

    def _late_done(self, job: asyncio.Future[Any]) -> None:
        self.late.discard(job)
        if not job.cancelled():
            job.exception()  # retrieved: the failure was already reported as a missed deadline

    def cancel_late(self) -> None:
        for job in list(self.late):
            job.cancel()


def build(event: Mapping[str, Any], phase: str, number: str | None, reason: str | None, region: str | None,
          found: Found, lookup_ms: float) -> dict[str, Any]:
    """The `screenpop.pop` payload (the bus adds the envelope: v, seq, epoch, ts, site, source)."""
    known = reason is None and (found.contact is not None or bool(found.history))
    if reason is None and not known:
        reason = "lookup_failed" if found.errors else "not_found"
    call = {k: event.get(k) for k in ("queue", "called", "direction", "device")}
    call["wait"] = event.get("wait")
    return {
        "type": TYPE,
        "agent": event.get("agent"),
        "call_id": event.get("call_id"),
        "phase": phase,
        "caller": number,
        "caller_raw": event.get("caller"),
        "caller_name": event.get("caller_name"),
        "known": known,
        "reason": reason,
        "contact": found.contact,
        "region": region,
        "history": found.history,
        "tickets": found.tickets,
        "url": found.url,
        "call": call,
        "x": dict(event.get("x") or {}),
        "partial": bool(found.errors),
        "errors": found.errors,
        "lookup_ms": round(lookup_ms, 3),
    }


def customer_type(contact: Mapping[str, Any]) -> str:
    """`vip` or `normal`: the report's customer-type dimension (docs/kpis.md) for a found contact,
    VIP when the contact is flagged so or its level says so."""
    return "vip" if contact.get("vip") or str(contact.get("level") or "").strip().lower() == "vip" else "normal"
