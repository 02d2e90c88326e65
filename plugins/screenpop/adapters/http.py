"""The HTTP CRM adapter: GET a URL template filled with the call, map the JSON answer.

    [plugins.screenpop.http]
    url = "https://crm.example/api/lookup?number={caller}"
    timeout = 1.0          # seconds per attempt
    retries = 1            # more attempts after a connection error, a timeout or a 5xx
    retry_backoff = 0.05   # seconds before the first retry, doubled for each next one
    cache_ttl = 60         # seconds an answer (found or not) is reused; 0 = no cache
    cache_size = 10000
    max_connections = 50   # lookups in flight at once; more fail at once ("CRM busy")
    headers = { Authorization = "Bearer ..." }
    verify = true          # TLS certificate check
    [plugins.screenpop.http.mapping]
    name = "data.customer.full_name"
    tickets = "data.open_tickets"

httpx, async: the pop's deadline is enforced on the event loop and a slow CRM only holds a
pooled connection. A lookup that misses the deadline keeps running (bounded by its own
timeout and retries) and fills the cache, so the call's "answered" pop usually has it.
Concurrent lookups of one URL share one request. At most `max_connections` requests are in
flight: a lookup beyond that fails at once ("CRM busy") instead of queueing in httpx's
connection pool, whose wait queue costs CPU per queued request on every change (with a
stuck CRM at 200 calls/s it blocked the event loop for seconds). 404 and 204 mean "no record" (cached);
any other 4xx, a 5xx after the retries, an unreachable CRM or invalid JSON raise
`LookupFailed`, which makes the pop partial. Failures are not cached.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections import OrderedDict
from typing import Any, Mapping

from ctid_plugins.screenpop.adapters import jsonmap, template
from ctid_plugins.screenpop.adapters.base import AdapterEnv, Lookup, LookupFailed, unknown_keys

KEYS = {"url", "timeout", "retries", "retry_backoff", "cache_ttl", "cache_size", "max_connections", "headers", "verify",
        "mapping"}
NOT_FOUND = (404, 204)


class TtlCache:
    """A bounded LRU of answers, each valid `ttl` seconds (monotonic clock)."""

    def __init__(self, ttl: float, size: int) -> None:
        self.ttl, self.size = ttl, size
        self._items: OrderedDict[str, tuple[float, Lookup]] = OrderedDict()

    def get(self, key: str) -> Lookup | None:
        item = self._items.get(key)
        if item is None:
            return None
        if item[0] < time.monotonic():
            del self._items[key]
            return None
        self._items.move_to_end(key)
        return item[1]

    def put(self, key: str, value: Lookup) -> None:
        if self.ttl <= 0:
            return
        self._items[key] = (time.monotonic() + self.ttl, value)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


def _num(options: Mapping[str, Any], key: str, low: float, high: float) -> str | None:
    value = options.get(key)
    if value is None:
        return None
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not low <= value <= high:
        return f"{key}: expected a number from {low:g} to {high:g}, got {value!r}"
    return None


class HttpAdapter:
    needs_number = True

    def __init__(self, options: Mapping[str, Any], env: AdapterEnv) -> None:
        self.env = env
        self.template: str = options["url"]
        self.timeout = float(options.get("timeout", 1.0))
        self.retries = int(options.get("retries", 1))
        self.backoff = float(options.get("retry_backoff", 0.05))
        self.headers = dict(options.get("headers", {}))
        self.verify = bool(options.get("verify", True))
        self.mapping = dict(options.get("mapping") or jsonmap.DEFAULT)
        self.cache = TtlCache(float(options.get("cache_ttl", 60)), int(options.get("cache_size", 10_000)))
        self.max_connections = int(options.get("max_connections", 50))
        self.client: Any = None
        self._inflight: dict[str, asyncio.Future[Lookup]] = {}

    @staticmethod
    def check(options: Mapping[str, Any]) -> list[str]:
        problems = unknown_keys(options, KEYS)
        if "url" not in options:
            problems.append("url: required: the lookup URL template, e.g. https://crm.example/api/lookup?number={caller}")
        elif (p := template.check(options["url"])) is not None:
            problems.append(f"url: {p}")
        for key, low, high in (("timeout", 0.001, 60), ("retries", 0, 5), ("retry_backoff", 0, 10),
                               ("cache_ttl", 0, 86_400), ("cache_size", 1, 10_000_000), ("max_connections", 1, 1000)):
            if (p := _num(options, key, low, high)) is not None:
                problems.append(p)
        for key in ("retries", "cache_size", "max_connections"):
            if isinstance(options.get(key), float):
                problems.append(f"{key}: expected an integer, got {options[key]!r}")
        headers = options.get("headers", {})
        if not isinstance(headers, Mapping) or not all(isinstance(v, str) for v in headers.values()):
            problems.append(f"headers: expected a table of header = \"value\", got {headers!r}")
        if not isinstance(options.get("verify", True), bool):
            problems.append(f"verify: expected true or false, got {options['verify']!r}")
        if "mapping" in options:
            problems += [f"mapping.{p}" if not p.startswith("expected") else f"mapping: {p}"
                         for p in jsonmap.check(options["mapping"])]
        return problems

    async def start(self) -> None:
        import httpx  # only sites that use the HTTP adapter pay for the import

        self.client = httpx.AsyncClient(timeout=self.timeout, headers=self.headers, verify=self.verify,
                                        follow_redirects=True,
                                        limits=httpx.Limits(max_connections=self.max_connections,
                                                            max_keepalive_connections=self.max_connections))

    async def close(self) -> None:
        for future in list(self._inflight.values()):
            future.cancel()
        if self.client is not None:
            await self.client.aclose()

    async def lookup(self, call: Mapping[str, str]) -> Lookup:
        url = template.fill(self.template, call)
        hit = self.cache.get(url)
        if hit is not None:
            self.env.count("http.cache_hits")
            return hit
        future = self._inflight.get(url)
        if future is None:
            if len(self._inflight) >= self.max_connections:
                self.env.count("http.busy")
                raise LookupFailed(f"CRM busy: {len(self._inflight)} lookups already waiting for it")
            future = self._inflight[url] = asyncio.ensure_future(self._fetch(url))
            future.add_done_callback(functools.partial(self._done, url))
        # shielded: a waiter given up on (deadline, shutdown) does not cancel the shared request
        return await asyncio.shield(future)

    def _done(self, url: str, future: asyncio.Future[Lookup]) -> None:
        self._inflight.pop(url, None)
        if not future.cancelled() and future.exception() is not None:
            self.env.count("http.errors")  # retrieved here, so nobody left waiting is no warning

    async def _fetch(self, url: str) -> Lookup:
        import httpx

        last = ""
        for attempt in range(self.retries + 1):
            if attempt:
                await asyncio.sleep(self.backoff * 2 ** (attempt - 1))
                self.env.count("http.retries")
            try:
                response = await self.client.get(url)
            except httpx.TimeoutException:
                last = f"CRM did not answer within {self.timeout:g}s"
                continue
            except httpx.HTTPError as exc:
                last = f"CRM unreachable: {type(exc).__name__}: {exc}"
                continue
            status = response.status_code
            if status in NOT_FOUND:
                return self._keep(url, Lookup())
            if status >= 500:
                last = f"CRM answered HTTP {status}"
                continue
            if status >= 300:
                raise LookupFailed(f"CRM answered HTTP {status}")
            try:
                doc = response.json()
            except ValueError as exc:
                raise LookupFailed(f"CRM answer is not valid JSON: {exc}") from None
            return self._keep(url, jsonmap.apply(doc, self.mapping))
        tries = self.retries + 1
        raise LookupFailed(last + (f" ({tries} attempts)" if tries > 1 else ""))

    def _keep(self, url: str, result: Lookup) -> Lookup:
        self.cache.put(url, result)
        return result
