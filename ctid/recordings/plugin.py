"""The recordings feature as a plugin the daemon starts: `recordings = "ctid.recordings.plugin:plugin"`.

Enable it with `[plugins] enabled = ["recordings"]`. At start it rebuilds the index from the
database in a background thread (10 million recordings take longer than the plugin timeout);
events that arrive meanwhile are held and applied after the rebuild, and `recordings.search`
answers `unavailable` until then. Its hooks only hand over to `RecordingService`.

`[plugins.recordings]` options: `pattern` (file name regex for `ctid recordings scan`),
`start_format` (strptime format of its `start` group), `retention_days` (default age for
`ctid recordings retention`).
"""

from __future__ import annotations

import argparse
import re
import threading
from typing import TYPE_CHECKING, Any, Callable, Mapping

from ctid.hookspecs import hookimpl

if TYPE_CHECKING:
    from ctid.plugins import PluginContext
    from ctid.recordings.service import RecordingService

OPTIONS = ("pattern", "start_format", "retention_days")


def check_options(options: Mapping[str, Any]) -> list[str]:
    """Every problem of a `[plugins.recordings]` table, with its key path."""
    errors = [f"plugins.recordings.{k}: unknown key (known: {', '.join(OPTIONS)})" for k in options if k not in OPTIONS]
    pattern = options.get("pattern")
    if pattern is not None:
        try:
            if not isinstance(pattern, str) or "start" not in re.compile(pattern).groupindex:
                errors.append("plugins.recordings.pattern: a regular expression with a (?P<start>...) group")
        except re.error as exc:
            errors.append(f"plugins.recordings.pattern: not a regular expression ({exc})")
    if "start_format" in options and not isinstance(options["start_format"], str):
        errors.append("plugins.recordings.start_format: expected a strptime format string")
    days = options.get("retention_days")
    if days is not None and (isinstance(days, bool) or not isinstance(days, (int, float)) or days <= 0):
        errors.append(f"plugins.recordings.retention_days: expected a number of days > 0, got {days!r}")
    return errors


class RecordingsPlugin:
    """One instance per daemon (or the module's `plugin` for the installed entry point)."""

    def __init__(self) -> None:
        self.service: RecordingService | None = None
        self.ready = threading.Event()
        self._held: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._loader: threading.Thread | None = None

    @hookimpl
    def ctid_config_check(self, options: Mapping[str, Any]) -> list[str]:
        return check_options(options)

    @hookimpl
    def ctid_startup(self, ctx: PluginContext) -> None:
        from ctid.recordings.service import RecordingService

        self.ready.clear()  # the installed `plugin` object lives as long as the process, not one daemon
        self._held = []
        self.service = RecordingService(ctx.database_url, ctx.counters, ctx.site, teams=ctx.teams)
        self._loader = threading.Thread(target=self._rebuild, name="recordings-rebuild", daemon=True)
        self._loader.start()

    def _rebuild(self) -> None:
        assert self.service is not None
        self.service.start()
        with self._lock:  # events that came during the rebuild, in their order
            held, self._held = self._held, []
            for event in held:
                self.service.observe(event)
            self.ready.set()

    @hookimpl
    def ctid_shutdown(self) -> None:
        if self._loader is not None:
            self._loader.join()
        if self.service is not None:
            self.service.close()

    @hookimpl
    def ctid_event_types(self) -> set[str]:
        from ctid.recordings.feed import EVENT_TYPES

        return set(EVENT_TYPES)

    @hookimpl
    def ctid_event(self, event: dict[str, Any]) -> None:
        with self._lock:
            if not self.ready.is_set():
                self._held.append(event)
                return
        assert self.service is not None
        self.service.observe(event)

    @hookimpl
    def ctid_request_ops(self) -> Mapping[str, Callable[[dict[str, Any]], Any]]:
        return {"recordings.search": self.search, "recordings.retention": self.retention}

    def search(self, request: dict[str, Any]) -> dict[str, Any]:
        """recordings.search: recordings matching the query fields, as `principal` may see them"""
        from ctid.bus import RequestError, current_client
        from ctid.recordings.query import QueryError

        if not self.ready.is_set() or self.service is None:
            raise RequestError("unavailable", "the recording index is being rebuilt from the database")
        who = current_client.get()
        if who is not None and who.key is not None and who.kind != "admin":
            # a secured bus: the query runs as the client key's role, whatever the request says
            request = {**request, "principal": who.role}
        try:
            return self.service.search_request(request)
        except QueryError as exc:
            raise RequestError("bad_request", str(exc)) from None

    def retention(self, request: dict[str, Any]) -> dict[str, Any]:
        """recordings.retention: list (and with apply, delete) a page of recordings older than `days`; admin only"""
        from ctid.bus import RequestError, current_client
        from ctid.recordings.query import QueryError

        if not self.ready.is_set() or self.service is None:
            raise RequestError("unavailable", "the recording index is being rebuilt from the database")
        who = current_client.get()
        if who is not None and who.key is not None:  # a secured bus: the client key's role
            if who.kind != "admin":
                raise RequestError("forbidden", f"recordings.retention is for admin keys, not {who.role}")
        elif request.get("principal") != "admin":  # a plain bus: what the request says, like a search
            raise RequestError("forbidden", f"recordings.retention runs as principal 'admin', not "
                                            f"{request.get('principal')!r}")
        try:
            return self.service.retention_request(request)
        except QueryError as exc:
            raise RequestError("bad_request", str(exc)) from None

    @hookimpl
    def ctid_cli(self, subparsers: argparse._SubParsersAction) -> None:
        from ctid.recordings.cli import add_commands

        add_commands(subparsers)


plugin = RecordingsPlugin()
