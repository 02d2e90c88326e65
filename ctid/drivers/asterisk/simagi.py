"""The simulator's side of FastAGI: a channel running `AGI(agi://...)` as Asterisk would.

`run_agi` connects, sends the AGI environment, answers the server's commands the way
Asterisk does (`GET VARIABLE`, `SET VARIABLE`, `SET MUSIC`, `WAIT FOR DIGIT`) and returns the
channel variables set when the server ends the session. Hanging up mid-wait (the caller gives
up) is `hangup`: an event set by the caller's patience running out.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from urllib.parse import urlencode


@dataclass
class AgiChannel:
    """What the server did to the channel."""

    variables: dict[str, str] = field(default_factory=dict)
    commands: list[str] = field(default_factory=list)
    music: bool = False
    hung_up: bool = False


async def run_agi(host: str, port: int, *, linkedid: str, queue: str, caller: str | None = None,
                  skills: dict[str, int] | None = None, priority: int = 0,
                  hangup: asyncio.Event | None = None, channel: str = "PJSIP/trunk-00000001") -> AgiChannel:
    """One AGI session against a FastAGI server; returns when the server closes it."""
    query = {"queue": queue, "priority": priority}
    if skills:
        query["skills"] = ",".join(f"{k}:{v}" for k, v in skills.items())
    env = {"agi_network": "yes", "agi_network_script": f"route?{urlencode(query)}",
           "agi_request": f"agi://{host}:{port}/route?{urlencode(query)}", "agi_channel": channel,
           "agi_uniqueid": linkedid, "agi_callerid": caller or "unknown", "agi_context": "ctid-route",
           "agi_extension": "s", "agi_priority": "2", "agi_enhanced": "0.0"}
    reader, writer = await asyncio.open_connection(host, port)
    out = AgiChannel()
    try:
        writer.write("".join(f"{k}: {v}\n" for k, v in env.items()).encode() + b"\n")
        await writer.drain()
        while True:
            raw = await reader.readline()
            if not raw:
                return out
            command = raw.decode().strip()
            out.commands.append(command)
            writer.write((await _reply(command, linkedid, out, hangup)).encode() + b"\n")
            await writer.drain()
    except ConnectionError:
        return out
    finally:
        writer.close()


async def _reply(command: str, linkedid: str, out: AgiChannel, hangup: asyncio.Event | None) -> str:
    if out.hung_up:
        return "511 Command Not Permitted on a dead channel or intercept routine"
    words = command.split(" ", 3)
    verb = " ".join(words[:2]).upper()
    if verb == "GET VARIABLE":
        value = linkedid if words[2] == "CHANNEL(linkedid)" else out.variables.get(words[2])
        return f"200 result=1 ({value})" if value is not None else "200 result=0"
    if verb == "SET VARIABLE":
        out.variables[words[2]] = words[3].strip('"') if len(words) > 3 else ""
        return "200 result=1"
    if verb == "SET MUSIC":
        out.music = words[2].upper() == "ON"
        return "200 result=0"
    if verb == "WAIT FOR":  # WAIT FOR DIGIT <ms>: the caller listens to music, or hangs up
        timeout = int(command.rsplit(" ", 1)[1]) / 1000
        if hangup is not None:
            try:
                await asyncio.wait_for(hangup.wait(), timeout)
            except asyncio.TimeoutError:
                return "200 result=0"
            out.hung_up = True
            return "200 result=-1"
        await asyncio.sleep(timeout)
        return "200 result=0"
    return "510 Invalid or unknown command"
