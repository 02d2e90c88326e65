"""docs/protocol.md is the contract: it must list exactly what the code publishes and serves."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import free_port
from ctid import config
from ctid.daemon import Daemon
from ctid.events import CATEGORIES, DISPOSITIONS, ENVELOPE, EVENT_TYPES, TOPIC_KEYS

DOC = (Path(__file__).resolve().parents[1] / "docs" / "protocol.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = DOC.index(title)
    rest = DOC[start + len(title):]
    end = re.search(r"^#{2,3} ", rest, re.M)
    return rest[: end.start()] if end else rest


def first_column(text: str) -> set[str]:
    return set(re.findall(r"^\| `([^`]+)` \|", text, re.M))


def test_every_event_type_is_documented_and_nothing_else():
    assert first_column(section("### Event types")) == set(EVENT_TYPES)


def test_envelope_dispositions_and_topics_are_documented():
    assert first_column(section("### Envelope")) == set(ENVELOPE)
    assert first_column(section("### Dispositions")) == set(DISPOSITIONS)
    assert first_column(section("### Topics")) == set(CATEGORIES) == set(TOPIC_KEYS)


def test_every_request_op_is_documented(tmp_path):
    cfg = config.parse({
        "site": "hq",
        "bus": {"pub": f"tcp://127.0.0.1:{free_port()}", "req": f"tcp://127.0.0.1:{free_port()}", "security": "plain"},
        "database": {"url": f"sqlite:///{tmp_path}/x.db"},
        "driver": [{"kind": "asterisk"}],
    })
    ops = set(Daemon(cfg).bus._ops)
    assert first_column(section("### Ops")) | first_column(section("### Control requests")) == ops
