"""A report as text: an aligned table, CSV or JSON (the HTML report is html.py)."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import datetime
from zoneinfo import ZoneInfo

from ctid_plugins.reporting.kpis import AGENT_KPIS, BY_NAME, KPIS
from ctid_plugins.reporting.report import Report

FORMATS = ("table", "csv", "json", "html")


def columns(report: Report) -> list[str]:
    """The KPI columns of a report: the agent-time ones only where they apply."""
    return [k.name for k in KPIS] + ([k.name for k in AGENT_KPIS] if report.agent_time else [])


def cell(name: str, value: float | None) -> str:
    """A KPI as people read it: 85.0 %, 12.3 s, 4.50 h, counts as integers, n/a for no value."""
    if value is None or (isinstance(value, float) and math.isinf(value)):
        return "n/a"
    unit = BY_NAME[name].unit
    if unit == "percent":
        return f"{value * 100:.1f}%"
    if unit == "seconds":
        return f"{value:.1f}s"
    if unit in ("hours", "rate"):
        return f"{value:.2f}"
    return f"{value:.0f}"


def period(report: Report) -> str:
    zone = ZoneInfo(report.timezone)
    fmt = "%Y-%m-%d %H:%M"
    return (f"{datetime.fromtimestamp(report.since, zone).strftime(fmt)} to "
            f"{datetime.fromtimestamp(report.until, zone).strftime(fmt)} ({report.timezone})")


def table(report: Report) -> str:
    """An aligned text table with a totals line and the footnotes under it."""
    names = columns(report)
    head = [*report.by, *names]
    body = [[*r.labels, *(cell(n, r.kpis[n]) for n in names)] for r in (*report.rows, report.total)]
    widths = [max(len(str(x)) for x in col) for col in zip(head, *body)]
    line = lambda cells: "  ".join(str(x).rjust(w) for x, w in zip(cells, widths)).rstrip()  # noqa: E731
    out = [f"Report {period(report)}", line(head), line(["-" * w for w in widths])]
    out += [line(r) for r in body[:-1]]
    out += [line(["=" * w for w in widths]), line(body[-1]), ""]
    out += [f"[{i}] {note}" for i, note in enumerate(report.footnotes, 1)]
    return "\n".join(out) + "\n"


def csv_text(report: Report) -> str:
    """One CSV row per group (raw numbers: fractions, seconds, hours; empty for n/a), then totals."""
    names = columns(report)
    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow([*report.by, *names])
    for r in (*report.rows, report.total):
        w.writerow([*r.labels, *("" if r.kpis[n] is None else round(r.kpis[n], 6) for n in names)])
    return buf.getvalue()


def json_text(report: Report) -> str:
    return json.dumps(report.to_json(), indent=1, sort_keys=False, default=str) + "\n"
