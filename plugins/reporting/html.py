"""The HTML report: one self-contained file (plotly's JavaScript inlined, no network) with the
charts the way managers read them, the KPI table and its footnotes.

- trends as lines (service level, abandon rate, ASA per interval or day);
- period comparison as bars (this period against the one before it, per queue);
- dispositions as a pie;
- volume against service level on two axes;
- QA score against calls per hour as a quadrant scatter (the QA plugin's averages).
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Iterable, Mapping

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ctid_plugins.reporting.render import cell, columns, period
from sqlalchemy import Engine

from ctid_plugins.reporting.config import Options
from ctid_plugins.reporting.report import Report, build

#: Chart titles, in page order (the rendering test looks for each one).
TITLES = ("Service level and abandon rate", "This period against the previous one", "Dispositions",
          "Volume and service level", "QA score against calls per hour")


@dataclass
class Inputs:
    """What the page is made of: the asked report, and the reports its charts need."""

    report: Report  # the table, as asked (--by)
    trend: Report  # by one time dimension
    by_queue: Report  # this period by queue
    previous: Report  # the period before, by queue
    by_agent: Report  # agent time, for calls per hour
    qa_scores: Mapping[str, float]  # agent -> average QA score (0-100) in the period


def inputs(engine: Engine, report: Report, options: Options, *, interval: int = 30, queues: Iterable[str] = (),
           sites: Iterable[str] = (), known: Iterable[str] = (), now: float | None = None) -> Inputs:
    """The chart reports for the period of `report`, made with the same filters."""
    since, until = report.since, report.until
    span = until - since
    trend_by = "interval" if span <= 2 * 86400 else ("day" if span <= 62 * 86400 else "week")
    kw = dict(interval=interval, queues=tuple(queues), sites=tuple(sites), known=tuple(known), now=now)
    return Inputs(
        report=report,
        trend=build(engine, since, until, [trend_by], options, **kw),
        by_queue=build(engine, since, until, ["queue"], options, **kw),
        previous=build(engine, since - span, since, ["queue"], options, **kw),
        by_agent=build(engine, since, until, ["agent"], options, **{**kw, "queues": ()}),
        qa_scores=_qa_scores(engine, since, until),
    )


def _qa_scores(engine: Engine, since: float, until: float) -> dict[str, float]:
    """Average QA score per agent from the QA plugin's tables, when that plugin is installed."""
    try:
        from ctid_plugins.qa.reports import average_by_agent
    except ImportError:
        return {}
    return average_by_agent(engine, since, until)


def _pct(v: float | None) -> float | None:
    return None if v is None else round(v * 100, 2)


def _trends(i: Inputs) -> go.Figure:
    x = [r.labels[0] for r in i.trend.rows]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Scatter(x=x, y=[_pct(r.kpis["service_level"]) for r in i.trend.rows], name="Service level %",
                             mode="lines+markers"))
    fig.add_trace(go.Scatter(x=x, y=[_pct(r.kpis["abandon_rate"]) for r in i.trend.rows], name="Abandon rate %",
                             mode="lines+markers"))
    fig.add_trace(go.Scatter(x=x, y=[r.kpis["asa"] for r in i.trend.rows], name="ASA (s)", mode="lines+markers",
                             line={"dash": "dot"}), secondary_y=True)
    fig.update_xaxes(type="category")  # interval labels, not a date axis that pads and re-ticks them
    fig.update_yaxes(title_text="%", secondary_y=False)
    fig.update_yaxes(title_text="seconds", secondary_y=True)
    return fig


def _comparison(i: Inputs) -> go.Figure:
    queues = sorted({r.labels[0] for r in (*i.by_queue.rows, *i.previous.rows)})
    def series(report: Report, kpi: str) -> list[float]:
        rows = {r.labels[0]: r.kpis[kpi] for r in report.rows}
        return [rows.get(q) or 0 for q in queues]
    fig = go.Figure()
    fig.add_trace(go.Bar(x=queues, y=series(i.previous, "acd_offered"), name="Offered, previous period"))
    fig.add_trace(go.Bar(x=queues, y=series(i.by_queue, "acd_offered"), name="Offered, this period"))
    fig.add_trace(go.Bar(x=queues, y=series(i.previous, "answered"), name="Answered, previous period"))
    fig.add_trace(go.Bar(x=queues, y=series(i.by_queue, "answered"), name="Answered, this period"))
    fig.update_layout(barmode="group")
    return fig


def _dispositions(i: Inputs) -> go.Figure:
    d = i.report.dispositions
    return go.Figure(go.Pie(labels=list(d), values=list(d.values()), hole=0.3, sort=False))


def _volume_vs_sl(i: Inputs) -> go.Figure:
    x = [r.labels[0] for r in i.trend.rows]
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=x, y=[r.kpis["acd_offered"] for r in i.trend.rows], name="Offered (ACD)"))
    fig.add_trace(go.Scatter(x=x, y=[_pct(r.kpis["service_level"]) for r in i.trend.rows], name="Service level %",
                             mode="lines+markers"), secondary_y=True)
    fig.update_xaxes(type="category")
    fig.update_yaxes(title_text="calls", secondary_y=False)
    fig.update_yaxes(title_text="service level %", range=[0, 105], secondary_y=True)
    return fig


def _quadrant(i: Inputs) -> go.Figure:
    points = [(r.labels[0], r.kpis["calls_per_hour"], i.qa_scores[r.labels[0]]) for r in i.by_agent.rows
              if r.kpis.get("calls_per_hour") is not None and r.labels[0] in i.qa_scores]
    fig = go.Figure(go.Scatter(x=[p[1] for p in points], y=[p[2] for p in points], text=[p[0] for p in points],
                               mode="markers+text", textposition="top center", marker={"size": 12}, name="agents"))
    if points:
        # Quadrant lines at the averages: above-average quality and productivity is top right.
        mx = sum(p[1] for p in points) / len(points)
        my = sum(p[2] for p in points) / len(points)
        fig.add_vline(x=mx, line_dash="dash", line_color="grey")
        fig.add_hline(y=my, line_dash="dash", line_color="grey")
    else:
        fig.add_annotation(text="no QA evaluations of agents with logged-in time in this period", showarrow=False,
                           x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_xaxes(title_text="calls per agent-hour")
    fig.update_yaxes(title_text="QA score")
    return fig


def render_html(i: Inputs) -> str:
    """The whole page as one string (about 4.5 MB: plotly.js is inside, so it opens offline)."""
    figures = (_trends(i), _comparison(i), _dispositions(i), _volume_vs_sl(i), _quadrant(i))
    parts = []
    for n, (title, fig) in enumerate(zip(TITLES, figures)):
        fig.update_layout(title_text=title, height=420, margin={"t": 60, "b": 40}, template="plotly_white")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=(n == 0), div_id=f"chart{n}",
                                 config={"displaylogo": False}))
    return _PAGE.format(title=html.escape(f"ctid report {period(i.report)}"), charts="\n".join(parts),
                        table=_table(i.report), notes="".join(f"<li>{html.escape(n)}</li>" for n in i.report.footnotes))


def _table(report: Report) -> str:
    names = columns(report)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in (*report.by, *names))
    rows = []
    for r in (*report.rows, report.total):
        cls = ' class="total"' if r is report.total else ""
        cells = "".join(f"<td>{html.escape(str(x))}</td>" for x in r.labels)
        cells += "".join(f"<td>{html.escape(cell(n, r.kpis[n]))}</td>" for n in names)
        rows.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


_PAGE = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body {{ font-family: sans-serif; margin: 1.5em; }}
.charts {{ display: grid; grid-template-columns: 1fr 1fr; gap: 1em; }}
table {{ border-collapse: collapse; font-size: 12px; }}
th, td {{ border: 1px solid #ccc; padding: 2px 6px; text-align: right; }}
tr.total td {{ font-weight: bold; border-top: 2px solid #333; }}
</style></head>
<body><h1>{title}</h1>
<div class="charts">
{charts}
</div>
<h2>KPIs</h2>
{table}
<ol class="footnotes">{notes}</ol>
</body></html>
"""
