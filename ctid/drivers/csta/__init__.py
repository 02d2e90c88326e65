"""The CSTA driver (Avaya AES DMCC-like XML, ECMA-323 ed3): protocol (bytes -> messages),
mapper (messages -> events), link (session, monitors, keep-alive, reconnect, resync,
routing), requests (what ctid asks) and sim (a stand-in server). See docs/csta.md."""

from __future__ import annotations

from typing import Any

from ctid.config import DriverConfig
from ctid.drivers import Sink
from ctid.drivers.csta.control import CstaControl
from ctid.drivers.csta.link import CstaLink, LinkError, LinkOptions
from ctid.drivers.csta.mapper import CstaMapper
from ctid.drivers.csta.protocol import CstaError
from ctid.drivers.csta.requests import Request
from ctid.drivers.csta.routing import DefaultRoute, EngineRoute, RouteChooser
from ctid.metrics import Counters

#: `[[driver]]` keys this driver reads besides host/port/username/secret.
OPTIONS = {
    "application_id": "the application id StartApplicationSession sends (default `ctid`)",
    "devices": "agent stations (extensions) to monitor, ask agent state of and snapshot (list of strings)",
    "acd_devices": "ACD splits / skills / VDNs to monitor and snapshot (list of strings)",
    "route_devices": "routing devices (VDNs with an adjunct-route step) to register for RouteRequest (list)",
    "default_route": "RouteSelect destination when no routing engine decides (string; unset: no answer)",
    "routes": "RouteSelect destination per routing device ({device = destination})",
    "tls": "connect with TLS (bool, default false; true when ca_file is set)",
    "ca_file": "CA certificate file that signs the server's TLS certificate",
    "reason_codes": "not-ready reason code -> reason name ({\"1\" = \"Lunch\"}; unmapped codes pass as is)",
    "wrapup": "after-call work seconds per ACD group, for agent.acw durations ({group = seconds}; default: [[queue]] wrapuptime)",
    "agent_names": "agent id -> name for agent events ({\"1001\" = \"Alice\"}; default: [[queue]] member names)",
    "internal_digits": "dialled numbers up to this many digits are internal calls (int, default 5)",
    "session_duration": "requested application session duration in seconds (default 180)",
    "keepalive": "seconds between ResetApplicationSessionTimer (default: a third of the session duration)",
    "connect_timeout": "seconds to wait for the TCP connection (default 5)",
    "request_timeout": "seconds to wait for the answer to a request (default 5)",
    "resync_timeout": "seconds to wait for each snapshot / agent state answer (default 10)",
    "backoff_max": "longest wait between reconnects in seconds (default 30)",
    "action_timeout": "seconds to wait for the server to answer a control request (default 4)",
}


def _strings(value: Any, key: str, name: str) -> tuple[str, ...]:
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, (str, int)) for v in value):
        raise ValueError(f"driver {name}: option {key} must be a list of device ids")
    return tuple(str(v) for v in value)


class CstaDriver:
    kind = "csta"

    def __init__(self, config: DriverConfig, sink: Sink, counters: Counters,
                 router: RouteChooser | None = None) -> None:
        opts = dict(config.options)
        unknown = set(opts) - set(OPTIONS)
        if unknown:
            raise ValueError(f"driver {config.name}: unknown option(s) {', '.join(sorted(unknown))}")
        self.name = config.name
        stations = _strings(opts.get("devices", []), "devices", config.name)
        self.mapper = CstaMapper(
            source=config.name, stations=stations,
            wrapup=config.wrapup(),
            reason_codes={str(k): str(v) for k, v in dict(opts.get("reason_codes", {})).items()},
            internal_digits=int(opts.get("internal_digits", 5)),
            agent_names=config.agent_names(),
        )
        link_opts = LinkOptions(
            config.host, config.port, config.username, config.secret,
            application_id=str(opts.get("application_id", "ctid")), stations=stations,
            acd_devices=_strings(opts.get("acd_devices", []), "acd_devices", config.name),
            route_devices=_strings(opts.get("route_devices", []), "route_devices", config.name),
            tls=bool(opts.get("tls", False)), ca_file=opts.get("ca_file"),
            session_duration=int(opts.get("session_duration", 180)),
        )
        for key in ("keepalive", "connect_timeout", "request_timeout", "resync_timeout", "backoff_max"):
            if key in opts:
                setattr(link_opts, key, float(opts[key]))
        # The configured routes answer RouteRequests unless the daemon attaches its routing engine.
        router = router or DefaultRoute(opts.get("default_route"), {str(k): str(v) for k, v in
                                                                    dict(opts.get("routes", {})).items()})
        self.link = CstaLink(config.name, link_opts, self.mapper, sink, counters, router)
        self.control = CstaControl(self.link, self.mapper, timeout=float(opts.get("action_timeout", 4.0)))
        prefix = f"driver.{config.name}."
        counters.gauge(prefix + "unmapped", lambda: self.mapper.unknown)
        counters.gauge(prefix + "orphans", lambda: self.mapper.orphans)

    def attach_routing(self, engine: Any) -> None:
        """ctid's routing engine answers this driver's RouteRequests (the daemon calls this
        when the site has `[routing]` rules)."""
        self.link.router = EngineRoute(engine, self.name)

    async def run(self) -> None:
        await self.link.run()

    async def stop(self) -> None:
        await self.link.stop()

    async def request(self, req: Request, timeout: float | None = None) -> dict[str, Any]:
        """Send a CSTA request (see requests.py); raises CstaError on a negative answer."""
        return await self.link.request(req, timeout)


__all__ = ["CstaDriver", "CstaError", "LinkError", "OPTIONS"]
