"""A scorecard and a QA config for the QA tests (the calls are tests/reporting_support.py's)."""

from __future__ import annotations

from typing import Any

CARD: dict[str, Any] = {"sections": [
    {"name": "Opening", "items": [
        {"id": "greet", "text": "Greets with the company name", "weight": 10},
        {"id": "verify", "text": "Verifies the caller's identity", "weight": 30, "critical": True},
    ]},
    {"name": "Resolution", "items": [
        {"id": "solve", "text": "Solves the problem", "weight": 40},
        {"id": "upsell", "text": "Offers the right product", "weight": 20},
    ]},
]}


def qa_options(**extra: Any) -> dict[str, Any]:
    return {"seed": 7, "scorecards": {"default": CARD}, **extra}
