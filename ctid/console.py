"""A live console view of a site, built only from the bus (as any client would).

It subscribes to `call.` events for a rolling service level and a ticker, and
polls `{"op": "snapshot"}` once a second for queue and agent counts.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, TextIO

import msgpack
import zmq
import zmq.asyncio

SPINNER = "|/-\\"


@dataclass
class RollingSL:
    """Service level over a sliding window: answered within `threshold` s / (answered + abandoned)."""

    threshold: float = 20.0
    window: float = 900.0
    outcomes: dict[str, deque] = field(default_factory=dict)  # queue -> (ts, in_sl)

    def add(self, event: dict[str, Any]) -> None:
        queue = event.get("queue")
        if not queue:
            return
        if event["type"] == "call.established" and event.get("wait") is not None:
            self.outcomes.setdefault(queue, deque()).append((event["ts"], event["wait"] <= self.threshold))
        elif event["type"] == "call.abandoned":
            self.outcomes.setdefault(queue, deque()).append((event["ts"], False))

    def value(self, queue: str, now: float) -> float | None:
        items = self.outcomes.get(queue)
        if not items:
            return None
        while items and items[0][0] < now - self.window:
            items.popleft()
        return 100.0 * sum(ok for _, ok in items) / len(items) if items else None


def _mmss(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


def agent_counts(agents: list[dict[str, Any]], queue: str) -> dict[str, int]:
    counts = {"ready": 0, "busy": 0, "acw": 0, "not_ready": 0}
    for agent in agents:
        if queue not in agent["queues"]:
            continue
        state = agent["state"]
        if state in ("busy", "acw"):
            counts[state] += 1
        elif agent["queues"][queue]:
            counts["not_ready"] += 1
        elif state == "ready":
            counts["ready"] += 1
    return counts


def render(snapshot: dict[str, Any], sl: RollingSL, ticker: deque, elapsed: float, duration: float | None,
           events: int, tick: int) -> str:
    now = time.time()
    total = f" / {_mmss(duration)}" if duration else ""
    bar = ""
    if duration:
        done = min(1.0, elapsed / duration)
        bar = " [" + "#" * int(done * 20) + "." * (20 - int(done * 20)) + "]"
    lines = [
        f"ctid demo {SPINNER[tick % len(SPINNER)]} {_mmss(elapsed)}{total}{bar}   events {events}   seq {snapshot.get('seq', 0)}",
        "",
        f"{'queue':<10}{'waiting':>8}{'longest':>9}{'ready':>7}{'busy':>6}{'acw':>5}{'paused':>8}"
        f"{'offered':>9}{'answered':>9}{'abandoned':>10}{'SL 20s':>8}",
    ]
    for q in sorted(snapshot.get("queues", []), key=lambda q: q["queue"]):
        c = agent_counts(snapshot.get("agents", []), q["queue"])
        value = sl.value(q["queue"], now)
        lines.append(
            f"{q['queue']:<10}{q['waiting']:>8}{_mmss(q['longest_wait']):>9}{c['ready']:>7}{c['busy']:>6}{c['acw']:>5}"
            f"{c['not_ready']:>8}{q['offered']:>9}{q['answered']:>9}{q['abandoned']:>10}"
            f"{(f'{value:.1f}%' if value is not None else '-'):>8}"
        )
    lines += ["", f"live calls {len(snapshot.get('calls', []))}   agents {len(snapshot.get('agents', []))}", ""]
    lines += list(ticker)
    return "\n".join(lines)


async def watch(pub: str, req: str, duration: float | None = None, out: TextIO | None = None, interval: float = 1.0) -> int:
    """Show the view until `duration` seconds passed (or forever); return the events seen."""
    out = out or sys.stdout
    tty = out.isatty()
    ctx = zmq.asyncio.Context()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt_string(zmq.SUBSCRIBE, "call.")
    sub.connect(pub)
    dealer = ctx.socket(zmq.DEALER)
    dealer.connect(req)
    sl = RollingSL()
    ticker: deque[str] = deque(maxlen=6)
    seen = 0
    start = time.monotonic()

    async def events() -> None:
        nonlocal seen
        while True:
            _, body = await sub.recv_multipart()
            event = msgpack.unpackb(body)
            seen += 1
            sl.add(event)
            if event["type"] in ("call.queued", "call.established", "call.abandoned", "call.cleared"):
                who = event.get("agent") or "-"
                ticker.append(f"{time.strftime('%H:%M:%S', time.localtime(event['ts']))} {event['type']:<17} "
                              f"{event.get('queue') or '-':<8} {who:<6} {event.get('caller') or 'withheld'}")

    reader = asyncio.ensure_future(events())
    tick = 0

    async def show() -> None:
        await dealer.send(msgpack.packb({"op": "snapshot"}))
        try:
            reply = msgpack.unpackb(await asyncio.wait_for(dealer.recv(), 5))
        except asyncio.TimeoutError:
            reply = {"ok": False}
        snapshot = reply.get("result", {}) if reply.get("ok") else {}
        text = render(snapshot, sl, ticker, time.monotonic() - start, duration, seen, tick)
        out.write(("\x1b[H\x1b[2J" + text + "\n") if tty else (text + "\n\n"))
        out.flush()

    # Not a terminal (a log, a pipe): a frame every 5 s instead of redrawing every second.
    period = interval if tty else max(interval, 5.0)
    try:
        while True:
            await show()
            tick += 1
            left = None if duration is None else duration - (time.monotonic() - start)
            if left is not None and left <= 0:
                break
            await asyncio.sleep(period if left is None else min(period, left))
    finally:
        reader.cancel()
        sub.close(0)
        dealer.close(0)
        ctx.term()
    return seen
