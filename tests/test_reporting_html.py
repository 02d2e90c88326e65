"""The HTML report: one self-contained file whose five charts Chromium draws."""

from __future__ import annotations

import re

from PIL import Image

from chromium import run, screenshot
from ctid.cli import main
from ctid_plugins.qa.config import Options
from ctid_plugins.qa.service import QaService
from ctid_plugins.reporting.html import TITLES
from qa_support import qa_options
from reporting_support import database

PLOTLY_BLUE, PLOTLY_RED = (99, 110, 250), (239, 85, 59)  # the first two colours of plotly's palette


def _near(pixel, colour, tol=12):
    return all(abs(a - b) <= tol for a, b in zip(pixel[:3], colour))


def test_html_report_renders_every_chart(tmp_path):
    url, engine = database(tmp_path)
    engine.dispose()
    qa = QaService.open(url, Options.parse(qa_options()))  # QA scores for the quadrant: a1 90, a3 50
    full = {"greet": "pass", "verify": "pass", "solve": "pass", "upsell": "pass"}
    qa.evaluate("eve", {**full, "greet": "fail"}, call_id="c1")
    qa.evaluate("eve", full, call_id="c5")
    qa.evaluate("eve", {**full, "verify": "fail"}, call_id="c6")
    qa.close()
    page = tmp_path / "report.html"
    assert main(["report", "--database", url, "--from", "2026-11-02 09:00", "--to", "2026-11-02 10:00",
                 "--by", "queue", "--format", "html", "-o", str(page)]) == 0
    text = page.read_text()
    # self-contained: plotly.js is inside, nothing is fetched (no script or stylesheet by URL)
    assert not re.search(r"<script[^>]+src=", text) and not re.search(r"<link[^>]+href=\"?https?:", text)
    assert text.count('class="plotly-graph-div"') == len(TITLES) == 5

    dom = run(page.as_uri(), tmp_path / "profile", "--dump-dom")
    for title in TITLES:  # each title is drawn by plotly into its SVG (class gtitle): the chart rendered
        assert re.search(r'class="g-gtitle".*?' + re.escape(title), dom, re.S) or f">{title}</text>" in dom, title
    assert dom.count('class="main-svg"') >= 2 * len(TITLES)  # plotly draws two SVG layers per chart
    assert "[missing_end]" in dom and "33.3%" in dom  # footnotes and the KPI table
    assert "no QA evaluations" not in dom and ">a3</text>" in dom  # the quadrant labels its points

    shot = Image.open(screenshot(page.as_uri(), tmp_path / "profile", tmp_path / "report.png")).convert("RGB")
    w, h = shot.size
    # charts sit two per row: each quadrant of the first three rows has plotly's colours in it
    cells = [(col, row) for row in range(2) for col in range(2)] + [(0, 2)]
    for col, row in cells:
        box = shot.crop((col * w // 2, 40 + row * 440, (col + 1) * w // 2, 40 + (row + 1) * 440))
        colours = box.getcolors(maxcolors=1 << 20) or []
        drawn = sum(n for n, px in colours if _near(px, PLOTLY_BLUE) or _near(px, PLOTLY_RED))
        # the QA quadrant has two agents' markers (a1 and a3); the others bars, lines and slices
        assert drawn > (100 if (col, row) == (0, 2) else 200), f"chart at column {col}, row {row} drew too little"
