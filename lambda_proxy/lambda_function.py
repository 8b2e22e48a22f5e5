"""AWS Lambda that forwards Alexa Smart Home directives to Home Assistant.

Alexa only calls a Lambda; this one relays each directive to the integration's HA view
(``POST {HA_URL}/api/alexa_cam_bridge/smart_home``) with the directive's own OAuth token as
``Authorization: Bearer`` and hands HA's answer back unchanged.  Whatever goes wrong --
missing configuration, a malformed directive, HA down, a bad certificate, an expired token,
a hung or dribbling server -- Alexa still receives a complete, schema-valid ErrorResponse
before the Lambda's own deadline.

Standard library only, one file, for the AWS Python 3.13 runtime (handler
``lambda_function.lambda_handler``).  Environment:

``HA_URL``      required; HA's external base URL (``https://ha.example.com``; a trailing
                slash or a base path behind a reverse proxy is fine).
``ALLOW_HTTP``  ``1`` permits an ``http://`` HA_URL (off by default).
``VERIFY_TLS``  ``0`` disables certificate verification (on by default).
``CA_BUNDLE``   optional PEM file of the CA(s) to trust instead of the system store.
``DEBUG``       ``1`` also logs the directive and HA's answer, tokens and URL credentials
                redacted.
"""

from __future__ import annotations

import base64
import contextvars
import dataclasses
import http.client
import io
import ipaddress
import json
import logging
import os
import re
import select
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Protocol
from urllib.parse import urlsplit

HA_VIEW_PATH = "/api/alexa_cam_bridge/smart_home"
MAX_BUDGET_S = 5.0
"""Upper bound of one invocation's time to answer (Alexa allows about 8 s; 5 s is ample)."""
LAMBDA_MARGIN_S = 0.3
"""Time kept back from the Lambda's remaining time to build and return the answer."""
MIN_BUDGET_S = 0.05
"""Below this there is no point in trying to reach HA at all."""
CONNECT_SHARE = 0.6
"""Share of the time left that opening a connection (DNS, TCP, TLS) may use; the rest is
kept for HA to answer."""
MAX_RESPONSE_BYTES = 6_000_000
"""The Lambda response payload limit; a larger HA answer cannot be returned anyway."""
USER_AGENT = "alexa_cam_bridge-lambda/1"

_LOGGER = logging.getLogger(__name__)
_LOGGER.setLevel(logging.INFO)

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off", ""})
_TOKEN_RE = re.compile(r"[\x21-\x7e]{1,8192}")
_ENDPOINT_ID_RE = re.compile(r"[a-zA-Z0-9_\-=#;:?@&]{1,256}")
_SECRET_KEYS = frozenset({"token", "code", "access_token", "refresh_token", "password"})
_URL_UNSAFE_RE = re.compile(r"[\x00-\x20\x7f]")
_URL_USERINFO_RE = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^/@\s]*@")
_STALE_ERRORS = (ConnectionResetError, BrokenPipeError, ConnectionAbortedError, ssl.SSLEOFError)

_READ_DEADLINE: contextvars.ContextVar[float] = contextvars.ContextVar("_READ_DEADLINE")


class LambdaContext(Protocol):
    """The part of the Lambda context object the handler uses."""

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds left before the Lambda runtime stops this invocation."""
        ...


# --------------------------------------------------------------------------- configuration


class ConfigError(Exception):
    """The Lambda's environment is missing or invalid; the message says what to fix."""


@dataclasses.dataclass(frozen=True, slots=True)
class Config:
    """Validated Lambda configuration."""

    scheme: str
    host: str
    port: int
    path: str
    verify_tls: bool
    ca_bundle: str | None
    debug: bool


def _flag(environ: Mapping[str, str], name: str, *, default: bool) -> bool:
    raw = environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ConfigError(f"{name} must be 1/0, true/false, yes/no or on/off, not {raw!r}")


def load_config(environ: Mapping[str, str]) -> Config:
    """Read and validate the configuration; raise ConfigError with a fix-it message."""
    raw_url = environ.get("HA_URL", "").strip()
    if not raw_url:
        raise ConfigError(
            "HA_URL is not set; set it to HA's external URL, e.g. https://ha.example.com"
        )
    shown = _URL_USERINFO_RE.sub(r"\1***@", raw_url)
    allow_http = _flag(environ, "ALLOW_HTTP", default=False)
    parts = urlsplit(raw_url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise ConfigError(f"HA_URL must start with https:// (got {shown!r})")
    if scheme == "http" and not allow_http:
        raise ConfigError("HA_URL uses http://; use https:// or set ALLOW_HTTP=1")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("HA_URL must not contain a user name or password")
    if parts.query or parts.fragment:
        raise ConfigError("HA_URL must not contain a query or fragment")
    try:
        port = parts.port
    except ValueError:
        raise ConfigError("HA_URL has an invalid port") from None
    if not parts.hostname:
        raise ConfigError(f"HA_URL has no host name (got {shown!r})")
    try:
        parts.hostname.encode("idna")
    except UnicodeError:
        raise ConfigError(f"HA_URL has an invalid host name (got {shown!r})") from None
    if _URL_UNSAFE_RE.search(raw_url):
        raise ConfigError("HA_URL must not contain spaces or control characters")
    ca_bundle = environ.get("CA_BUNDLE", "").strip() or None
    if ca_bundle is not None and not os.path.isfile(ca_bundle):
        raise ConfigError(f"CA_BUNDLE file {ca_bundle!r} does not exist")
    return Config(
        scheme=scheme,
        host=parts.hostname,
        port=port or (443 if scheme == "https" else 80),
        path=parts.path.rstrip("/") + HA_VIEW_PATH,
        verify_tls=_flag(environ, "VERIFY_TLS", default=True),
        ca_bundle=ca_bundle,
        debug=_flag(environ, "DEBUG", default=False),
    )


# --------------------------------------------------------------------------- directives


@dataclasses.dataclass(frozen=True, slots=True)
class _Directive:
    """What the handler needs from an incoming event; ``problem`` is set when it is invalid."""

    namespace: str = ""
    name: str = ""
    correlation_token: str | None = None
    endpoint_id: str | None = None
    token: str | None = None
    problem: str | None = None

    @property
    def is_accept_grant(self) -> bool:
        return self.namespace == "Alexa.Authorization" and self.name == "AcceptGrant"

    @property
    def label(self) -> str:
        return f"{self.namespace}.{self.name}" if self.namespace else "<not a directive>"


def _dict(value: object) -> dict[str, Any] | None:
    return value if isinstance(value, dict) else None


def _nested_str(root: dict[str, Any] | None, *keys: str) -> str | None:
    node: object = root
    for key in keys:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, str) else None


def _parse_directive(event: object) -> _Directive:
    directive = _dict(event.get("directive")) if isinstance(event, dict) else None
    if directive is None:
        return _Directive(problem="the event has no directive object")
    header = _dict(directive.get("header"))
    if header is None:
        return _Directive(problem="the directive has no header")
    namespace, name = header.get("namespace"), header.get("name")
    correlation = header.get("correlationToken")
    correlation = correlation if isinstance(correlation, str) and correlation else None
    endpoint = directive.get("endpoint")
    endpoint_id = _nested_str(_dict(endpoint), "endpointId")
    valid_id = endpoint_id is not None and _ENDPOINT_ID_RE.fullmatch(endpoint_id) is not None
    base = _Directive(
        namespace=namespace if isinstance(namespace, str) else "",
        name=name if isinstance(name, str) else "",
        correlation_token=correlation,
        endpoint_id=endpoint_id if valid_id else None,
    )
    problem = None
    if not base.namespace or not base.name:
        problem = "the header has no namespace or name"
    elif header.get("payloadVersion") != "3":
        problem = "payloadVersion is not 3"
    elif not isinstance(header.get("messageId"), str):
        problem = "the header has no messageId"
    elif _dict(directive.get("payload")) is None:
        problem = "the directive has no payload object"
    elif endpoint is not None and not valid_id:
        problem = "the endpoint has no valid endpointId"
    if problem is not None:
        return dataclasses.replace(base, problem=problem)
    payload = _dict(directive.get("payload"))
    token = (
        _nested_str(_dict(endpoint), "scope", "token")
        or _nested_str(payload, "scope", "token")
        or _nested_str(payload, "grantee", "token")
    )
    return dataclasses.replace(base, token=token)


# --------------------------------------------------------------------------- answers


def _error_response(directive: _Directive, error_type: str, message: str) -> dict[str, Any]:
    """Build the ErrorResponse Alexa expects for ``directive``.

    AcceptGrant failures become ``Alexa.Authorization`` ACCEPT_GRANT_FAILED (no endpoint);
    everything else an ``Alexa`` ErrorResponse echoing the directive's endpoint.
    """
    if directive.is_accept_grant:
        namespace, error_type = "Alexa.Authorization", "ACCEPT_GRANT_FAILED"
    else:
        namespace = "Alexa"
    header: dict[str, Any] = {
        "namespace": namespace,
        "name": "ErrorResponse",
        "messageId": str(uuid.uuid4()),
        "payloadVersion": "3",
    }
    if directive.correlation_token is not None:
        header["correlationToken"] = directive.correlation_token
    event: dict[str, Any] = {"header": header}
    if directive.endpoint_id is not None and not directive.is_accept_grant:
        event["endpoint"] = {"endpointId": directive.endpoint_id}
    event["payload"] = {"type": error_type, "message": message}
    return {"event": event}


def _is_alexa_message(message: object) -> bool:
    event = _dict(message.get("event")) if isinstance(message, dict) else None
    header = _dict(event.get("header")) if event is not None else None
    return (
        event is not None
        and header is not None
        and isinstance(header.get("namespace"), str)
        and isinstance(header.get("name"), str)
        and isinstance(header.get("messageId"), str)
        and header.get("payloadVersion") == "3"
        and isinstance(event.get("payload"), dict)
    )


def _jwt_expired(token: str) -> bool:
    """Whether ``token`` is a JWT (as HA's access tokens are) whose ``exp`` has passed.

    Read, not verified: HA has already refused the token, this only picks the error that
    makes Alexa refresh it (EXPIRED_...) rather than give up on the link (INVALID_...).
    """
    parts = token.split(".")
    if len(parts) != 3:
        return False
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, RecursionError):
        return False
    exp = claims.get("exp") if isinstance(claims, dict) else None
    return isinstance(exp, int | float) and not isinstance(exp, bool) and exp <= time.time()


def _reject_constant(name: str) -> float:
    raise ValueError(f"non-finite number {name} in JSON")


def redact(value: Any) -> Any:
    """Copy of a JSON value with tokens, codes and URL credentials replaced by ``***``."""
    if isinstance(value, dict):
        return {
            key: "***" if key in _SECRET_KEYS and isinstance(item, str) else redact(item)
            for key, item in value.items()
        }
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, str):
        return _URL_USERINFO_RE.sub(r"\1***@", value)
    return value


# --------------------------------------------------------------------------- transport


_AddrInfo = tuple[
    socket.AddressFamily,
    socket.SocketKind,
    int,
    str,
    tuple[str, int] | tuple[str, int, int, int] | tuple[int, bytes],
]


def _time_left(deadline: float) -> float:
    """Seconds until ``deadline``; TimeoutError once it has passed."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise TimeoutError("the time budget is used up")
    return remaining


def _resolve(host: str, port: int, deadline: float) -> Sequence[_AddrInfo]:
    """Addresses of ``host``, waiting for DNS no longer than ``deadline``.

    The resolver's own timeouts can outlast the budget, so a name is looked up on a
    short-lived thread that the handler stops waiting for at the deadline.
    """
    try:
        ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    found: list[_AddrInfo] = []
    failed: list[Exception] = []

    def lookup() -> None:
        try:
            found.extend(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        except (OSError, UnicodeError) as err:  # UnicodeError: a name IDNA cannot encode
            failed.append(err)

    thread = threading.Thread(target=lookup, name="lambda-dns", daemon=True)
    thread.start()
    thread.join(_time_left(deadline))
    if thread.is_alive():
        raise TimeoutError(f"DNS lookup of {host} did not finish in time")
    if failed:
        raise socket.gaierror(f"DNS lookup of {host} failed") from failed[0]
    return found


def _handshake(sock: ssl.SSLSocket, deadline: float) -> None:
    """TLS handshake that cannot outlast ``deadline``, however slowly the server talks."""
    sock.settimeout(0.0)
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            readers, writers = [sock], []
        except ssl.SSLWantWriteError:
            readers, writers = [], [sock]
        ready = select.select(readers, writers, [], _time_left(deadline))
        if not any(ready):
            raise TimeoutError("the TLS handshake did not finish in time")


class _DeadlineReader(io.RawIOBase):
    """Socket reader whose every ``recv`` is bounded by the request's overall deadline.

    A plain socket timeout restarts on each byte, so a server that dribbles its headers
    could hold the Lambda past its limit; this reader cannot be held past the deadline.
    """

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        super().__init__()
        self._sock = sock
        self._deadline = deadline

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self._sock.settimeout(_time_left(self._deadline))
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """What ``HTTPResponse`` reads from: ``makefile`` returns a deadline-bounded reader."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self._sock = sock
        self._deadline = deadline

    def makefile(self, mode: str) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock, self._deadline))


class _DeadlineResponse(http.client.HTTPResponse):
    """HTTP response bounded by the deadline of the request being answered."""

    def __init__(
        self,
        sock: socket.socket,
        debuglevel: int = 0,
        method: str | None = None,
        url: str | None = None,
    ) -> None:
        reader: Any = _DeadlineSocket(sock, _READ_DEADLINE.get())
        super().__init__(reader, debuglevel, method, url)


class _TooLarge(Exception):
    """HA's answer exceeds what a Lambda may return."""


@dataclasses.dataclass(frozen=True, slots=True)
class _Reply:
    status: int
    www_authenticate: str
    body: bytes


def _read_reply(response: http.client.HTTPResponse) -> _Reply:
    """Read a whole answer, refusing one larger than a Lambda may return."""
    if response.length is not None and response.length > MAX_RESPONSE_BYTES:
        raise _TooLarge
    data = response.read(MAX_RESPONSE_BYTES + 1)
    if len(data) > MAX_RESPONSE_BYTES:
        raise _TooLarge
    if response.length:  # EOF before Content-Length bytes arrived
        raise http.client.IncompleteRead(data, response.length)
    return _Reply(response.status, response.getheader("WWW-Authenticate", ""), data)


class _HaClient:
    """A keep-alive connection to HA, kept in the module so warm invocations reuse it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self._tls: ssl.SSLContext | None = None
        if config.scheme == "https":
            try:
                self._tls = ssl.create_default_context(cafile=config.ca_bundle)
            except (OSError, ValueError) as err:
                raise ConfigError(f"CA_BUNDLE cannot be loaded ({type(err).__name__})") from None
            if not config.verify_tls:
                self._tls.check_hostname = False
                self._tls.verify_mode = ssl.CERT_NONE
        self._conn: http.client.HTTPConnection | None = None

    def close(self) -> None:
        """Close the cached connection, if any."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _idle_connection(self) -> http.client.HTTPConnection | None:
        """The cached connection when it is still usable (not closed by HA while idle)."""
        conn = self._conn
        if conn is None or conn.sock is None:
            return None
        readable, _, _ = select.select([conn.sock], [], [], 0)
        if readable:  # EOF or unsolicited bytes: HA (or a proxy) dropped it
            self.close()
            return None
        return conn

    def _open_socket(self, deadline: float) -> socket.socket:
        """Resolve, connect and (for https) handshake, all before ``deadline``."""
        cfg = self.config
        error: OSError | None = None
        for family, kind, proto, _, address in _resolve(cfg.host, cfg.port, deadline):
            sock = socket.socket(family, kind, proto)
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                sock.settimeout(_time_left(deadline))
                sock.connect(address)
                if self._tls is not None:
                    tls = self._tls.wrap_socket(
                        sock, server_hostname=cfg.host, do_handshake_on_connect=False
                    )
                    sock = tls  # wrapping detached the plain socket: close this one on error
                    _handshake(tls, deadline)
                return sock
            except OSError as err:
                sock.close()
                if isinstance(err, (ssl.SSLError, TimeoutError)):
                    raise  # the host answered (badly) or time is up: no other address will do
                error = err
        raise error or socket.gaierror(f"no address for {cfg.host}")

    def _new_connection(self, deadline: float) -> http.client.HTTPConnection:
        self.close()
        cfg = self.config
        now = time.monotonic()
        sock = self._open_socket(now + (deadline - now) * CONNECT_SHARE)
        conn = (
            http.client.HTTPSConnection(cfg.host, cfg.port, context=self._tls)
            if self._tls is not None
            else http.client.HTTPConnection(cfg.host, cfg.port)
        )
        conn.sock = sock  # already connected: http.client will not connect again
        conn.response_class = _DeadlineResponse
        self._conn = conn
        return conn

    def post(self, body: bytes, token: str, deadline: float) -> _Reply:
        """POST ``body`` to HA's view and return its answer, all before ``deadline``.

        A cached connection that turns out dead (HA or a proxy closed it while the Lambda
        was frozen: reset, broken pipe, EOF) is replaced once by a fresh connection.
        """
        conn = self._idle_connection()
        if conn is not None:
            try:
                return self._exchange(conn, body, token, deadline)
            except _STALE_ERRORS:
                if deadline - time.monotonic() < MIN_BUDGET_S:
                    raise
        return self._exchange(self._new_connection(deadline), body, token, deadline)

    def _exchange(
        self, conn: http.client.HTTPConnection, body: bytes, token: str, deadline: float
    ) -> _Reply:
        headers = {
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
        }
        reset = _READ_DEADLINE.set(deadline)
        try:
            conn.sock.settimeout(_time_left(deadline))
            conn.request("POST", self.config.path, body, headers)
            return _read_reply(conn.getresponse())
        except BaseException:
            self.close()
            raise
        finally:
            _READ_DEADLINE.reset(reset)


_CLIENT: _HaClient | None = None


def _client_for(config: Config) -> _HaClient:
    global _CLIENT  # noqa: PLW0603 - the warm-invocation connection cache
    if _CLIENT is None or _CLIENT.config != config:
        close_connection()
        _CLIENT = _HaClient(config)
    return _CLIENT


def close_connection() -> None:
    """Drop the cached HA connection; the next invocation starts cold (tests, benchmarks)."""
    global _CLIENT  # noqa: PLW0603 - the warm-invocation connection cache
    if _CLIENT is not None:
        _CLIENT.close()
        _CLIENT = None


# --------------------------------------------------------------------------- the handler


@dataclasses.dataclass(slots=True)
class _Outcome:
    response: dict[str, Any]
    result: str = "forwarded"
    level: int = logging.INFO
    ha_status: int | None = None


def _failure(
    directive: _Directive, error_type: str, message: str, why: str, level: int = logging.WARNING
) -> _Outcome:
    response = _error_response(directive, error_type, message)
    return _Outcome(response, f"{response['event']['payload']['type']} ({why})", level)


def _network_failure(directive: _Directive, err: BaseException) -> _Outcome:
    if isinstance(err, _TooLarge):
        return _failure(
            directive, "INTERNAL_ERROR", "Home Assistant's answer is too large", "too large"
        )
    if isinstance(err, TimeoutError):
        why = "timeout"
    elif isinstance(err, ssl.SSLCertVerificationError):
        why = "TLS certificate rejected"
    elif isinstance(err, ssl.SSLError):
        why = "TLS error"
    elif isinstance(err, socket.gaierror):
        why = "DNS lookup failed"
    elif isinstance(err, ConnectionRefusedError):
        why = "connection refused"
    elif isinstance(err, (OSError, http.client.IncompleteRead)):
        why = f"connection lost ({type(err).__name__})"
    else:
        return _failure(
            directive,
            "INTERNAL_ERROR",
            "Home Assistant did not answer with valid HTTP",
            f"bad HTTP ({type(err).__name__})",
        )
    return _failure(directive, "BRIDGE_UNREACHABLE", "Home Assistant cannot be reached", why)


def _from_reply(directive: _Directive, reply: _Reply) -> _Outcome:
    status = reply.status
    if status in (401, 403):
        sniff = (reply.body[:4096].decode("utf-8", "replace") + reply.www_authenticate).lower()
        if "expired" in sniff or _jwt_expired(directive.token or ""):
            error_type, message = "EXPIRED_AUTHORIZATION_CREDENTIAL", "The account link expired"
        else:
            error_type = "INVALID_AUTHORIZATION_CREDENTIAL"
            message = "Home Assistant rejected the account link token"
        outcome = _failure(directive, error_type, message, f"HTTP {status}")
    elif not 200 <= status < 300:
        outcome = _failure(
            directive, "INTERNAL_ERROR", f"Home Assistant answered HTTP {status}", f"HTTP {status}"
        )
    else:
        try:
            message_obj = json.loads(reply.body, parse_constant=_reject_constant)
        except (ValueError, RecursionError):
            outcome = _failure(
                directive, "INTERNAL_ERROR", "Home Assistant's answer is not JSON", "not JSON"
            )
        else:
            if _is_alexa_message(message_obj):
                outcome = _Outcome(message_obj)
            else:
                outcome = _failure(
                    directive,
                    "INTERNAL_ERROR",
                    "Home Assistant's answer is not an Alexa message",
                    "not an Alexa message",
                )
    outcome.ha_status = status
    return outcome


def _forward(event: object, directive: _Directive, config: Config, deadline: float) -> _Outcome:
    token = directive.token
    if token is None or _TOKEN_RE.fullmatch(token) is None:
        return _failure(
            directive,
            "INVALID_AUTHORIZATION_CREDENTIAL",
            "The directive carries no usable access token",
            "no token",
        )
    if deadline - time.monotonic() < MIN_BUDGET_S:
        return _failure(
            directive,
            "INTERNAL_ERROR",
            "The Lambda has no time left to reach Home Assistant",
            "Lambda timeout too short",
            logging.ERROR,
        )
    body = json.dumps(event, separators=(",", ":")).encode("utf-8")
    if config.debug:
        _LOGGER.info("debug: directive %s", json.dumps(redact(event)))
    try:
        reply = _client_for(config).post(body, token, deadline)
    except (OSError, http.client.HTTPException, _TooLarge) as err:
        return _network_failure(directive, err)
    outcome = _from_reply(directive, reply)
    if config.debug:
        _LOGGER.info("debug: answer %s", json.dumps(redact(outcome.response)))
    return outcome


def _handle(
    event: object, directive: _Directive, context: LambdaContext | None, start: float
) -> _Outcome:
    if directive.problem is not None:
        return _failure(
            directive,
            "INVALID_DIRECTIVE",
            "Not an Alexa Smart Home v3 directive",
            directive.problem,
        )
    try:
        config = load_config(os.environ)
        _client_for(config)  # loads CA_BUNDLE: a broken file is a configuration error too
    except ConfigError as err:
        return _failure(
            directive,
            "INTERNAL_ERROR",
            "The Alexa skill's Lambda is not configured correctly",
            f"configuration: {err}",
            logging.ERROR,
        )
    remaining = (
        MAX_BUDGET_S + LAMBDA_MARGIN_S
        if context is None
        else context.get_remaining_time_in_millis() / 1000.0
    )
    budget = min(MAX_BUDGET_S, remaining - LAMBDA_MARGIN_S)
    return _forward(event, directive, config, start + budget)


def lambda_handler(event: object, context: LambdaContext | None) -> dict[str, Any]:
    """Forward one Alexa directive to HA and return HA's answer or an ErrorResponse.

    Never raises. Logs one summary line per invocation (plus the redacted directive and
    answer when DEBUG is on); never a token.
    """
    start = time.monotonic()
    directive = _Directive(problem="unparsed")
    try:
        directive = _parse_directive(event)
        outcome = _handle(event, directive, context, start)
    except Exception as err:  # a bug must still give Alexa an answer, not a Lambda error
        outcome = _failure(
            directive,
            "INTERNAL_ERROR",
            "Unexpected error in the Lambda",
            f"unexpected {type(err).__name__}",
            logging.ERROR,
        )
    _LOGGER.log(
        outcome.level,
        "%s endpoint=%s ha_status=%s result=%s ms=%.0f",
        directive.label,
        directive.endpoint_id or "-",
        outcome.ha_status if outcome.ha_status is not None else "-",
        outcome.result,
        (time.monotonic() - start) * 1000.0,
    )
    return outcome.response
