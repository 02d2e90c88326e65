"""The screen pop end to end with the simulator as the PBX: the simulated call center rings its
agents, each agent's desktop gets exactly the pops of the calls that rang it (with the
customer from the contact store and the region), and a desktop whose agent is never rung
gets nothing."""

from __future__ import annotations

import asyncio
from collections import Counter

from helpers import Subscriber, wait_for
from screenpop_support import pop_config
from ctid.daemon import Daemon
from ctid.drivers.asterisk.sim import AmiSimulator
from ctid.store.engine import make_engine
from ctid_plugins.screenpop.contacts.store import ContactStore
from ctid_plugins.screenpop.numbers import NumberPlan
from ctid_plugins.screenpop.plugin import ScreenPop


def _seed_every_dc_number(url: str) -> None:
    """The simulator's US callers are +1202555NNNN: every one of them is a known customer."""
    store = ContactStore(make_engine(url), NumberPlan())
    store.create_tables()
    store.upsert_many({"number": f"+1202555{n:04d}", "name": f"Customer {n:04d}", "company": "DC Corp",
                       "vip": n % 10 == 0} for n in range(100, 10000))


def _presented(number: str) -> str | None:
    """The caller id as the normalized event carries it: a withheld number is nil."""
    return None if number == "anonymous" else number


async def test_simulated_rings_pop_on_the_rung_agents_desktop_only(tmp_path):
    url = f"sqlite:///{tmp_path}/ctid.db"
    _seed_every_dc_number(url)
    sim = AmiSimulator(seed=77, speed=40.0, paused=True)
    rings: list = []
    sim.model.sinks.append(lambda h: rings.append(h) if h.kind in ("ring", "connect") else None)
    _, port = await sim.start()
    agents = sorted(a.ext for a in sim.model.agents.values())
    daemon = Daemon(pop_config(tmp_path, port, history=3), extra_plugins={"screenpop": ScreenPop()})
    desks = {ext: Subscriber(daemon.config.bus.pub, f"screenpop.hq.{ext}.") for ext in agents}
    nobody = Subscriber(daemon.config.bus.pub, "screenpop.hq.9999.")  # no such agent: never rung
    try:
        await daemon.start()
        await wait_for(lambda: daemon.counters.get("driver.asterisk.resyncs") >= 1)
        await wait_for(lambda: daemon.counters.get("bus.subscribe") >= len(agents) + 1)
        sim.resume()
        await asyncio.sleep(6)  # 240 simulated seconds
        sim.pause()
        # all desks at once: one after the other, the quiet second was paid once per agent (8 s)
        await asyncio.gather(*(desk.drain(quiet=1.0) for desk in desks.values()), nobody.drain(quiet=1.0))

        assert nobody.events == []
        pops = 0
        for ext, desk in desks.items():
            got = [pop for _, pop in desk.events]
            assert all(topic == f"screenpop.hq.{ext}.pop" and pop["agent"] == ext for topic, pop in desk.events)
            # exactly the calls the simulator rang (and connected) at this agent, no one else's
            rung = Counter(_presented(h.call.number) for h in rings if h.kind == "ring" and h.agent.ext == ext)
            answered = Counter(_presented(h.call.number) for h in rings if h.kind == "connect" and h.agent.ext == ext)
            assert Counter(p["caller_raw"] for p in got if p["phase"] == "ringing") == rung, ext
            assert Counter(p["caller_raw"] for p in got if p["phase"] == "answered") == answered, ext
            for pop in got:
                number = pop["caller_raw"]
                if number and number.startswith("+1202555"):
                    assert pop["known"] is True and pop["contact"]["name"] == f"Customer {number[-4:]}"
                    assert pop["contact"]["vip"] is (int(number[-4:]) % 10 == 0)
                    assert pop["region"] == "US, Washington DC"
                elif number is None:
                    assert (pop["known"], pop["reason"], pop["contact"]) == (False, "no_caller_id", None)
                else:
                    region = "China, mobile (China Mobile)" if number.startswith("+86138") else "UK, London"
                    assert (pop["known"], pop["reason"], pop["region"]) == (False, "not_found", region)
                assert pop["partial"] is False and pop["errors"] == []
                assert pop["call"]["queue"] in sim.model.queues
            pops += len(got)
        assert sum(1 for h in rings if h.kind == "ring") >= 10
        assert daemon.counters.get("plugins.screenpop.pops") == pops
    finally:
        for sub in (*desks.values(), nobody):
            sub.close()
        await daemon.stop()
        await sim.stop()
