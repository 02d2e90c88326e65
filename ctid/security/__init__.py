"""Who may use the bus and what each may see and do.

`keys` is the client key store (CURVE public keys with roles, in the site database) and the
daemon's own key pair; `roles` the policy (topic filtering, request authorization); `guard`
puts both on the bus's sockets. `bus_security(config, ...)` builds it for the daemon.
"""

from __future__ import annotations

import logging

from ctid.config import Config
from ctid.metrics import Counters
from ctid.security.guard import BusSecurity
from ctid.security.keys import KeyStore, server_keys
from ctid.security.roles import Policy, Principal, parse_role
from ctid.state import State

log = logging.getLogger("ctid.security")


def bus_security(config: Config, state: State, counters: Counters) -> BusSecurity | None:
    """The daemon's bus security from `[bus]`; None (with a warning) when the config asks for plain access."""
    if config.bus.security == "plain":
        log.warning("the bus is PLAIN: no keys, every local client may read and control everything "
                    "(bus.security = 'plain'; loopback endpoints only)",
                    extra={"ctx": {"pub": config.bus.pub, "req": config.bus.req}})
        return None
    public, secret = server_keys(config.bus.server_key)
    log.info("bus security: CURVE", extra={"ctx": {"server_key": public.decode(), "key_file": config.bus.server_key}})
    return BusSecurity(KeyStore(config.database.url), Policy(config.site, state, config.site_teams), public, secret, counters)


__all__ = ["BusSecurity", "KeyStore", "Policy", "Principal", "bus_security", "parse_role", "server_keys"]
