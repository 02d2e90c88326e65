"""A fake PBX in its own process: serves a long AMI stream over TCP, one client at a time.

    python ami_feeder.py <transcript.raw> <reps>

The stream is the transcript body repeated `reps` times with the ids made unique per
repetition (benchlib.build_stream), built once before the port is announced.

Per connection: send the banner, read the client's Login, send the transcript's login
response, answer list actions (QueueStatus, CoreShowChannels: empty lists) and Ping until
the parent says go, then stream everything as fast as the client reads it.

Parent -> child (stdin, JSON lines): {"go": true}; EOF = exit.
Child -> parent (stdout): {"port", "bytes"} once ready; {"login": true} per connection;
{"t0": ns} just before the first byte after go; {"done": true, "ok", "t_sent"} when all
is sent (or the client went away).
"""

from __future__ import annotations

import select
import socket
import sys
import threading
import time

from benchlib import build_stream, reply, stdin_lines


def _frame(**fields: object) -> bytes:
    return ("".join(f"{k}: {v}\r\n" for k, v in fields.items()) + "\r\n").encode()


class Responder(threading.Thread):
    """Answers the client's actions until `going` is set; after that reads and discards."""

    def __init__(self, conn: socket.socket, rest: bytes) -> None:
        super().__init__(daemon=True)
        self.conn = conn
        self.buf = rest
        self.lock = threading.Lock()
        self.going = False
        self.closed = threading.Event()

    def run(self) -> None:
        try:
            while True:
                while b"\r\n\r\n" in self.buf:
                    raw, _, self.buf = self.buf.partition(b"\r\n\r\n")
                    self._answer(raw)
                data = self.conn.recv(65536)
                if not data:
                    break
                if not self.going:
                    self.buf += data
        except OSError:
            pass
        finally:
            self.closed.set()

    def _answer(self, raw: bytes) -> None:
        fields = dict(line.split(": ", 1) for line in raw.decode(errors="replace").split("\r\n") if ": " in line)
        aid = fields.get("ActionID", "")
        name = fields.get("Action", "").lower()
        if name in ("queuestatus", "coreshowchannels"):
            done = "QueueStatusComplete" if name == "queuestatus" else "CoreShowChannelsComplete"
            out = _frame(Response="Success", ActionID=aid, EventList="start", Message="will follow") + \
                _frame(Event=done, ActionID=aid, EventList="Complete", ListItems=0)
        else:
            out = _frame(Response="Success", ActionID=aid, Ping="Pong")
        with self.lock:
            if not self.going:
                self.conn.sendall(out)


def serve_one(conn: socket.socket, banner: bytes, login: bytes, parts: list[bytes], commands) -> bool:
    """One client session; False when the parent has closed our stdin."""
    conn.sendall(banner)
    buf = b""
    while b"\r\n\r\n" not in buf:
        data = conn.recv(65536)
        if not data:
            return True
        buf += data
    _, _, rest = buf.partition(b"\r\n\r\n")
    conn.sendall(login)
    responder = Responder(conn, rest)
    responder.start()
    reply(login=True)
    command = next(commands)
    if command is None:
        return False
    with responder.lock:
        responder.going = True
    t0 = time.time_ns()
    reply(t0=t0)
    ok = True
    try:
        for part in parts:
            conn.sendall(part)
    except OSError:
        ok = False
    reply(done=True, ok=ok, t_sent=time.time_ns())
    responder.closed.wait()
    return True


def main() -> None:
    raw = open(sys.argv[1], "rb").read()
    reps = int(sys.argv[2])
    banner, login, parts = build_stream(raw, reps)
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    reply(port=listener.getsockname()[1], bytes=len(banner) + len(login) + sum(map(len, parts)))
    commands = stdin_lines()
    while True:
        ready, _, _ = select.select([listener, sys.stdin.buffer], [], [])
        if sys.stdin.buffer in ready and listener not in ready:
            return  # stdin readable with no client waiting: EOF from the parent
        conn, _ = listener.accept()
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            if not serve_one(conn, banner, login, parts, commands):
                return
        finally:
            conn.close()


if __name__ == "__main__":
    main()
