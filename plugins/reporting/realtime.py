"""`queue.stats`: every N seconds, one event per queue with what a wallboard shows.

Live figures (waiting, longest wait, agents by state) come from the daemon's state
(`ctx.snapshot()`); today's figures (offered, answered, abandoned, service level, ASA) come
from the store through the same KPI engine as `ctid report`, for the calls offered since local
midnight that have finished, so the wallboard and the reports never disagree on a definition.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from typing import TYPE_CHECKING, Any, Awaitable, Callable, Iterable, Mapping

from sqlalchemy import Engine

from ctid_plugins.reporting.config import Options
from ctid_plugins.reporting.report import build

if TYPE_CHECKING:
    from ctid.plugins import PluginContext

AGENT_STATES = ("ready", "busy", "acw", "not_ready")
TODAY = ("offered", "answered", "abandoned", "service_level", "asa")


def agents_by_queue(agents: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Logged-in agents per queue and state; an agent paused in a queue is not ready there."""
    out: dict[str, dict[str, int]] = {}
    for agent in agents:
        if agent.get("state") == "logged_off":
            continue
        for queue, paused in (agent.get("queues") or {}).items():
            state = "not_ready" if paused else agent.get("state", "ready")
            counts = out.setdefault(queue, dict.fromkeys(AGENT_STATES, 0))
            counts[state if state in counts else "ready"] += 1
    return out


def midnight(now: float, options: Options) -> float:
    local = datetime.fromtimestamp(now, options.zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def today_by_queue(engine: Engine, options: Options, now: float) -> dict[str, dict[str, Any]]:
    """Today's figures per queue from the finished calls (docs/kpis.md definitions)."""
    report = build(engine, midnight(now, options), now + 1, ["queue"], options, now=now + 1)
    return {r.labels[0]: {k: r.kpis[k] for k in TODAY} for r in report.rows if r.labels[0] != "(none)"}


def queue_stats(snapshot: Mapping[str, Any], today: Mapping[str, Mapping[str, Any]], now: float,
                queues: Iterable[str] = ()) -> list[dict[str, Any]]:
    """One `queue.stats` event body per queue the state, the store or the config knows."""
    live = {q["queue"]: q for q in snapshot.get("queues", [])}
    agents = agents_by_queue(snapshot.get("agents", []))
    names = sorted(set(live) | set(today) | set(agents) | set(queues))
    events = []
    for name in names:
        q = live.get(name, {})
        day = today.get(name) or {"offered": 0, "answered": 0, "abandoned": 0, "service_level": None, "asa": None}
        events.append({
            "type": "queue.stats", "ts": now, "queue": name,
            "waiting": q.get("waiting", 0), "longest_wait": q.get("longest_wait", 0.0),
            "agents": agents.get(name, dict.fromkeys(AGENT_STATES, 0)),
            **{k: day[k] for k in TODAY},
        })
    return events


class Publisher:
    """The periodic task: compute, publish on the bus, hand to the wallboard."""

    def __init__(self, ctx: PluginContext, engine: Engine, options: Options, queues: Iterable[str],
                 listeners: Iterable[Callable[[list[dict[str, Any]]], Awaitable[None] | None]] = ()) -> None:
        self.ctx, self.engine, self.options = ctx, engine, options
        self.queues = tuple(queues)
        self.listeners = list(listeners)
        self.task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.task = asyncio.get_running_loop().create_task(self._run(), name="reporting.queue_stats")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)

    async def tick(self) -> list[dict[str, Any]]:
        now = time.time()
        snapshot = self.ctx.snapshot()
        today = await asyncio.to_thread(today_by_queue, self.engine, self.options, now)
        events = queue_stats(snapshot, today, now, self.queues)
        for event in events:
            self.ctx.publish(dict(event))  # a copy: the bus stamps its envelope into what it gets
        for listener in self.listeners:
            result = listener(events)
            if result is not None:
                await result
        return events

    async def _run(self) -> None:
        while True:
            try:
                await self.tick()
                self.ctx.count("stats_published")
            except asyncio.CancelledError:
                raise
            except Exception:  # a database hiccup: log, count, try again next tick
                self.ctx.count("stats_failures")
                self.ctx.log.exception("queue.stats failed")
            await asyncio.sleep(self.options.stats_interval)
