"""The report's customer-type dimension from the screen pop: a call from a known contact gets
`customer_type` call data (vip/normal) when it rings an agent, the CDR keeps it in
x.data.customer_type, and `--by customer_type` groups by it (unknown callers: `unknown`)."""

from __future__ import annotations

import time

from sqlalchemy import select

from ctid.daemon import Daemon
from ctid.store.models import CDR
from ctid_plugins.reporting.config import Options
from ctid_plugins.reporting.report import build
from ctid_plugins.screenpop.plugin import ScreenPop
from ctid_plugins.screenpop.pop import customer_type
from helpers import wait_for
from screenpop_support import ANN, pop_config, seed


def test_customer_type_of_a_contact():
    assert customer_type({"vip": True, "level": "gold"}) == "vip"
    assert customer_type({"vip": False, "level": " VIP "}) == "vip"
    assert customer_type({"vip": False, "level": "gold"}) == "normal"
    assert customer_type({"vip": None, "level": None}) == "normal"


async def test_screen_pop_contact_sets_the_calls_customer_type(tmp_path):
    seed(f"sqlite:///{tmp_path}/ctid.db")  # Ann is a VIP contact
    daemon = Daemon(pop_config(tmp_path, 5038), extra_plugins={"screenpop": ScreenPop()})
    daemon.drivers.clear()  # the test plays the driver: the call's events are dispatched directly
    await daemon.start()
    t0 = time.time() - 120
    try:
        base = {"source": "asterisk", "queue": "sales", "direction": "inbound", "called": "800", "caller_name": None}
        for k, (call_id, caller) in enumerate((("vip.1", ANN), ("new.1", "+12025550199"))):
            t = t0 + k
            daemon.dispatch({**base, "type": "call.offered", "ts": t, "call_id": call_id, "caller": caller})
            daemon.dispatch({**base, "type": "call.queued", "ts": t, "call_id": call_id, "caller": caller})
            daemon.dispatch({**base, "type": "call.delivered", "ts": t + 2, "call_id": call_id, "caller": caller,
                             "agent": "1001", "device": "1001"})
            # the pop looks the caller up; a contact's customer type reaches the call's state
            await wait_for(lambda k=k: daemon.counters.get("plugins.screenpop.pops") >= k + 1)
            if caller == ANN:
                await wait_for(lambda c=call_id: daemon.state.calls[c].data.get("customer_type") == "vip")
            daemon.dispatch({**base, "type": "call.established", "ts": t + 4, "call_id": call_id, "caller": caller,
                             "agent": "1001", "device": "1001"})
            daemon.dispatch({**base, "type": "call.cleared", "ts": t + 30, "call_id": call_id, "caller": caller,
                             "agent": "1001", "device": "1001"})
        assert daemon.counters.get("plugins.screenpop.customer_types") == 1  # only Ann is a contact
        engine = daemon.store.engine
        await wait_for(lambda: len(_cdrs(engine)) == 2)
        assert _cdrs(engine) == {"new.1": None, "vip.1": {"data": {"customer_type": "vip"}}}
        report = build(engine, t0 - 900, t0 + 900, ["customer_type"], Options(), now=time.time())
        assert {r.labels: r.kpis["answered"] for r in report.rows} == {("unknown",): 1, ("vip",): 1}
    finally:
        await daemon.stop()


def _cdrs(engine) -> dict:
    with engine.connect() as conn:
        return {r.call_id: r.x for r in conn.execute(select(CDR.c.call_id, CDR.c.x).where(CDR.c.call_id.in_(["vip.1", "new.1"])))}
