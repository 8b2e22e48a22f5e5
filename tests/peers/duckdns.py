"""A fake DuckDNS update API on loopback that writes TXT records into pebble-challtestsrv.

``GET /update?domains=<sub>&token=<token>&txt=<value>[&clear=true]`` answers ``OK`` (the
token matches) or ``KO``, like DuckDNS, and sets/clears ``_acme-challenge.<sub>.duckdns.org``
in challtestsrv so that Pebble's DNS-01 validation sees it.
"""

from __future__ import annotations

import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from tests.peers.pebble import Pebble


class FakeDuckDns:
    """The update API in a thread; ``calls`` records every request's parameters."""

    def __init__(self, pebble: Pebble, token: str) -> None:
        """Start serving on a free 127.0.0.1 port."""
        self.calls: list[dict[str, str]] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urllib.parse.urlsplit(self.path)
                params = dict(urllib.parse.parse_qsl(url.query))
                fake.calls.append(params)
                ok = url.path == "/update" and params.get("token") == token
                if ok:
                    name = f"_acme-challenge.{params['domains']}.duckdns.org"
                    if params.get("clear") == "true":
                        pebble.clear_txt(name)
                    else:
                        pebble.set_txt(name, params["txt"])
                body = b"OK" if ok else b"KO"
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/update"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
