"""The bus's gatekeeper: CURVE on both sockets, the ZAP handler, and who each message is from.

`BusSecurity` is handed to `ctid.bus.Bus`. It makes both sockets CURVE servers with the
daemon's key, runs pyzmq's `AsyncioAuthenticator` on the daemon's loop with this object as
its credentials provider (a handshake succeeds only for a live key in the key store), and
maps the `User-Id` the authenticator gives each connection (the client's Z85 public key)
to a `Principal`. The live keys are re-read every `poll` seconds: a key revoked by
`ctid keys revoke` loses its requests at the next poll, and its event connection is cut
(the bus re-opens its event socket, the others reconnect by themselves).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Callable

import zmq
from zmq.auth.asyncio import AsyncioAuthenticator

from ctid.bus import RequestError
from ctid.metrics import Counters
from ctid.security.keys import KeyStore
from ctid.security.roles import Policy, Principal

log = logging.getLogger("ctid.security")

ZAP_DOMAIN = b"ctid"


class BusSecurity:
    def __init__(self, keys: KeyStore, policy: Policy, server_public: bytes, server_secret: bytes,
                 counters: Counters, poll: float = 1.0) -> None:
        self.keys = keys
        self.policy = policy
        self.public = server_public
        self.secret = server_secret
        self.counters = counters
        self.poll = poll
        self.on_revoked: list[Callable[[set[str]], None]] = []
        #: told of every request refused as forbidden: (request, "error", {"code", "message"}), like the audit wants
        self.on_refused: list[Callable[[dict[str, Any], str, dict[str, Any]], None]] = []
        self._live: dict[str, str] = {}
        self._principals: dict[str, Principal] = {}
        self._auth: AsyncioAuthenticator | None = None
        self._task: asyncio.Task[None] | None = None

    # -- sockets -----------------------------------------------------------------------------

    def secure(self, sock: zmq.Socket) -> None:
        """Make a socket a CURVE server that asks the ZAP handler about every client."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True
        sock.zap_domain = ZAP_DOMAIN

    def start(self, ctx: zmq.Context) -> None:
        """Start the ZAP handler on the running loop (the bus's context: ZAP is in-process)."""
        self._reload()
        self._auth = AsyncioAuthenticator(ctx, log=logging.getLogger("ctid.security.zap"))
        self._auth.configure_curve_callback(ZAP_DOMAIN.decode(), credentials_provider=self)
        self._auth.start()
        self._task = asyncio.ensure_future(self._watch())

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
        if self._auth is not None:
            self._auth.stop()

    # -- who is it ---------------------------------------------------------------------------

    def callback(self, domain: str, key: bytes) -> bool:
        """The ZAP decision for a client key (Z85 bytes): a live key in the store."""
        text = key.decode("ascii", "replace")
        if text not in self._live:
            self._reload()  # a key added a moment ago must not wait for the next poll
        if text in self._live:
            self.counters.inc("bus.auth_ok")
            return True
        self.counters.inc("bus.auth_denied")
        log.warning("bus connection refused: unknown or revoked key", extra={"ctx": {"key": text[:8] + "..."}})
        return False

    def principal(self, user_id: str | None) -> Principal | None:
        """The principal of a message's User-Id; None when the key is no longer live."""
        if user_id is None:
            return None
        return self._principals.get(user_id)

    def _reload(self) -> None:
        self._reload_from(self.keys.live())

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            await asyncio.sleep(self.poll)
            try:
                live = await loop.run_in_executor(None, self.keys.live)
            except Exception:  # the database away for a moment: keep the last known keys
                log.exception("cannot read the client keys")
                continue
            gone = set(self._live) - set(live)
            if live != self._live:
                self._reload_from(live)
            if gone:
                log.warning("client keys revoked", extra={"ctx": {"keys": len(gone)}})
                for listener in self.on_revoked:
                    listener(gone)

    def _reload_from(self, live: dict[str, str]) -> None:
        self._live = live
        self._principals = {}
        for key, role in live.items():
            try:
                self._principals[key] = Principal.of(key, role)
            except ValueError:  # a hand-edited row: refuse the key, say why
                log.warning("key with a bad role is refused", extra={"ctx": {"key": key[:8] + "...", "role": role}})

    # -- decisions the bus asks for ----------------------------------------------------------

    def may_subscribe(self, user_id: str | None, prefix: bytes) -> bool:
        who = self.principal(user_id)
        try:
            text = prefix.decode("utf-8")
        except UnicodeDecodeError:
            return False
        return who is not None and self.policy.may_subscribe(who, text)

    def authorize(self, who: Principal | None, op: str, request: dict[str, Any]) -> None:
        """Raise RequestError(forbidden) unless `who` may send this request."""
        if who is None:
            raise RequestError("unauthorized", "this client key is not (or no longer) allowed")
        try:
            self.policy.authorize(who, op, request)
        except RequestError as exc:
            for listener in self.on_refused:
                listener(request, "error", {"code": exc.code, "message": exc.message})
            raise

    def filter_result(self, who: Principal | None, op: str, result: Any) -> Any:
        """An op's result cut down to what `who` may see (the snapshot, for agents and supervisors)."""
        if op == "snapshot" and who is not None and isinstance(result, dict):
            return self.policy.filter_snapshot(who, result)
        return result

    def describe(self, user_id: str | None) -> dict[str, Any]:
        who = self.principal(user_id)
        return {"key": (user_id or "")[:8] + "...", "role": who.role if who else None}
