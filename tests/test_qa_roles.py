"""qa.* ops on a CURVE bus run as the client key's role: an agent key sees, acknowledges and
disputes only its own evaluations; only supervisor and admin keys sample and evaluate; a crm key
reads. Real CURVE sockets against a daemon whose keys are in its SQLite database."""

from __future__ import annotations

import dataclasses

from ctid.config import PluginsConfig
from ctid.daemon import Daemon
from ctid.security.keys import KeyStore
from ctid_plugins.qa.plugin import Qa
from helpers import free_port
from qa_support import qa_options
from reporting_support import HOUR, T0, database
from test_control_crm import secure_config
from test_qa_cli_ops import ALL_PASS
from test_security import Client


async def test_qa_ops_run_as_the_client_keys_role(tmp_path):
    url, engine = database(tmp_path)  # the hand-built hour: c1 (agent a1), c6 (agent a3) ...
    engine.dispose()
    cfg = secure_config(tmp_path, free_port())  # no PBX listens: the driver retries, the bus works
    cfg = dataclasses.replace(cfg, database=dataclasses.replace(cfg.database, url=url),
                              plugins=PluginsConfig(enabled=("qa",), options={"qa": qa_options()}))
    store = KeyStore(cfg.database.url)
    roles = ("admin", "supervisor:sales", "crm", "agent:a3", "agent:a1")
    keys = {role: store.new(role, label=role) for role in roles}
    daemon = Daemon(cfg, extra_plugins={"qa": Qa()})
    await daemon.start()
    clients = {role: Client(daemon, (info.key, secret)) for role, (info, secret) in keys.items()}
    admin, sup, crm, a3, a1 = (clients[r] for r in roles)

    async def ask(client, op, **params):
        reply = await client.ask(op, **params)
        assert reply is not None, f"{op}: no reply"
        return reply

    def forbidden(reply, *words):
        assert not reply["ok"] and reply["error"]["code"] == "forbidden", reply
        assert all(w in reply["error"]["message"] for w in words), reply["error"]["message"]

    try:
        # only supervisor and admin keys evaluate and sample
        ev6 = await ask(sup, "qa.evaluate", evaluator="sue", call_id="c6", answers=ALL_PASS)
        assert ev6["ok"] and ev6["result"]["agent"] == "a3"
        ev1 = await ask(admin, "qa.evaluate", evaluator="ann", call_id="c1", answers=ALL_PASS)
        assert ev1["ok"] and ev1["result"]["agent"] == "a1"
        for client, role in ((a3, "agent:a3"), (crm, "crm")):
            forbidden(await ask(client, "qa.evaluate", evaluator="me", call_id="c6", answers=ALL_PASS), "qa.evaluate", role)
            forbidden(await ask(client, "qa.sample", evaluator="me", since=T0, until=T0 + HOUR), role)
        assert (await ask(sup, "qa.sample", evaluator="sue", since=T0, until=T0 + HOUR))["ok"]

        # an agent key sees its own evaluations, named or not; another agent's is refused
        mine = await ask(a3, "qa.evaluations")
        assert mine["ok"] and [e["id"] for e in mine["result"]] == [ev6["result"]["id"]]
        assert [e["id"] for e in (await ask(a3, "qa.evaluations", agent="a3"))["result"]] == [ev6["result"]["id"]]
        forbidden(await ask(a3, "qa.evaluations", agent="a1"), "agent 'a1' is not you")
        # ... and answers only its own: a1 cannot dispute a3's, nor answer in a3's name
        forbidden(await ask(a1, "qa.dispute", id=ev6["result"]["id"], agent="a3", reason="not me"), "is not you")
        wrong = await ask(a1, "qa.dispute", id=ev6["result"]["id"], reason="not me")
        assert not wrong["ok"] and wrong["error"]["code"] == "bad_request" and "not 'a1'" in wrong["error"]["message"]
        ack = await ask(a3, "qa.acknowledge", id=ev6["result"]["id"])
        assert ack["ok"] and ack["result"]["status"] == "acknowledged"
        # acknowledging and disputing is the agent's act, not a supervisor's
        forbidden(await ask(sup, "qa.dispute", id=ev1["result"]["id"], agent="a1", reason="x"), "supervisor:sales")
        disputed = await ask(a1, "qa.dispute", id=ev1["result"]["id"], reason="the caller hung up")
        assert disputed["ok"] and disputed["result"]["status"] == "disputed"

        # reports: supervisors, crm and admin read them; an agent key does not
        for client in (sup, crm, admin):
            rep = await ask(client, "qa.report", since=T0, until=T0 + HOUR)
            assert rep["ok"] and sum(g["disputed"] for g in rep["result"]["groups"]) == 1
        forbidden(await ask(a3, "qa.report", since=T0, until=T0 + HOUR), "agent:a3")
        forbidden(await ask(a3, "qa.calibration", session="s1"), "agent:a3")
        # crm and admin see any agent's evaluations
        assert [e["id"] for e in (await ask(crm, "qa.evaluations", agent="a1"))["result"]] == [ev1["result"]["id"]]
    finally:
        for c in clients.values():
            c.close()
        await daemon.stop()
