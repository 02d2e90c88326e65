"""The screen pop's parts on their own: number normalization, the prefix table, URL
templates, the JSON mapping, and the HTTP adapter's cache, retries and shared requests
against a real local HTTP server."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import create_engine

from screenpop_support import ANN, FakeCrm
from ctid.metrics import Counters
from ctid_plugins.screenpop.adapters import jsonmap, template
from ctid_plugins.screenpop.adapters.base import AdapterEnv, LookupFailed
from ctid_plugins.screenpop.adapters.http import HttpAdapter
from ctid_plugins.screenpop.numbers import NumberPlan, normalize
from ctid_plugins.screenpop.regions import RegionTable, sample_path

US = NumberPlan(country_code="1", national_prefix="1", international_prefix="011")
CN = NumberPlan(country_code="86")


@pytest.mark.parametrize("raw, plan, expected", [
    ("+1 (202) 555-0111", NumberPlan(), ("+12025550111", None)),
    ("tel:+86-138-1234-5678", NumberPlan(), ("+8613812345678", None)),
    ("0012025550111", NumberPlan(), ("+12025550111", None)),
    ("2025550111", US, ("+12025550111", None)),
    ("12025550111", US, ("+12025550111", None)),
    ("01186 10 1234 5678", US, ("+861012345678", None)),
    ("13812345678", CN, ("+8613812345678", None)),
    ("010 1234 5678", CN, ("+861012345678", None)),
    ("1001", CN, ("1001", None)),  # an extension stays as dialled
    ("2025550111", NumberPlan(), ("2025550111", None)),  # no country code: no guess
    (None, NumberPlan(), (None, "no_caller_id")),
    ("  ", NumberPlan(), (None, "no_caller_id")),
    ("anonymous", NumberPlan(), (None, "invalid_number")),
    ("sip:bob@example.com", NumberPlan(), (None, "invalid_number")),
    ("+12", NumberPlan(), (None, "invalid_number")),
    ("+1234567890123456", NumberPlan(), (None, "invalid_number")),
    ("+1-202-abc", NumberPlan(), (None, "invalid_number")),
])
def test_normalize(raw, plan, expected):
    assert normalize(raw, plan) == expected


def test_prefix_table_longest_prefix_wins_and_bad_rows_are_named(tmp_path):
    table, problems = RegionTable.load(sample_path())
    assert problems == [] and len(table) > 40
    assert table.lookup("+12025550111") == "US, Washington DC"
    assert table.lookup("+19995550111") == "US/Canada"  # an area code the sample lacks: the country
    assert table.lookup("+861012345678") == "China, Beijing"
    assert table.lookup("+8675512345678") == "China, Guangdong (Shenzhen)"
    assert table.lookup("+8613912345678") == "China, mobile (China Mobile)"
    assert table.lookup("+8618612345678") == "China, mobile (China Unicom)"
    assert table.lookup("+4930123456") is None and table.lookup(None) is None
    path = tmp_path / "regions.csv"
    path.write_text("prefix,region\n# local\n0755,Shenzhen\n075,Guangdong\n\n+44 20,London\nabc,Nowhere\n"
                    "+33,\n0755,Again\n+49,Germany,extra\n")
    table, problems = RegionTable.load(path)
    assert table.lookup("07551234567") == "Shenzhen" and table.lookup("0751234") == "Guangdong"
    assert table.lookup("+442071234567") == "London"
    assert problems == ["line 7: 'abc' is not a number prefix (digits, optionally after +)",
                        "line 8: empty region for prefix +33",
                        "line 9: prefix 0755 is already on line 3",
                        "line 10: expected 2 fields (prefix,region), got 3"]


def test_templates_and_json_mapping():
    assert template.check("https://crm/x?n={caller}&q={queue}") is None
    assert "unknown field {callr}" in template.check("https://crm/x?n={callr}")
    assert "format specs" in template.check("https://crm/x?n={caller:>10}")
    assert "http:// or https://" in template.check("ftp://crm/{caller}")
    assert template.fill("https://crm/x?n={caller}&q={queue}", {"caller": "+1 2", "queue": None}) == "https://crm/x?n=%2B1%202&q="
    doc = {"data": {"results": [{"full": "Ann", "flags": {"vip": "yes"}, "tier": 3}], "tickets": {"id": 1}}}
    found = jsonmap.apply(doc, {"name": "data.results.0.full", "vip": "data.results.0.flags.vip",
                                "custom.tier": "data.results.0.tier", "tickets": "data.tickets"})
    assert found.contact == {"name": "Ann", "company": None, "level": None, "notes": None, "vip": True, "custom": {"tier": 3}}
    assert found.tickets == [{"id": 1}]
    assert jsonmap.apply({"name": None, "unrelated": 1}).contact is None  # nothing of a record: not found
    assert jsonmap.apply([], {"name": "0.name"}).contact is None
    assert jsonmap.check({"nam": "a", "name": "", "custom.x": "a..b"}) == [
        "nam: not a pop field (fields: name, company, level, vip, notes, custom, tickets, url, custom.<key>)",
        "name: expected a dotted path such as \"data.customer.name\", got ''",
        "custom.x: expected a dotted path such as \"data.customer.name\", got 'a..b'"]


def _adapter(url: str, **options) -> tuple[HttpAdapter, Counters]:
    counters = Counters()
    env = AdapterEnv(name="http", engine=create_engine("sqlite://"), plan=NumberPlan(),  # not used by this adapter
                     log=logging.getLogger("test"), count=lambda what, n=1: counters.inc(f"plugins.screenpop.{what}", n))
    assert HttpAdapter.check({"url": url, **options}) == []
    return HttpAdapter({"url": url, **options}, env), counters


async def test_http_cache_shared_requests_and_not_found():
    crm = FakeCrm()
    crm.answers[ANN] = ("json", {"name": "Ann Lee", "vip": True})
    adapter, counters = _adapter(crm.url, cache_ttl=60)
    await adapter.start()
    try:
        call = {"caller": ANN}
        first, second = await asyncio.gather(adapter.lookup(call), adapter.lookup(call))
        assert first.contact["name"] == "Ann Lee" and second is first
        assert crm.hits[ANN] == 1  # two pops at once, one request
        assert (await adapter.lookup(call)).contact["vip"] is True
        assert crm.hits[ANN] == 1 and counters.get("plugins.screenpop.http.cache_hits") == 1
        unknown = {"caller": "+12025550000"}
        assert (await adapter.lookup(unknown)).contact is None  # 404: no record, cached too
        assert (await adapter.lookup(unknown)).contact is None and crm.hits["+12025550000"] == 1
    finally:
        await adapter.close()
        crm.close()


async def test_http_failures_are_clear_and_not_cached():
    crm = FakeCrm()
    crm.answers.update({"+1500": ("status", 503), "+1403": ("status", 403), "+1bad": ("raw", b'{"name": ')})
    adapter, counters = _adapter(crm.url.replace("{caller}", "%2B1{caller}"), retries=2, retry_backoff=0.001)
    await adapter.start()
    try:
        with pytest.raises(LookupFailed, match=r"^CRM answered HTTP 503 \(3 attempts\)$"):
            await adapter.lookup({"caller": "500"})
        assert crm.hits["+1500"] == 3 and counters.get("plugins.screenpop.http.retries") == 2
        with pytest.raises(LookupFailed, match=r"^CRM answered HTTP 403$"):
            await adapter.lookup({"caller": "403"})
        assert crm.hits["+1403"] == 1  # a client error is not retried
        with pytest.raises(LookupFailed, match="not valid JSON"):
            await adapter.lookup({"caller": "bad"})
        crm.answers["+1500"] = ("json", {"name": "Back"})
        assert (await adapter.lookup({"caller": "500"})).contact["name"] == "Back"  # failures were not cached
    finally:
        await adapter.close()
        crm.close()
    dead, _ = _adapter("http://127.0.0.1:9/lookup?n={caller}", retries=1, retry_backoff=0.001)
    await dead.start()
    try:
        with pytest.raises(LookupFailed, match=r"^CRM unreachable: ConnectError: .*\(2 attempts\)$"):
            await dead.lookup({"caller": ANN})
    finally:
        await dead.close()


async def test_a_late_answer_fills_the_cache_for_the_next_pop():
    crm = FakeCrm()
    crm.answers[ANN] = ("hang", None)
    adapter, _ = _adapter(crm.url, timeout=5)
    await adapter.start()
    try:
        lookup = asyncio.ensure_future(adapter.lookup({"caller": ANN}))
        done, _ = await asyncio.wait({lookup}, timeout=0.2)  # the pop's deadline passes
        assert not done
        crm.answers[ANN] = ("json", {"name": "Ann"})
        crm.release.set()  # the hanging request returns nothing: the retry gets the record
        await asyncio.wait_for(lookup, 10)
        assert (await adapter.lookup({"caller": ANN})).contact["name"] == "Ann"
        assert crm.hits[ANN] == 2
    finally:
        await adapter.close()
        crm.close()


async def test_a_stuck_crm_gets_at_most_max_connections_requests():
    """Beyond that a lookup fails at once: it never queues in the client's pool."""
    crm = FakeCrm()
    crm.answers.update({ANN: ("hang", None), "+12025550112": ("json", {"name": "Bob"})})
    adapter, counters = _adapter(crm.url, max_connections=1, timeout=5)
    await adapter.start()
    try:
        stuck = asyncio.ensure_future(adapter.lookup({"caller": ANN}))
        await asyncio.wait({stuck}, timeout=0.2)
        with pytest.raises(LookupFailed, match=r"^CRM busy: 1 lookups already waiting for it$"):
            await adapter.lookup({"caller": "+12025550112"})
        assert counters.get("plugins.screenpop.http.busy") == 1 and "+12025550112" not in crm.hits
        stuck.cancel()
    finally:
        await adapter.close()
        crm.close()
