"""The Asterisk (AMI) driver: protocol (bytes -> frames), mapper (frames -> events),
link (connect, login, keep-alive, reconnect, resync) and sim (a stand-in PBX)."""

from __future__ import annotations

from typing import Any

from ctid.config import DriverConfig
from ctid.drivers import Sink
from ctid.drivers.asterisk.control import AsteriskControl
from ctid.drivers.asterisk.link import ActionError, AmiLink, LinkOptions
from ctid.drivers.asterisk.mapper import DEFAULT_INBOUND_CONTEXTS, AsteriskMapper
from ctid.metrics import Counters

#: `[[driver]]` keys this driver reads besides host/port/username/secret.
OPTIONS = {
    "inbound_contexts": "dialplan contexts whose calls are inbound (list of strings)",
    "wrapup": "after-call work seconds per queue when members carry none ({queue = seconds}; default: [[queue]] wrapuptime)",
    "internal_digits": "dialled numbers up to this many digits are internal calls (int, default 5)",
    "connect_timeout": "seconds to wait for the TCP connection (default 5)",
    "resync_timeout": "seconds to wait for QueueStatus/CoreShowChannels after login (default 10)",
    "ping_interval": "seconds between keep-alive Pings (default 20)",
    "backoff_max": "longest wait between reconnects in seconds (default 30)",
    # call control (see control.py)
    "endpoint": "an agent's PJSIP endpoint for answer/hold/retrieve, `{agent}` replaced (default `{agent}`)",
    "agent_interface": "the member interface agent.login adds without a device (default `Local/{agent}@agents/n`)",
    "spy_device": "the channel ChanSpy listens to for an agent (default `PJSIP/{agent}`)",
    "outbound_context": "the dialplan context call.make dials the number in (default `outbound`)",
    "transfer_context": "the dialplan context of transfer targets (default `xfer`)",
    "outbound_callerid": "the caller id call.make presents (default: the PBX's own rule)",
    "action_timeout": "seconds to wait for the PBX to answer a control action (default 4)",
}


class AsteriskDriver:
    kind = "asterisk"

    def __init__(self, config: DriverConfig, sink: Sink, counters: Counters) -> None:
        opts = dict(config.options)
        unknown = set(opts) - set(OPTIONS)
        if unknown:
            raise ValueError(f"driver {config.name}: unknown option(s) {', '.join(sorted(unknown))}")
        self.name = config.name
        self.mapper = AsteriskMapper(
            source=config.name,
            inbound_contexts=tuple(opts.get("inbound_contexts", DEFAULT_INBOUND_CONTEXTS)),
            wrapup=config.wrapup(),
            internal_digits=int(opts.get("internal_digits", 5)),
        )
        link_opts = LinkOptions(config.host, config.port, config.username, config.secret)
        for key in ("connect_timeout", "resync_timeout", "ping_interval", "backoff_max"):
            if key in opts:
                setattr(link_opts, key, float(opts[key]))
        self.link = AmiLink(config.name, link_opts, self.mapper, sink, counters)
        texts = {k: str(opts[k]) for k in ("endpoint", "agent_interface", "spy_device", "outbound_context",
                                           "transfer_context", "outbound_callerid") if k in opts}
        self.control = AsteriskControl(self.link, self.mapper, timeout=float(opts.get("action_timeout", 4.0)), **texts)
        prefix = f"driver.{config.name}."
        counters.gauge(prefix + "unmapped", lambda: self.mapper.unknown)
        counters.gauge(prefix + "orphans", lambda: self.mapper.orphans)
        counters.gauge(prefix + "queue_exit_causes_assumed", lambda: self.mapper.exits.assumed)

    async def run(self) -> None:
        await self.link.run()

    async def stop(self) -> None:
        await self.link.stop()

    async def action(self, name: str, fields: dict[str, Any] | None = None, timeout: float = 5.0) -> dict[str, str]:
        """Send an AMI action (call control); raises ActionError with the PBX's message."""
        return await self.link.action(name, fields, timeout)


__all__ = ["AsteriskDriver", "ActionError"]
