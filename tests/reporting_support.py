"""The hand-built call center the reporting tests check every KPI on (real SQLite file).

One hour, Monday 2026-11-02 09:00-10:00 UTC, queues `sales` (service level 20 s) and `vip`
(15 s), agents a1 a2 (team north) and a3 (team south). The right answers are worked out in
tests/test_reporting_kpis.py beside each assertion.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import Engine, insert

from ctid.store.engine import make_engine
from ctid.store.models import AGENT_STATE, CDR, metadata
from ctid_plugins.reporting.config import Options

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=timezone.utc).timestamp()
HOUR = 3600.0
NOW = T0 + 10 * HOUR

OPTIONS = Options(short_abandon=5, service_level=20, service_levels={"vip": 15}, fcr_window=3600,
                  teams={"a1": "north", "a2": "north", "a3": "south"})


def cdr(call_id: str, offset: float, *, queue: str | None = None, agent: str | None = None, caller: str | None = None,
        direction: str | None = "inbound", disposition: str = "answered", wait: float | None = 0.0, talk: float = 0.0,
        hold: float = 0.0, acw: float | None = None, transfers: int = 0, site: str = "hq", ended: bool = True,
        x: dict[str, Any] | None = None, **override: Any) -> dict[str, Any]:
    """A cdr row as the store writes it from `call.cleared`: times from the offer `offset` (s after T0)."""
    t_offered = T0 + offset
    t_answered = t_offered + wait if disposition == "answered" and wait is not None else None
    t_ended = (t_answered or t_offered + (wait or 0)) + talk + hold
    row = dict(site=site, call_id=call_id, caller=caller, called=None, caller_name=None, queue=queue, agent=agent,
               direction=direction, t_offered=t_offered, t_queued=t_offered if queue else None, t_answered=t_answered,
               t_ended=t_ended if ended else None, wait=wait, talk=talk, hold=hold, acw=acw, disposition=disposition,
               recording=f"/rec/{call_id}.wav" if t_answered and agent else None, transfers=transfers, x=x)
    row.update(override)
    return row


def calls() -> list[dict[str, Any]]:
    return [
        cdr("c1", 0, queue="sales", agent="a1", caller="111", wait=10, talk=100, hold=20, acw=30),
        cdr("c2", 60, queue="sales", agent="a2", caller="222", wait=25, talk=200, acw=10, transfers=1,
            x={"customer_type": "vip"}),
        cdr("c3", 120, queue="sales", caller="333", disposition="abandoned", wait=40),
        cdr("c4", 180, queue="sales", caller="444", disposition="abandoned", wait=3),  # short abandon
        cdr("c5", 600, queue="vip", agent="a3", caller="111", wait=12, talk=300, hold=60),  # repeat of c1
        cdr("c6", 1000, queue="vip", agent="a3", caller="555", wait=18, talk=60, acw=20, x={"customer_type": "vip"}),
        cdr("c7", 2000, queue="vip", caller="666", disposition="abandoned", wait=30),
        cdr("c8", 2100, caller="777", wait=0, talk=45),  # answered by the IVR: no queue, no agent
        cdr("c9", 2200, agent="a1", direction="outbound", wait=5, talk=50, acw=0),
        cdr("c10", 2300, agent="a1", direction="outbound", disposition="unanswered", wait=20),
        cdr("c11", 2400, queue="sales", caller="888", disposition="timeout", wait=60),
        # bad rows: each excluded from every figure and counted in a footnote
        cdr("c12", 2500, queue="sales", agent="a2", caller="121", wait=5, talk=30, ended=False),  # missing_end
        cdr("c13", 2600, queue="sales", agent="a2", caller="131", wait=5, talk=30, t_answered=T0 + 2500),  # clock_skew
        cdr("c14", 2700, queue="sales", agent="a2", caller="141", wait=5, talk=-5, t_ended=T0 + 2800),  # negative_duration
        # outside the period: only c16 matters, as a repeat of c6 within the FCR window
        cdr("c15", 2 * 86400, queue="sales", agent="a2", caller="222", wait=5, talk=30),
        cdr("c16", HOUR + 100, queue="vip", agent="a3", caller="555", wait=5, talk=30),
    ]


def agent_states() -> list[dict[str, Any]]:
    def row(agent: str, offset: float, state: str, queue: str | None = None, reason: str | None = None) -> dict[str, Any]:
        return dict(site="hq", ts=T0 + offset, agent=agent, name=None, queue=queue, state=state, reason=reason,
                    call_id=None, duration=None)
    return [
        row("a1", -600, "logged_on", "sales"),  # before the period: counted from 09:00
        row("a1", 1200, "not_ready", reason="lunch"),
        row("a1", 1500, "ready"),
        row("a1", 3000, "logged_off"),  # no queue: out of every queue
        row("a3", 300, "logged_on", "vip"),
        row("a3", 300, "logged_on", "sales"),
        row("a3", 1800, "logged_off", "vip"),  # still in sales
        row("a3", 3000, "not_ready", reason="training"),  # until the period's end
    ]


def database(path: Any, cdrs: list[dict[str, Any]] | None = None,
             states: list[dict[str, Any]] | None = None) -> tuple[str, Engine]:
    """A SQLite file with the store's tables and the given (default: the hand-built) rows."""
    url = f"sqlite:///{path}/ctid.db"
    engine = make_engine(url)
    metadata.create_all(engine)
    rows = calls() if cdrs is None else cdrs
    states = agent_states() if states is None else states
    with engine.begin() as conn:
        if rows:
            conn.execute(insert(CDR), rows)
        if states:
            conn.execute(insert(AGENT_STATE), states)
    return url, engine
