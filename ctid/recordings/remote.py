"""Asking a running daemon's recording index, for `ctid recordings search|export|retention`.

The daemon keeps the index in memory; an index the CLI rebuilt itself from the database
would cost it 45 s at 10 M recordings. So the CLI first sends `recordings.search` to the
configured request endpoint (`[bus] req`), and builds its own index only when no daemon
answers within the timeout, or the one that answers is still rebuilding (`unavailable`).
`retention --apply` goes through the daemon too (`recordings.retention`, admin only), so the
running index drops what is deleted at once.
On a CURVE bus the CLI needs a client key: `--key FILE`, the file `ctid keys new` prints
(`public-key`, `secret-key`, `server-key`); the daemon then runs the query as that key's
role, whatever `--as` says. Without a key on a CURVE bus there is nothing to ask with.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import msgpack
import zmq

from ctid.recordings.model import FIELDS, Recording

TIMEOUT = 2.0  # seconds without an answer: no daemon (a search itself takes milliseconds)


class NoDaemon(Exception):
    """No daemon answered the search (the message says why): the caller builds its own index."""


class DaemonRefused(Exception):
    """A daemon answered with an error other than `unavailable` (a bad query, forbidden ...):
    its answer stands, the caller must not work around it with its own index."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"the daemon refused the search ({code}): {message}")
        self.code = code


@dataclass(frozen=True)
class ClientKey:
    """A CURVE client key pair and the daemon's public key, Z85 text."""

    public: str
    secret: str
    server: str

    @classmethod
    def load(cls, path: str | Path) -> ClientKey:
        """From the TOML `ctid keys new` prints. Raises ValueError naming the file and the key."""
        try:
            data = tomllib.loads(Path(path).read_text())
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ValueError(f"{path}: not a readable key file ({exc})") from None
        values = []
        for name in ("public-key", "secret-key", "server-key"):
            value = data.get(name)
            if not isinstance(value, str) or len(value) != 40:
                raise ValueError(f"{path}: {name} must be a 40-character Z85 key (what `ctid keys new` prints)")
            values.append(value)
        return cls(*values)


class DaemonClient:
    """One DEALER connection to the daemon's request socket (CURVE when given a key)."""

    def __init__(self, endpoint: str, key: ClientKey | None = None, timeout: float = TIMEOUT) -> None:
        self.timeout = timeout
        self.sock = zmq.Context.instance().socket(zmq.DEALER)
        self.sock.setsockopt(zmq.LINGER, 0)
        if key is not None:
            self.sock.curve_serverkey = key.server.encode()
            self.sock.curve_publickey = key.public.encode()
            self.sock.curve_secretkey = key.secret.encode()
        self.sock.connect(endpoint)
        self.endpoint = endpoint

    def close(self) -> None:
        self.sock.close()

    def search(self, principal: str, spec: dict[str, Any]) -> dict[str, Any]:
        """One `recordings.search` page: {"rows": [...], "next_cursor": str | None}.
        Raises NoDaemon (no answer, or the index is being rebuilt) or DaemonRefused."""
        return self.ask("recordings.search", {"principal": principal, **spec})

    def retention(self, principal: str, days: float, apply: bool, cursor: str | None = None) -> dict[str, Any]:
        """One `recordings.retention` page (the daemon deletes with `apply`; admin only)."""
        return self.ask("recordings.retention", {"principal": principal, "days": days, "apply": apply,
                                                 "cursor": cursor})

    def ask(self, op: str, fields: dict[str, Any]) -> dict[str, Any]:
        """The result of one request (None fields left out). Raises NoDaemon or DaemonRefused."""
        request = {"op": op, **{k: v for k, v in fields.items() if v is not None}}
        self.sock.send(msgpack.packb(request))
        if not self.sock.poll(int(self.timeout * 1000)):
            raise NoDaemon(f"no daemon answered {op} on {self.endpoint} within {self.timeout:g} s")
        reply = msgpack.unpackb(self.sock.recv())
        if reply.get("ok"):
            return reply["result"]
        error = reply.get("error") or {}
        code, message = str(error.get("code", "error")), str(error.get("message", reply))
        if code == "unavailable":
            raise NoDaemon(f"the daemon on {self.endpoint} is still rebuilding its index ({message})")
        raise DaemonRefused(code, message)

    def pages(self, principal: str, spec: dict[str, Any]) -> Iterator[list[Recording]]:
        """Every page of the search, following `next_cursor`, as `Recording`s."""
        cursor = spec.get("cursor")
        while True:
            page = self.search(principal, {**spec, "cursor": cursor})
            yield [recording(row) for row in page["rows"]]
            cursor = page["next_cursor"]
            if cursor is None:
                return


def recording(row: dict[str, Any]) -> Recording:
    """A `Recording` from a `recordings.search` row (`Recording.as_json`; it has no database id)."""
    fields = {k: row[k] for k in FIELDS if k in row}
    fields["tags"] = tuple(fields.get("tags") or ())
    return Recording(**fields)
