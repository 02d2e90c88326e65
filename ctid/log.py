"""Structured logging on the standard library: one line per record, key=value or JSON.

Context goes in `extra={"ctx": {...}}`; it is rendered as keys of the line, so
`log.warning("bad frame", extra={"ctx": {"driver": "pbx1", "reason": r}})` gives
`ts=... level=warning logger=ctid.driver msg="bad frame" driver=pbx1 reason=...`.
"""

from __future__ import annotations

import json
import logging
import sys
import time


def _kv(value: object) -> str:
    text = str(value)
    if not text or any(c in text for c in ' ="\n'):
        return json.dumps(text, ensure_ascii=False)
    return text


def _fields(record: logging.LogRecord, formatter: logging.Formatter, ts: object) -> dict[str, object]:
    fields = {"ts": ts, "level": record.levelname.lower(), "logger": record.name, "msg": record.getMessage()}
    fields.update(getattr(record, "ctx", None) or {})
    if record.exc_info:
        fields["exc"] = formatter.formatException(record.exc_info)
    return fields


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        ts = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z"
        return " ".join(f"{k}={_kv(v)}" for k, v in _fields(record, self, ts).items())


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record, self, record.created), ensure_ascii=False, default=str)


def setup(level: str = "INFO", fmt: str = "kv", stream=None) -> None:
    """Configure the root logger once for the process (daemon, simulator or demo)."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
