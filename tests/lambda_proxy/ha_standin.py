"""A local stand-in for HA's smart home view: a real threaded HTTP(S) server on 127.0.0.1.

Each request is answered by a ``behavior`` callable returning a :class:`Reply`, which can
also make the server misbehave the ways a real HA (or what sits in front of it) can: hang,
dribble its headers, drop the request, or close the connection after answering.
:class:`SilentListener` is a port that accepts TCP connections and never says a word.
"""

from __future__ import annotations

import contextlib
import dataclasses
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from types import TracebackType
from typing import Self

STOP_WAIT_S = 10.0
"""Longest a misbehaving handler stalls before giving up on its own."""


@dataclasses.dataclass(frozen=True, slots=True)
class Request:
    """One request the stand-in received."""

    path: str
    headers: Mapping[str, str]  # names lower-cased
    body: bytes
    index_on_connection: int  # 1 for the first request on a TCP connection


@dataclasses.dataclass(frozen=True, slots=True)
class Reply:
    """How to answer one request."""

    status: int = 200
    body: bytes = b""
    headers: Mapping[str, str] = dataclasses.field(default_factory=dict)
    close_after: bool = False  # close the connection after answering, without saying so
    drop: bool = False  # close the connection without answering
    hang: bool = False  # never answer (until the server stops)
    dribble: bool = False  # send the status line, then one header byte every 50 ms
    raw: bytes | None = None  # send these bytes instead of an HTTP answer, then close


Behavior = Callable[[Request], Reply]


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: HaStandin
    timeout = STOP_WAIT_S
    disable_nagle_algorithm = True  # as HA (aiohttp) does; else delayed ACKs add 40 ms

    def setup(self) -> None:
        super().setup()
        self._requests_on_connection = 0
        self._started = 0.0

    def log_message(self, format: str, *args: object) -> None:
        """Keep test output quiet."""

    def parse_request(self) -> bool:
        self._started = time.perf_counter()  # the request line is in; the server's work starts
        return super().parse_request()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self._requests_on_connection += 1
        request = Request(
            path=self.path,
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            index_on_connection=self._requests_on_connection,
        )
        self.server.record(request)
        reply = self.server.behavior(request)
        if reply.drop:
            self.close_connection = True
            return
        if reply.raw is not None:
            self.wfile.write(reply.raw)
            self.close_connection = True
            return
        if reply.hang:
            self.server.stopping.wait(STOP_WAIT_S)
            self.close_connection = True
            return
        if reply.dribble:
            self.wfile.write(b"HTTP/1.1 200 OK\r\n")
            while not self.server.stopping.wait(0.05):
                self.wfile.write(b"X")
                self.wfile.flush()
            self.close_connection = True
            return
        self.send_response(reply.status)
        headers = {"Content-Type": "application/json", "Content-Length": str(len(reply.body))}
        headers.update(reply.headers)
        for name, value in headers.items():
            self.send_header(name, value)
        # Recorded before the answer leaves, so a client that has the answer sees the time.
        self.server.server_times.append(time.perf_counter() - self._started)
        self.end_headers()
        self.wfile.write(reply.body)
        self.wfile.flush()
        if reply.close_after:
            self.close_connection = True


class HaStandin(http.server.ThreadingHTTPServer):
    """Threaded HTTP(S) server on 127.0.0.1 with an ephemeral port; a context manager."""

    daemon_threads = False
    block_on_close = True

    def __init__(self, behavior: Behavior, tls: ssl.SSLContext | None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.behavior = behavior
        self.tls = tls
        self.requests: list[Request] = []
        self.server_times: list[float] = []  # seconds from request line to answer, per answer
        self.connections = 0
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="ha-standin"
        )

    @property
    def url(self) -> str:
        """Base URL for HA_URL."""
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.server_address[1]}"

    def record(self, request: Request) -> None:
        """Remember a received request (thread-safe)."""
        with self._lock:
            self.requests.append(request)

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        sock, address = super().get_request()
        with self._lock:
            self.connections += 1
        return sock, address

    def finish_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        assert isinstance(request, socket.socket)
        request.settimeout(STOP_WAIT_S)
        if self.tls is not None:
            try:
                request = self.tls.wrap_socket(request, server_side=True)
            except (ssl.SSLError, OSError):
                return  # the client refused our certificate, or went away
        with self._lock:
            self._sockets.append(request)
        try:
            super().finish_request(request, client_address)
        except OSError:
            pass  # the client hung up mid-request; nothing to report
        finally:
            # socketserver closes only the socket it accepted, which TLS has detached.
            with contextlib.suppress(OSError):
                request.shutdown(socket.SHUT_WR)
            request.close()

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stopping.set()
        self.shutdown()
        self._thread.join()
        with self._lock:
            for sock in self._sockets:
                with contextlib.suppress(OSError):  # already closed by its handler
                    sock.shutdown(socket.SHUT_RDWR)
        self.server_close()  # joins the handler threads


class SilentListener:
    """A listening TCP port on 127.0.0.1 that never accepts: connects succeed, then silence."""

    def __init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(8)

    @property
    def url(self) -> str:
        """Base URL for HA_URL."""
        return f"https://127.0.0.1:{self._sock.getsockname()[1]}"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._sock.close()


def closed_port_url() -> str:
    """An https URL on 127.0.0.1 where nothing listens (connection refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"https://127.0.0.1:{port}"
