"""The plugin host: finds plugins (entry points `ctid.plugins`), enables them by name,
hands each a typed context, and isolates them from the daemon and from each other.

pluggy calls every implementation of a hook in one go and stops at the first
exception; a daemon cannot live with that. So the host calls each plugin on its
own: every plugin has its own event queue, worker task and worker thread; every
call is bounded by a timeout; failures are logged with the plugin's name, counted,
and after `max_failures` in a row the plugin is disabled. Events keep flowing to
the others, and nothing on the daemon's hot path waits for a plugin.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import inspect
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable, Mapping

import pluggy

from ctid import hookspecs
from ctid.bus import RequestError
from ctid.metrics import Counters
from ctid.teams import NO_TEAMS, Teams

log = logging.getLogger("ctid.plugins")

ENTRY_POINT_GROUP = "ctid.plugins"
Event = dict[str, Any]


@dataclass
class PluginContext:
    """What a plugin gets from the daemon: explicit, never through globals."""

    name: str
    options: Mapping[str, Any]
    site: str
    database_url: str
    publish: Callable[[Event], None]  # thread-safe; the event goes through state, bus, store, plugins
    snapshot: Callable[[], dict[str, Any]]  # the live calls/agents/queues, as the `snapshot` op gives them
    counters: Counters
    log: logging.Logger
    #: The site's `[[queue]]` service-level seconds by queue name (where a queue sets one).
    service_levels: Mapping[str, float] = field(default_factory=dict)
    #: The site's `[[team]]` tables: each agent's team, each team's agents and queues.
    teams: Teams = NO_TEAMS

    def count(self, what: str, n: int = 1) -> None:
        """Increment this plugin's counter `plugins.<name>.<what>` (shown by the `stats` op)."""
        self.counters.inc(f"plugins.{self.name}.{what}", n)


@dataclass
class _Plugin:
    name: str
    obj: Any
    version: str
    impls: dict[str, Any] = field(default_factory=dict)  # hook name -> HookImpl
    ctx: PluginContext | None = None
    wants: tuple[frozenset[str], tuple[str, ...]] | None = None  # (exact types, prefixes); None = all
    queue: asyncio.Queue | None = None
    worker: asyncio.Task | None = None
    executor: ThreadPoolExecutor | None = None
    failures: int = 0  # in a row
    disabled: str | None = None  # why


class PluginHost:
    def __init__(self, enabled: tuple[str, ...], options: Mapping[str, Mapping[str, Any]], counters: Counters, *,
                 timeout: float = 2.0, max_failures: int = 5, queue_size: int = 10_000,
                 builtins: Mapping[str, Any] | None = None) -> None:
        self.enabled = tuple(enabled)
        self.options = options
        self.counters = counters
        self.timeout = timeout
        self.max_failures = max_failures
        self.queue_size = queue_size
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, _Plugin] = {}
        self.failed: dict[str, str] = {}  # enabled but could not be loaded: name -> why
        self._builtins = dict(builtins or {})
        self._active: list[_Plugin] = []  # plugins with a ctid_event worker

    # -- loading -------------------------------------------------------------------------

    @staticmethod
    def installed() -> dict[str, EntryPoint]:
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}

    def load(self) -> None:
        """Import and register the enabled plugins. One that fails is logged, counted, skipped."""
        found = self.installed()
        for name in self.enabled:
            try:
                if name in self._builtins:
                    obj, version = self._builtins[name], "builtin"
                elif name in found:
                    ep = found[name]
                    obj, version = ep.load(), (ep.dist.version if ep.dist else "?")
                else:
                    raise LookupError(f"not installed (installed: {', '.join(sorted(found)) or 'none'})")
                self.pm.register(obj, name=name)
            except Exception as exc:  # an ImportError, a broken module, a bad hookimpl signature
                self.failed[name] = f"{type(exc).__name__}: {exc}"
                self.counters.inc(f"plugins.{name}.load_errors")
                log.error("plugin not loaded", extra={"ctx": {"plugin": name, "error": self.failed[name]}})
                continue
            plugin = _Plugin(name, obj, version)
            for hook in ("ctid_config_check", "ctid_startup", "ctid_shutdown", "ctid_event_types", "ctid_event",
                         "ctid_request_ops", "ctid_route"):
                for impl in getattr(self.pm.hook, hook).get_hookimpls():
                    if impl.plugin is obj:
                        plugin.impls[hook] = impl
            self.plugins[name] = plugin

    def check_config(self) -> list[str]:
        """Each plugin checks its own `[plugins.NAME]` table; errors carry the key path."""
        errors = []
        for p in self.plugins.values():
            impl = p.impls.get("ctid_config_check")
            if impl is None:
                continue
            try:
                problems = impl.function(**self._args(impl, options=self.options.get(p.name, {}))) or []
            except Exception as exc:
                problems = [f": the plugin's config check failed: {exc!r}"]
            errors += [f"plugins.{p.name}.{problem}" for problem in problems]
        return errors

    @staticmethod
    def _args(impl: Any, **available: Any) -> dict[str, Any]:
        # pluggy lets an implementation take any subset of the spec's arguments.
        return {k: available[k] for k in impl.argnames}

    # -- calling one plugin, isolated ---------------------------------------------------

    def _fail(self, p: _Plugin, hook: str, reason: str) -> None:
        p.failures += 1
        self.counters.inc(f"plugins.{p.name}.failures")
        log.warning("plugin call failed", extra={"ctx": {"plugin": p.name, "hook": hook, "reason": reason, "in_a_row": p.failures}})
        if p.failures >= self.max_failures and p.disabled is None:
            self.disable(p, f"{p.failures} failures in a row, last: {reason}")

    def disable(self, p: _Plugin, why: str) -> None:
        p.disabled = why
        self.counters.inc(f"plugins.{p.name}.disabled")
        log.error("plugin disabled", extra={"ctx": {"plugin": p.name, "reason": why}})
        if p in self._active:
            self._active.remove(p)
        if p.worker is not None and p.worker is not asyncio.current_task():
            p.worker.cancel()

    async def _run(self, p: _Plugin, hook: str, fn: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        """Call fn bounded by the timeout; sync code goes to the plugin's own thread."""
        try:
            if inspect.iscoroutinefunction(fn):
                result = await asyncio.wait_for(fn(**kwargs), self.timeout)
            else:
                loop = asyncio.get_running_loop()
                # in the request's context: an op reads who asked (`ctid.bus.current_client`) from it
                call = functools.partial(contextvars.copy_context().run, fn, **kwargs)
                result = await asyncio.wait_for(loop.run_in_executor(p.executor, call), self.timeout)
                if inspect.isawaitable(result):
                    result = await asyncio.wait_for(result, self.timeout)
        except asyncio.TimeoutError:
            self.counters.inc(f"plugins.{p.name}.timeouts")
            self._fail(p, hook, f"no answer within {self.timeout:g}s")
            raise
        except asyncio.CancelledError:
            raise
        except RequestError:
            p.failures = 0  # an op's clear refusal (bad_request, not_found...) is an answer, not a failure
            raise
        except Exception as exc:
            log.debug("plugin raised", exc_info=True, extra={"ctx": {"plugin": p.name, "hook": hook}})
            self._fail(p, hook, f"{type(exc).__name__}: {exc}")
            raise
        p.failures = 0
        return result

    async def _call(self, p: _Plugin, hook: str, **available: Any) -> Any:
        impl = p.impls.get(hook)
        if impl is None or p.disabled:
            return None
        try:
            return await self._run(p, hook, impl.function, self._args(impl, **available))
        except (asyncio.TimeoutError, Exception):
            return None

    # -- lifecycle -----------------------------------------------------------------------

    async def start(self, make_context: Callable[[str, Mapping[str, Any]], PluginContext],
                    register_op: Callable[[str, Callable, str], None]) -> None:
        for p in self.plugins.values():
            p.ctx = make_context(p.name, self.options.get(p.name, {}))
            p.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"plugin-{p.name}")
            if "ctid_startup" in p.impls:
                try:
                    await self._run(p, "ctid_startup", p.impls["ctid_startup"].function,
                                    self._args(p.impls["ctid_startup"], ctx=p.ctx))
                except (asyncio.TimeoutError, Exception) as exc:
                    self.disable(p, f"startup failed: {exc!r}")
                    continue
            if not self._register_ops(p, register_op):
                continue
            if "ctid_event" in p.impls:
                p.wants = self._wants(p)
                p.queue = asyncio.Queue(self.queue_size)
                p.worker = asyncio.ensure_future(self._worker(p))
                self._active.append(p)
        log.info("plugins started", extra={"ctx": {"enabled": ",".join(self.plugins), "failed": ",".join(self.failed)}})

    def _wants(self, p: _Plugin) -> tuple[frozenset[str], tuple[str, ...]] | None:
        impl = p.impls.get("ctid_event_types")
        if impl is None:
            return None
        types = impl.function() or None
        if types is None:
            return None
        return frozenset(t for t in types if not t.endswith(".")), tuple(t for t in types if t.endswith("."))

    def _register_ops(self, p: _Plugin, register_op: Callable[[str, Callable, str], None]) -> bool:
        impl = p.impls.get("ctid_request_ops")
        if impl is None:
            return True
        try:
            ops = dict(impl.function(**self._args(impl, ctx=p.ctx)) or {})
            for op, handler in ops.items():
                register_op(op, self._guard_op(p, op, handler), f"{(handler.__doc__ or '').strip().splitlines()[0] if handler.__doc__ else op} (plugin {p.name})")
        except Exception as exc:
            self.disable(p, f"request ops: {exc}")
            return False
        return True

    def _guard_op(self, p: _Plugin, op: str, handler: Callable) -> Callable:
        async def guarded(request: dict[str, Any]) -> Any:
            if p.disabled:
                raise RequestError("plugin_disabled", f"plugin {p.name} is disabled: {p.disabled}")
            try:
                return await self._run(p, f"op {op}", handler, {"request": request} if _takes_request(handler) else {})
            except asyncio.TimeoutError:
                raise RequestError("timeout", f"plugin {p.name} did not answer {op} within {self.timeout:g}s") from None

        return guarded

    def dispatch(self, event: Event) -> None:
        """The hot path: queue the event for every plugin that wants it; never waits."""
        etype = event["type"]
        for p in self._active:
            wants = p.wants
            if wants is not None and etype not in wants[0] and not etype.startswith(wants[1]):
                continue
            try:
                p.queue.put_nowait(event)  # type: ignore[union-attr]
            except asyncio.QueueFull:
                self.counters.inc(f"plugins.{p.name}.dropped")

    async def _worker(self, p: _Plugin) -> None:
        queue = p.queue
        assert queue is not None
        impl = p.impls["ctid_event"]
        takes_ctx = "ctx" in impl.argnames
        while True:
            event = await queue.get()
            if event is None:
                return
            kwargs = {"event": event, "ctx": p.ctx} if takes_ctx else {"event": event}
            try:
                await self._run(p, "ctid_event", impl.function, kwargs)
                self.counters.inc(f"plugins.{p.name}.events")
            except (asyncio.TimeoutError, Exception):
                if p.disabled:
                    return  # disabled by this very failure: drop the queue, stop calling it
            finally:
                queue.task_done()

    async def stop(self, drain: float = 5.0) -> None:
        """Let each worker finish what is queued (bounded), then call ctid_shutdown."""
        for p in list(self._active):
            try:
                p.queue.put_nowait(None)  # type: ignore[union-attr]
            except asyncio.QueueFull:
                p.worker.cancel()  # type: ignore[union-attr]
        workers = [p.worker for p in self.plugins.values() if p.worker is not None]
        if workers:
            done, pending = await asyncio.wait(workers, timeout=drain)
            for task in pending:
                task.cancel()
        for p in self.plugins.values():
            if not p.disabled:
                await self._call(p, "ctid_shutdown", ctx=p.ctx)
            if p.executor is not None:
                p.executor.shutdown(wait=False, cancel_futures=True)

    def route(self, request: Mapping[str, Any], decision: Mapping[str, Any]) -> Mapping[str, Any]:
        """Let plugins veto or adjust a routing decision (`ctid_route`, first non-None wins).

        Sync and on the routing path, so a plugin that raises is counted and skipped
        (the decision stands) rather than awaited; a slow one only delays its own call.
        """
        for p in self.plugins.values():
            impl = p.impls.get("ctid_route")
            if impl is None or p.disabled:
                continue
            try:
                result = impl.function(**self._args(impl, request=request, decision=decision, ctx=p.ctx))
            except Exception as exc:
                self._fail(p, "ctid_route", f"{type(exc).__name__}: {exc}")
                continue
            if result is not None:
                self.counters.inc(f"plugins.{p.name}.route_changes")
                return result
        return decision

    def status(self) -> list[dict[str, Any]]:
        rows = [{"name": p.name, "version": p.version, "loaded": True, "disabled": p.disabled,
                 "failures_in_a_row": p.failures, "events": self.counters.get(f"plugins.{p.name}.events"),
                 "failures": self.counters.get(f"plugins.{p.name}.failures"),
                 "dropped": self.counters.get(f"plugins.{p.name}.dropped")} for p in self.plugins.values()]
        rows += [{"name": n, "loaded": False, "error": why} for n, why in self.failed.items()]
        return rows


def _takes_request(handler: Callable) -> bool:
    try:
        return len(inspect.signature(handler).parameters) >= 1
    except (TypeError, ValueError):
        return True


def on_loop_thread(loop: asyncio.AbstractEventLoop, func: Callable[[Event], None]) -> Callable[[Event], None]:
    """Wrap `func` so calls from other threads (sync plugins) are handed to the loop."""
    owner = threading.get_ident()

    def call(event: Event) -> None:
        if threading.get_ident() == owner:
            func(event)
        else:
            loop.call_soon_threadsafe(func, event)

    return call
