"""The TCP listener of the restreamer: ClientHello peek, TLS, protocol demux.

One port serves everything. For each accepted connection the front door

1. peeks at the TLS ClientHello with ``MSG_PEEK`` - the bytes stay in the kernel's socket
   buffer - and parses it (:func:`parse_client_hello`: SNI, offered ALPN protocols).
   Anything that is not a TLS handshake (plain RTSP/HTTP, garbage) is closed without a
   reply. A ClientHello offering an ALPN protocol that has a registered handler (ACME
   ``acme-tls/1``) is answered with the handler's context and closed after the handshake.
2. hands the untouched socket to asyncio's TLS transport
   (``loop.connect_accepted_socket(..., ssl=context)``), which then reads the ClientHello
   itself. Peeking avoids re-implementing the TLS record pump on ``ssl.MemoryBIO`` (which
   would be needed because ``loop.start_tls`` cannot replay bytes already read) and keeps
   asyncio's flow control for the media path.
3. reads the first request line: ``... RTSP/1.0`` goes to the RTSP handler, an HTTP
   request goes to the HTTP handler (snapshots), anything else gets ``400`` and is closed.

Limits (:class:`~.rtsp.limits.Limits`): connection count, handshake timeout, line length,
header size/count and request/idle timeouts; every connection runs in its own task, so a
slow or hostile peer only ever costs its own task.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import ssl
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .rtsp.limits import Limits

_LOGGER = logging.getLogger(__name__)

_MAX_HELLO_BYTES = 65536
_TLS_HANDSHAKE = 0x16
_CLIENT_HELLO = 0x01
_EXT_SERVER_NAME = 0
_EXT_ALPN = 16
_EXT_SUPPORTED_VERSIONS = 43


class ClientHelloError(ValueError):
    """The bytes are not (the start of) a TLS ClientHello."""


@dataclass(frozen=True, slots=True)
class ClientHelloInfo:
    """What a ClientHello offered, read before the TLS handshake."""

    server_name: str | None
    alpn_protocols: tuple[str, ...]
    legacy_version: int
    supported_versions: tuple[int, ...]
    length: int


class _Reader:
    """Bounds-checked cursor over bytes; raises ClientHelloError when out of range."""

    __slots__ = ("data", "end", "pos")

    def __init__(self, data: bytes, pos: int = 0, end: int | None = None) -> None:
        self.data = data
        self.pos = pos
        self.end = len(data) if end is None else end

    def take(self, n: int) -> bytes:
        if self.pos + n > self.end:
            raise ClientHelloError("truncated ClientHello field")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def uint(self, n: int) -> int:
        return int.from_bytes(self.take(n), "big")

    def sub(self, length_bytes: int) -> _Reader:
        n = self.uint(length_bytes)
        start = self.pos
        self.take(n)
        return _Reader(self.data, start, start + n)

    @property
    def left(self) -> int:
        return self.end - self.pos


def parse_client_hello(data: bytes) -> ClientHelloInfo | None:
    """Parse a TLS ClientHello from the first bytes a client sent.

    Returns None when the bytes are a valid but incomplete start of a ClientHello (read
    more), the parsed :class:`ClientHelloInfo` when complete, and raises
    :class:`ClientHelloError` when the bytes cannot be a TLS ClientHello (plain text,
    garbage, another record type, an absurd length). The handshake message may span
    several TLS records.
    """
    handshake = bytearray()
    pos = 0
    needed: int | None = None
    while needed is None or len(handshake) < needed:
        if len(data) - pos < 5:
            _check_partial_header(data[pos:])
            return None
        content_type, major, minor = data[pos], data[pos + 1], data[pos + 2]
        length = int.from_bytes(data[pos + 3 : pos + 5], "big")
        if content_type != _TLS_HANDSHAKE or major != 3 or minor > 4:
            raise ClientHelloError("not a TLS handshake record")
        if length == 0 or length > 16384 + 2048:
            raise ClientHelloError("bad TLS record length")
        if len(data) - pos - 5 < length:
            # Incomplete record: validate what we can of the handshake header.
            handshake += data[pos + 5 :]
            _check_handshake_header(bytes(handshake))
            return None
        handshake += data[pos + 5 : pos + 5 + length]
        pos += 5 + length
        if needed is None and len(handshake) >= 4:
            needed = 4 + _check_handshake_header(bytes(handshake))
        if pos > _MAX_HELLO_BYTES:
            raise ClientHelloError("ClientHello too large")
    return _parse_hello_body(bytes(handshake[4:needed]), needed)


def _check_partial_header(head: bytes) -> None:
    if head and head[0] != _TLS_HANDSHAKE:
        raise ClientHelloError("not a TLS handshake record")
    if len(head) >= 2 and head[1] != 3:
        raise ClientHelloError("not a TLS version")


def _check_handshake_header(handshake: bytes) -> int:
    """Validate the handshake header; return the body length (0 if not known yet)."""
    if handshake and handshake[0] != _CLIENT_HELLO:
        raise ClientHelloError("first handshake message is not a ClientHello")
    if len(handshake) < 4:
        return 0
    length = int.from_bytes(handshake[1:4], "big")
    if length < 38 or length > _MAX_HELLO_BYTES:
        raise ClientHelloError("bad ClientHello length")
    return length


def _parse_hello_body(body: bytes, total: int) -> ClientHelloInfo:
    r = _Reader(body)
    legacy_version = r.uint(2)
    r.take(32)  # random
    r.sub(1)  # session id
    suites = r.sub(2)
    if suites.end - suites.pos < 2:
        raise ClientHelloError("no cipher suites")
    r.sub(1)  # compression methods
    server_name: str | None = None
    alpn: list[str] = []
    versions: list[int] = []
    if r.left:
        extensions = r.sub(2)
        while extensions.left:
            ext_type = extensions.uint(2)
            ext = extensions.sub(2)
            if ext_type == _EXT_SERVER_NAME and ext.left:
                names = ext.sub(2)
                while names.left:
                    name_type = names.uint(1)
                    name = names.sub(2)
                    if name_type == 0 and server_name is None:
                        try:
                            server_name = name.take(name.left).decode("ascii")
                        except UnicodeDecodeError as err:
                            raise ClientHelloError("bad server name") from err
            elif ext_type == _EXT_ALPN and ext.left:
                protocols = ext.sub(2)
                while protocols.left:
                    proto = protocols.sub(1)
                    alpn.append(proto.take(proto.left).decode("latin-1"))
            elif ext_type == _EXT_SUPPORTED_VERSIONS and ext.left:
                listed = ext.sub(1)
                while listed.left >= 2:
                    versions.append(listed.uint(2))
    return ClientHelloInfo(
        server_name=server_name,
        alpn_protocols=tuple(alpn),
        legacy_version=legacy_version,
        supported_versions=tuple(versions),
        length=total,
    )


def harden_server_context(ctx: ssl.SSLContext) -> ssl.SSLContext:
    """Require TLS 1.2+ and forward-secret AEAD ciphers on ``ctx`` (returned for chaining)."""
    ctx.minimum_version = max(ctx.minimum_version, ssl.TLSVersion.TLSv1_2)
    ctx.set_ciphers("ECDHE+AESGCM:ECDHE+CHACHA20:!aNULL:!eNULL:!MD5:!DSS")
    ctx.options |= ssl.OP_NO_COMPRESSION
    return ctx


@dataclass(slots=True)
class Connection:
    """A client connection after TLS, handed to a protocol handler.

    ``initial`` holds the bytes already read (at least the first request line); the
    handler must process them before reading more from ``reader``.
    """

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    peer: str
    initial: bytes
    hello: ClientHelloInfo
    limits: Limits
    opened_at: float = field(default_factory=time.monotonic)


@dataclass(frozen=True, slots=True)
class HttpReply:
    """An HTTP response for :class:`FrontDoor`'s HTTP handler."""

    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"


ConnectionHandler = Callable[[Connection], Awaitable[None]]
HttpHandler = Callable[[str, str], Awaitable[HttpReply]]
AlpnHandler = Callable[[ClientHelloInfo], ssl.SSLContext | None]

_HTTP_REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    431: "Request Header Fields Too Large",
    503: "Service Unavailable",
}


def rtsp_error_bytes(status: int, reason: str, cseq: str | None = None) -> bytes:
    """Return a minimal RTSP error response that closes the connection."""
    lines = [f"RTSP/1.0 {status} {reason}"]
    if cseq is not None:
        lines.append(f"CSeq: {cseq}")
    lines += ["Connection: close", "Content-Length: 0", "", ""]
    return "\r\n".join(lines).encode()


def http_reply_bytes(reply: HttpReply, *, head_only: bool = False) -> bytes:
    """Serialize an HTTP/1.1 response that closes the connection."""
    reason = _HTTP_REASONS.get(reply.status, "Error")
    head = (
        f"HTTP/1.1 {reply.status} {reason}\r\n"
        f"Content-Type: {reply.content_type}\r\n"
        f"Content-Length: {len(reply.body)}\r\n"
        "Cache-Control: no-store\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    return head if head_only else head + reply.body


class FrontDoor:
    """The listener: accepts, peeks, runs TLS and hands connections to handlers."""

    def __init__(
        self,
        *,
        port: int,
        host: str | Sequence[str] | None,
        ssl_context: ssl.SSLContext,
        rtsp_handler: ConnectionHandler,
        http_handler: HttpHandler,
        limits: Limits | None = None,
    ) -> None:
        """Configure the listener; nothing is bound before :meth:`start`."""
        self._port = port
        self._hosts: list[str | None] = (
            [None] if host is None else [host] if isinstance(host, str) else list(host)
        )
        self._ssl_context = ssl_context
        self._rtsp_handler = rtsp_handler
        self._http_handler = http_handler
        self.limits = limits if limits is not None else Limits()
        self._alpn_handlers: dict[str, AlpnHandler] = {}
        self._listeners: list[socket.socket] = []
        self._accept_tasks: list[asyncio.Task[None]] = []
        self._connections: set[asyncio.Task[None]] = set()
        self.counters: dict[str, int] = {
            "accepted": 0,
            "rejected_full": 0,
            "not_tls": 0,
            "handshake_failed": 0,
            "rtsp": 0,
            "http": 0,
            "bad_request": 0,
            "alpn_challenges": 0,
        }

    @property
    def listening(self) -> bool:
        """Return True while the listener sockets are bound."""
        return bool(self._listeners)

    @property
    def bound_ports(self) -> list[int]:
        """Return the distinct ports the listener is bound to."""
        ports: list[int] = []
        for sock in self._listeners:
            port = int(sock.getsockname()[1])
            if port not in ports:
                ports.append(port)
        return ports

    @property
    def bound_addresses(self) -> list[str]:
        """The ``address:port`` pairs listened on (IPv6 in brackets)."""
        out = []
        for sock in self._listeners:
            host, port = sock.getsockname()[:2]
            out.append(f"[{host}]:{port}" if sock.family == socket.AF_INET6 else f"{host}:{port}")
        return out

    @property
    def active_connections(self) -> int:
        """Return the number of open client connections."""
        return len(self._connections)

    def set_ssl_context(self, ctx: ssl.SSLContext) -> None:
        """Use ``ctx`` for new handshakes; open connections keep theirs."""
        self._ssl_context = ctx

    def add_alpn_handler(self, protocol: str, handler: AlpnHandler) -> None:
        """Answer ClientHellos offering ``protocol`` with the context ``handler`` returns."""
        self._alpn_handlers[protocol] = handler

    async def start(self) -> None:
        """Bind and start accepting; raise OSError (EADDRINUSE, EACCES...) on failure."""
        if self._listeners:
            return
        loop = asyncio.get_running_loop()
        sockets: list[socket.socket] = []
        port = self._port  # with port 0, every address gets the port the first one got
        try:
            for host in self._hosts:
                infos = await loop.getaddrinfo(
                    host,
                    self._port,
                    family=socket.AF_UNSPEC,
                    type=socket.SOCK_STREAM,
                    flags=socket.AI_PASSIVE,
                )
                seen: set[tuple[Any, ...]] = set()
                for family, type_, proto, _canon, addr in infos:
                    key = (family, *addr[:2])
                    if key in seen:
                        continue
                    seen.add(key)
                    sock = socket.socket(family, type_, proto)
                    sockets.append(sock)
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    if family == socket.AF_INET6:
                        sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                    try:
                        sock.bind((addr[0], port, *addr[2:]))
                    except OSError as err:
                        if family == socket.AF_INET6 and err.errno == errno.EADDRNOTAVAIL:
                            sockets.remove(sock)
                            sock.close()
                            continue  # no IPv6 on this host
                        raise OSError(
                            err.errno, f"cannot bind {addr[0]!r} port {self._port}: {err}"
                        ) from err
                    port = int(sock.getsockname()[1])
                    sock.listen(128)
                    sock.setblocking(False)
        except BaseException:
            for sock in sockets:
                sock.close()
            raise
        if not sockets:
            raise OSError(errno.EADDRNOTAVAIL, "no address to listen on")
        self._listeners = sockets
        self._accept_tasks = [
            asyncio.create_task(self._accept_loop(sock), name="alexa_cam_bridge accept")
            for sock in sockets
        ]

    async def stop(self) -> None:
        """Close the listener and every connection; wait until all tasks have ended."""
        tasks = [*self._accept_tasks, *self._connections]
        for task in tasks:
            task.cancel()
        for sock in self._listeners:
            sock.close()
        self._listeners = []
        self._accept_tasks = []
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def _accept_loop(self, listener: socket.socket) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                sock, addr = await loop.sock_accept(listener)
            except asyncio.CancelledError:
                raise
            except OSError as err:
                if err.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    _LOGGER.warning("accept failed (%s); pausing the listener briefly", err)
                    await asyncio.sleep(0.5)
                    continue
                if listener.fileno() < 0:
                    return
                _LOGGER.debug("accept error: %s", err)
                continue
            self.counters["accepted"] += 1
            if len(self._connections) >= self.limits.max_connections:
                self.counters["rejected_full"] += 1
                _close_raw(sock)
                continue
            sock.setblocking(False)
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            peer = str(addr[0])
            task = asyncio.create_task(self._serve(sock, peer), name="alexa_cam_bridge conn")
            self._connections.add(task)
            task.add_done_callback(self._connections.discard)

    async def _serve(self, sock: socket.socket, peer: str) -> None:
        writer: asyncio.StreamWriter | None = None
        try:
            handshake_deadline = time.monotonic() + self.limits.handshake_timeout
            try:
                async with asyncio.timeout(self.limits.handshake_timeout):
                    hello = await _peek_client_hello(sock)
            except TimeoutError:
                hello = None
            if hello is None:
                self.counters["not_tls"] += 1
                return
            ctx, challenge_only = self._context_for(hello)
            if ctx is None:
                return
            remaining = max(0.1, handshake_deadline - time.monotonic())
            try:
                reader, writer = await self._tls(sock, ctx, remaining)
            except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as err:
                self.counters["handshake_failed"] += 1
                _LOGGER.debug("TLS handshake with %s failed: %s", peer, err)
                return
            if challenge_only:
                self.counters["alpn_challenges"] += 1
                return
            await self._dispatch(reader, writer, peer, hello)
        except asyncio.CancelledError:
            raise
        except Exception:
            _LOGGER.exception("connection from %s failed", peer)
        finally:
            if writer is None:
                _close_raw(sock)  # no transport took it over (refused, failed, cancelled)
            else:
                writer.close()
                with contextlib.suppress(Exception):
                    async with asyncio.timeout(1.0):
                        await writer.wait_closed()

    def _context_for(self, hello: ClientHelloInfo) -> tuple[ssl.SSLContext | None, bool]:
        for protocol in hello.alpn_protocols:
            handler = self._alpn_handlers.get(protocol)
            if handler is not None:
                try:
                    return handler(hello), True
                except Exception:
                    _LOGGER.exception("ALPN handler for %s failed", protocol)
                    return None, True
        return self._ssl_context, False

    async def _tls(
        self, sock: socket.socket, ctx: ssl.SSLContext, limit: float
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        loop = asyncio.get_running_loop()
        reader = asyncio.StreamReader(limit=self.limits.max_header_bytes + 65536)
        protocol = asyncio.StreamReaderProtocol(reader)
        async with asyncio.timeout(limit):
            transport, _ = await loop.connect_accepted_socket(
                lambda: protocol,
                sock,
                ssl=ctx,
                ssl_handshake_timeout=limit,
                ssl_shutdown_timeout=2.0,
            )
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        return reader, writer

    async def _dispatch(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        peer: str,
        hello: ClientHelloInfo,
    ) -> None:
        limits = self.limits
        buffer = bytearray()
        first_byte_at: float | None = None
        loop = asyncio.get_running_loop()
        while b"\n" not in buffer:
            if len(buffer) > limits.max_line:
                self.counters["bad_request"] += 1
                writer.write(rtsp_error_bytes(400, "Bad Request"))
                return
            if first_byte_at is None:
                timeout = min(limits.idle_timeout, limits.request_timeout)
            else:
                timeout = first_byte_at + limits.request_timeout - loop.time()
            try:
                async with asyncio.timeout(max(0.0, timeout)):
                    chunk = await reader.read(65536)
            except TimeoutError:
                if buffer:
                    writer.write(rtsp_error_bytes(408, "Request Timeout"))
                return
            except (ConnectionError, ssl.SSLError, OSError):
                return
            if not chunk:
                return
            if first_byte_at is None:
                first_byte_at = loop.time()
            buffer += chunk
        line = bytes(buffer[: buffer.index(b"\n")]).rstrip(b"\r")
        if len(line) > limits.max_line:
            self.counters["bad_request"] += 1
            writer.write(rtsp_error_bytes(400, "Bad Request"))
            return
        parts = line.split(b" ")
        if len(parts) == 3 and parts[2] == b"RTSP/1.0":
            self.counters["rtsp"] += 1
            await self._rtsp_handler(Connection(reader, writer, peer, bytes(buffer), hello, limits))
            return
        if len(parts) == 3 and parts[2] in (b"HTTP/1.1", b"HTTP/1.0"):
            self.counters["http"] += 1
            await self._serve_http(reader, writer, parts, buffer, first_byte_at or loop.time())
            return
        self.counters["bad_request"] += 1
        writer.write(rtsp_error_bytes(400, "Bad Request"))

    async def _serve_http(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        parts: list[bytes],
        buffer: bytearray,
        started: float,
    ) -> None:
        limits = self.limits
        loop = asyncio.get_running_loop()
        while b"\r\n\r\n" not in buffer and b"\n\n" not in buffer:
            if len(buffer) > limits.max_header_bytes:
                writer.write(http_reply_bytes(HttpReply(431, b"headers too large\n")))
                return
            try:
                async with asyncio.timeout(
                    max(0.0, started + limits.request_timeout - loop.time())
                ):
                    chunk = await reader.read(65536)
            except TimeoutError:
                writer.write(http_reply_bytes(HttpReply(408, b"request timeout\n")))
                return
            except (ConnectionError, ssl.SSLError, OSError):
                return
            if not chunk:
                return
            buffer += chunk
        head = bytes(buffer).split(b"\r\n\r\n", 1)[0].split(b"\n\n", 1)[0]
        if head.count(b"\n") > limits.max_headers or len(head) > limits.max_header_bytes:
            writer.write(http_reply_bytes(HttpReply(431, b"headers too large\n")))
            return
        method = parts[0].decode("latin-1")
        path = parts[1].decode("latin-1")
        if method not in ("GET", "HEAD"):
            writer.write(http_reply_bytes(HttpReply(405, b"method not allowed\n")))
            return
        reply = await self._http_handler(method, path)
        writer.write(http_reply_bytes(reply, head_only=method == "HEAD"))
        with contextlib.suppress(ConnectionError, ssl.SSLError, OSError, TimeoutError):
            async with asyncio.timeout(limits.request_timeout):
                await writer.drain()


async def _peek_client_hello(sock: socket.socket) -> ClientHelloInfo | None:
    """Wait until the socket holds a complete ClientHello; never consume a byte.

    Returns None on EOF or when the bytes are not TLS. While the hello is incomplete the
    socket stays readable (the peeked bytes are still there), so re-checks back off with
    short sleeps instead of spinning.
    """
    loop = asyncio.get_running_loop()
    delay = 0.001
    while True:
        waiter: asyncio.Future[None] = loop.create_future()

        def _ready(fut: asyncio.Future[None] = waiter) -> None:
            if not fut.done():
                fut.set_result(None)

        loop.add_reader(sock.fileno(), _ready)
        try:
            await waiter
        finally:
            loop.remove_reader(sock.fileno())
        try:
            data = sock.recv(_MAX_HELLO_BYTES, socket.MSG_PEEK)
        except (BlockingIOError, InterruptedError):
            continue
        except OSError:
            return None
        if not data:
            return None
        try:
            info = parse_client_hello(data)
        except ClientHelloError:
            return None
        if info is not None:
            return info
        if len(data) >= _MAX_HELLO_BYTES:
            return None
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.05)


def _close_raw(sock: socket.socket) -> None:
    """Close a socket that no transport owns, resetting nothing gracefully."""
    with contextlib.suppress(OSError):
        sock.shutdown(socket.SHUT_RDWR)
    sock.close()
