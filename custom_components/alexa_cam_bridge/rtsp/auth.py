"""RTSP authentication: Basic and Digest (RFC 2617 / RFC 2069), server and client side.

Server side, built around what Android's stagefright client (the Echo's player, AOSP
``ARTSPConnection``) actually does:

- It stores response headers in a keyed map, so of several ``WWW-Authenticate`` headers
  only the **last** one counts. :func:`www_authenticate_headers` therefore lists Basic
  first and Digest last: a stock client uses Digest when both are offered, and every
  RFC 7235 client picks the scheme it prefers regardless of order. A challenge must
  start with exactly ``Basic`` or ``Digest`` and carry ``nonce="..."`` quoted (anything
  else aborts the client).
- Its Digest ignores the announced realm and hashes with ``"Streaming Server"``, so
  :data:`REALM` is exactly that. It ignores ``qop`` and sends RFC 2069 ("legacy") Digest
  without ``nc``/``cnonce``, so by default no ``qop`` is offered (``offer_qop=True``
  offers ``qop="auth"`` for clients that want it; legacy answers stay accepted, and
  GStreamer's rtspsrc, for one, answers RFC 2069 style even when qop is offered).
- It sends ``uri="<request-URI> "`` with a trailing space *inside* the quotes and hashes
  that exact string; :func:`parse_authorization` keeps the raw value and
  :func:`verify_digest` hashes what the client sent.
- It authenticates once per connection and then reuses the first nonce on every
  request (keep-alive OPTIONS every ~54 s, TEARDOWN), and never retries after a second
  401 — ``stale=true`` cannot help it.

Nonce rules (:class:`DigestNonceStore`):

- A nonce is ``base64url(issue time, random, HMAC)``: nonces the store did not issue are
  ``"invalid"``; issued ones it no longer remembers (evicted) are ``"stale"``.
- A nonce is bound to the connection it was issued on (``issue(connection_id)``);
  presented on any other connection it is ``"replay"``. This is the replay protection
  for legacy Digest, whose responses carry no counter: a captured Authorization header
  cannot be used to open a new connection.
- With ``qop=auth`` the nonce count ``nc`` must strictly increase per nonce, else
  ``"replay"``.
- Lifetime is sliding: a nonce is ``"stale"`` once ``lifetime`` seconds pass without a
  use (counted from issue for a never-used nonce), or ``max_age`` after issue. A client
  that keeps its session alive keeps its nonce; an idle or abandoned one expires. So
  ``lifetime`` must exceed the keep-alive interval (0.9 x the announced session timeout).
- Memory is bounded: ``max_nonces`` in all, and only the latest few never-used nonces
  per connection, so unauthenticated requests cannot evict a viewer's nonce (which a
  stock client could not replace).

Client side: :func:`client_authorization` answers a camera's challenge, preferring Digest
(MD5, MD5-sess, SHA-256, with or without qop=auth) over Basic.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
import struct
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from typing import Literal

REALM = "Streaming Server"

NonceCheck = Literal["ok", "stale", "invalid", "replay"]


@dataclass(frozen=True)
class BasicCredentials:
    """Credentials from ``Authorization: Basic``."""

    username: str
    password: str = field(repr=False)
    scheme: Literal["basic"] = field(default="basic", init=False)


@dataclass(frozen=True)
class DigestCredentials:
    """Parameters from ``Authorization: Digest`` (values raw, as the client sent them)."""

    username: str
    realm: str | None
    nonce: str
    uri: str
    response: str
    qop: str | None = None
    nc: str | None = None
    cnonce: str | None = None
    algorithm: str | None = None
    opaque: str | None = None
    scheme: Literal["digest"] = field(default="digest", init=False)


Credentials = BasicCredentials | DigestCredentials


# ---------------------------------------------------------------------------------------
# Header parameter parsing

_HTTP_TCHARS = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM = re.compile(
    rf"\s*({_HTTP_TCHARS})\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|([^\s,\"=][^\s,\"]*|))\s*(?:,|$)",
    re.DOTALL,
)
_SCHEME = re.compile(rf"\s*({_HTTP_TCHARS})(?=\s|$|,)")
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)


def _parse_params(text: str, pos: int = 0) -> tuple[dict[str, str], int]:
    """Parse ``k=v, k="v"`` pairs from ``pos``; return (params, where parsing stopped).

    Stops at the first item that is not a parameter (e.g. the next challenge's scheme).
    Names are lower-cased; the first occurrence of a name wins.
    """
    params: dict[str, str] = {}
    while pos < len(text):
        match = _PARAM.match(text, pos)
        if match is None:
            break
        name = match.group(1).lower()
        quoted, bare = match.group(2), match.group(3)
        value = _UNESCAPE.sub(r"\1", quoted) if quoted is not None else bare
        params.setdefault(name, value)
        pos = match.end()
        while pos < len(text) and text[pos] in " \t,":
            pos += 1
    return params, pos


def parse_authorization(value: str) -> Credentials | None:
    """Parse an ``Authorization`` header; None if malformed or of another scheme."""
    scheme, _, rest = value.strip().partition(" ")
    scheme = scheme.lower()
    if scheme == "basic":
        try:
            decoded = base64.b64decode(rest.strip(), validate=True)
        except (binascii.Error, ValueError):
            return None
        try:
            text = decoded.decode("utf-8")
        except UnicodeDecodeError:
            text = decoded.decode("latin-1")
        username, colon, password = text.partition(":")
        return BasicCredentials(username, password) if colon else None
    if scheme != "digest":
        return None
    params, end = _parse_params(rest)
    if rest[end:].strip():
        return None
    required = ("username", "nonce", "uri", "response")
    if any(name not in params for name in required):
        return None
    return DigestCredentials(
        username=params["username"],
        realm=params.get("realm"),
        nonce=params["nonce"],
        uri=params["uri"],
        response=params["response"],
        qop=params.get("qop"),
        nc=params.get("nc"),
        cnonce=params.get("cnonce"),
        algorithm=params.get("algorithm"),
        opaque=params.get("opaque"),
    )


# ---------------------------------------------------------------------------------------
# Digest computation

_HASHES: dict[str, Callable[[bytes], str]] = {
    "MD5": lambda data: hashlib.md5(data, usedforsecurity=False).hexdigest(),
    "SHA-256": lambda data: hashlib.sha256(data).hexdigest(),
}


def _split_algorithm(algorithm: str | None) -> tuple[Callable[[bytes], str], bool] | None:
    """(hash function, is-session-variant) for an ``algorithm`` value, None if unknown."""
    name = (algorithm or "MD5").strip().upper()
    session = name.endswith("-SESS")
    digest = _HASHES.get(name.removesuffix("-SESS"))
    return None if digest is None else (digest, session)


def digest_response(
    *,
    username: str,
    password: str,
    realm: str,
    method: str,
    uri: str,
    nonce: str,
    algorithm: str | None = None,
    qop: str | None = None,
    nc: str | None = None,
    cnonce: str | None = None,
) -> str:
    """The Digest ``response`` value (RFC 2617 §3.2.2; RFC 2069 when ``qop`` is None).

    Raises ``ValueError`` for an unsupported algorithm or qop, or a qop without nc/cnonce.
    """
    chosen = _split_algorithm(algorithm)
    if chosen is None:
        raise ValueError(f"unsupported Digest algorithm {algorithm!r}")
    digest, session = chosen
    ha1 = digest(f"{username}:{realm}:{password}".encode())
    if session:
        if cnonce is None:
            raise ValueError("session algorithms need a cnonce")
        ha1 = digest(f"{ha1}:{nonce}:{cnonce}".encode())
    ha2 = digest(f"{method}:{uri}".encode())
    if qop is None:
        return digest(f"{ha1}:{nonce}:{ha2}".encode())
    if qop.lower() != "auth":
        raise ValueError(f"unsupported qop {qop!r}")
    if nc is None or cnonce is None:
        raise ValueError("qop=auth needs nc and cnonce")
    return digest(f"{ha1}:{nonce}:{nc}:{cnonce}:{qop}:{ha2}".encode())


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def verify_digest(
    creds: DigestCredentials,
    *,
    method: str,
    password: str,
    realm: str = REALM,
    username: str | None = None,
) -> bool:
    """Check a Digest response against ``password`` (and ``username`` when given).

    The hash uses ``realm`` (what we announced; AOSP hashes with it whatever it is told),
    the request ``method`` and the client's raw ``uri`` parameter (AOSP's trailing space
    included). Supports RFC 2069 (no qop) and ``qop=auth`` with MD5, MD5-sess, SHA-256.
    The nonce itself is checked separately by :class:`DigestNonceStore`. Comparisons are
    constant-time and not short-circuited.
    """
    try:
        expected = digest_response(
            username=creds.username,
            password=password,
            realm=realm,
            method=method,
            uri=creds.uri,
            nonce=creds.nonce,
            algorithm=creds.algorithm,
            qop=creds.qop,
            nc=creds.nc,
            cnonce=creds.cnonce,
        )
    except ValueError:
        return False
    response_ok = _same(expected, creds.response.strip().lower())
    user_ok = True if username is None else _same(creds.username, username)
    return response_ok & user_ok


def verify_basic(creds: BasicCredentials, username: str, password: str) -> bool:
    """Check Basic credentials in constant time (both fields always compared)."""
    user_ok = _same(creds.username, username)
    password_ok = _same(creds.password, password)
    return user_ok & password_ok


# ---------------------------------------------------------------------------------------
# Nonces


@dataclass
class _NonceState:
    connection_id: Hashable | None
    issued: float
    last_used: float
    last_nc: int = 0
    used: bool = False


_NONCE_HEAD = struct.Struct("!d12s")
_MAC_SIZE = 16


class DigestNonceStore:
    """Issues and checks Digest nonces; see the module docstring for the rules.

    ``lifetime`` is the sliding idle limit, ``max_age`` the absolute one; at most
    ``max_nonces`` are remembered (least recently active evicted first), and at most
    ``max_unused_per_connection`` never-used nonces per connection (older ones are
    dropped), so one connection cannot flood the store and evict other viewers' nonces.
    """

    def __init__(
        self,
        *,
        secret: bytes | None = None,
        lifetime: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_nonces: int = 4096,
        max_age: float = 24 * 3600.0,
        max_unused_per_connection: int = 4,
    ) -> None:
        """Create a store; a random secret is used unless one is given."""
        self._secret = secret if secret is not None else os.urandom(32)
        self.lifetime = lifetime
        self.max_age = max_age
        self._clock = clock
        self._max_nonces = max_nonces
        self._max_unused = max(1, max_unused_per_connection)
        self._nonces: OrderedDict[str, _NonceState] = OrderedDict()
        self._unused: dict[Hashable, deque[str]] = {}

    def __len__(self) -> int:
        """Number of nonces currently remembered."""
        return len(self._nonces)

    def _mac(self, head: bytes) -> bytes:
        return hmac.new(self._secret, head, hashlib.sha256).digest()[:_MAC_SIZE]

    def issue(self, connection_id: Hashable | None = None) -> str:
        """Issue a nonce bound to ``connection_id`` (unbound ones bind on first use)."""
        now = self._clock()
        self._purge(now)
        head = _NONCE_HEAD.pack(now, os.urandom(12))
        nonce = base64.urlsafe_b64encode(head + self._mac(head)).decode("ascii")
        self._nonces[nonce] = _NonceState(connection_id, now, now)
        if connection_id is not None:
            pending = self._unused.setdefault(connection_id, deque())
            pending.append(nonce)
            while len(pending) > self._max_unused:
                self._drop(pending[0])
        while len(self._nonces) > self._max_nonces:
            self._drop(next(iter(self._nonces)))
        return nonce

    def _signed(self, nonce: str) -> bool:
        try:
            raw = base64.urlsafe_b64decode(nonce.encode("ascii"))
        except (binascii.Error, ValueError, UnicodeEncodeError):
            return False
        if len(raw) != _NONCE_HEAD.size + _MAC_SIZE:
            return False
        head, mac = raw[: _NONCE_HEAD.size], raw[_NONCE_HEAD.size :]
        return hmac.compare_digest(mac, self._mac(head))

    def check(
        self, nonce: str, nc: str | None, connection_id: Hashable | None = None
    ) -> NonceCheck:
        """Check (and record) a use of ``nonce`` with nonce count ``nc`` (None: legacy).

        Call it for each request carrying Digest credentials, alongside
        :func:`verify_digest`; answer 401 with ``stale=true`` for ``"stale"`` and a plain
        401 for ``"invalid"`` and ``"replay"``.
        """
        if not self._signed(nonce):
            return "invalid"
        state = self._nonces.get(nonce)
        if state is None:
            return "stale"
        if state.connection_id is None:
            state.connection_id = connection_id
        elif connection_id != state.connection_id:
            return "replay"
        now = self._clock()
        if now - state.last_used > self.lifetime or now - state.issued > self.max_age:
            self._drop(nonce)
            return "stale"
        if nc is not None:
            if not re.fullmatch(r"[0-9A-Fa-f]{1,8}", nc.strip()):
                return "invalid"
            count = int(nc, 16)
            if count <= state.last_nc:
                return "replay"
            state.last_nc = count
        if not state.used:
            state.used = True
            self._forget_unused(nonce, state)
        state.last_used = now
        self._nonces.move_to_end(nonce)
        return "ok"

    def forget_connection(self, connection_id: Hashable) -> None:
        """Drop every nonce bound to a connection that has closed."""
        for nonce in [n for n, s in self._nonces.items() if s.connection_id == connection_id]:
            self._drop(nonce)
        self._unused.pop(connection_id, None)

    def _forget_unused(self, nonce: str, state: _NonceState) -> None:
        pending = self._unused.get(state.connection_id)
        if pending is None:
            return
        if nonce in pending:
            pending.remove(nonce)
        if not pending:
            del self._unused[state.connection_id]

    def _drop(self, nonce: str) -> None:
        state = self._nonces.pop(nonce, None)
        if state is not None:
            self._forget_unused(nonce, state)

    def _purge(self, now: float) -> None:
        """Drop nonces idle for longer than the lifetime (oldest activity first)."""
        while self._nonces:
            nonce, state = next(iter(self._nonces.items()))
            if now - state.last_used <= self.lifetime:
                break
            self._drop(nonce)


# ---------------------------------------------------------------------------------------
# Challenges


def _quote(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'"{escaped}"'


def www_authenticate_headers(
    nonce: str,
    *,
    stale: bool = False,
    digest: bool = True,
    allow_basic: bool = True,
    offer_qop: bool = False,
    realm: str = REALM,
) -> list[str]:
    """``WWW-Authenticate`` values for a 401, one header each, Basic first, Digest last.

    Digest is last because AOSP keeps only the last ``WWW-Authenticate`` header. It is
    RFC 2069 style (no qop) unless ``offer_qop``; ``stale`` adds ``stale=TRUE``.
    """
    if not digest and not allow_basic:
        raise ValueError("offer at least one scheme")
    values: list[str] = []
    if allow_basic:
        values.append(f"Basic realm={_quote(realm)}")
    if digest:
        challenge = f"Digest realm={_quote(realm)}, nonce={_quote(nonce)}, algorithm=MD5"
        if offer_qop:
            challenge += ', qop="auth"'
        if stale:
            challenge += ", stale=TRUE"
        values.append(challenge)
    return values


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: its scheme (lower-case) and parameters."""

    scheme: str
    params: dict[str, str]


def parse_challenges(values: list[str]) -> list[Challenge]:
    """Parse ``WWW-Authenticate`` values, each possibly holding several challenges."""
    challenges: list[Challenge] = []
    for value in values:
        pos = 0
        while pos < len(value):
            match = _SCHEME.match(value, pos)
            if match is None:
                break
            params, pos = _parse_params(value, match.end())
            challenges.append(Challenge(match.group(1).lower(), params))
            while pos < len(value) and value[pos] in " \t,":
                pos += 1
    return challenges


def client_authorization(
    www_authenticate: list[str],
    *,
    method: str,
    uri: str,
    username: str,
    password: str,
    nc: int = 1,
    cnonce: str | None = None,
) -> str | None:
    """An ``Authorization`` value answering a camera's challenges; None if none usable.

    Digest (MD5, MD5-sess or SHA-256; ``qop=auth`` when offered, else RFC 2069) is
    preferred over Basic. ``nc`` is this request's nonce count for the challenge's nonce.
    """
    challenges = parse_challenges(www_authenticate)
    for challenge in challenges:
        if challenge.scheme != "digest" or "nonce" not in challenge.params:
            continue
        params = challenge.params
        if _split_algorithm(params.get("algorithm")) is None:
            continue
        offered_qops = {q.strip().lower() for q in params.get("qop", "").split(",")}
        qop = "auth" if "auth" in offered_qops else None
        if qop is None and offered_qops - {""}:
            continue  # only auth-int offered
        algorithm = params.get("algorithm")
        session = algorithm is not None and algorithm.upper().endswith("-SESS")
        if (qop or session) and cnonce is None:
            cnonce = os.urandom(8).hex()
        nc_text = f"{nc:08x}"
        realm = params.get("realm", "")
        response = digest_response(
            username=username,
            password=password,
            realm=realm,
            method=method,
            uri=uri,
            nonce=params["nonce"],
            algorithm=algorithm,
            qop=qop,
            nc=nc_text if qop else None,
            cnonce=cnonce,
        )
        parts = [
            f"username={_quote(username)}",
            f"realm={_quote(realm)}",
            f"nonce={_quote(params['nonce'])}",
            f"uri={_quote(uri)}",
            f"response={_quote(response)}",
        ]
        if algorithm is not None:
            parts.append(f"algorithm={algorithm}")
        if "opaque" in params:
            parts.append(f"opaque={_quote(params['opaque'])}")
        if qop is not None:
            parts += [f"qop={qop}", f"nc={nc_text}"]
        if cnonce is not None and (qop or session):
            parts.append(f"cnonce={_quote(cnonce)}")
        return "Digest " + ", ".join(parts)
    if any(c.scheme == "basic" for c in challenges):
        token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
        return f"Basic {token}"
    return None
