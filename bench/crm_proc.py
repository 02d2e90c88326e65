"""A stand-in HTTP CRM in its own process, for the screen pop bench.

    python crm_proc.py json|hang

`json`: every GET answers 200 with a small customer record at once. `hang`: every GET is
accepted and never answered (a CRM that is up but stuck). Replies {"ready": true, "port": N}
on stdout, then serves until stdin closes.
"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from benchlib import reply, stdin_lines

RECORD = json.dumps({"customer": {"name": "Bench Customer", "company": "Acme", "tier": "gold"},
                     "open_tickets": [{"id": "T-1", "subject": "bench"}]}).encode()


def main() -> None:
    mode = sys.argv[1]
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client's pooled connections are reused

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            if mode == "hang":
                stop.wait()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(RECORD)))
            self.end_headers()
            self.wfile.write(RECORD)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    reply(ready=True, port=server.server_address[1])
    for command in stdin_lines():
        if command is None:
            break
    stop.set()
    server.shutdown()


if __name__ == "__main__":
    main()
