"""ACME DNS-01 through DuckDNS: set the TXT record with DuckDNS's update API, wait until
the name servers answer it, clear it afterwards.

DuckDNS keeps one TXT record per domain, set with
``GET <update_url>?domains=<sub>&token=<token>&txt=<value>`` (answer ``OK``/``KO``) and
removed with ``&clear=true``. Propagation is checked by asking the name servers
directly with a minimal DNS query (:func:`query_txt`, stdlib only). The update URL
and the name servers are settings so that tests can point them at fakes.

The token is a secret: it never appears in a log message or an exception.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import socket
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from typing import Final

from .acme_client import CHALLENGE_DNS_01, AcmeError

_LOGGER = logging.getLogger(__name__)

DUCKDNS_UPDATE_URL: Final = "https://www.duckdns.org/update"
DUCKDNS_SUFFIX: Final = ".duckdns.org"
# DuckDNS's authoritative name servers (asked directly: no resolver caches in between).
DUCKDNS_NAMESERVERS: Final = ("ns1.duckdns.org", "ns2.duckdns.org", "ns3.duckdns.org")
# Wait this long when no name server can be asked (DuckDNS usually answers within it).
BLIND_WAIT_SECONDS: Final = 60.0
_TYPE_TXT = 16
_CLASS_IN = 1


class DuckDnsError(AcmeError):
    """DuckDNS refused the update or the record did not propagate."""


def dns01_txt_value(key_authorization: str) -> str:
    """The TXT value of DNS-01 (RFC 8555 8.4): base64url(SHA-256(key authorization))."""
    digest = hashlib.sha256(key_authorization.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def duckdns_subdomain(host: str) -> str:
    """The DuckDNS ``domains`` value for ``host`` (``home`` for ``cam.home.duckdns.org``)."""
    host = host.lower().rstrip(".")
    if host.endswith(DUCKDNS_SUFFIX):
        return host[: -len(DUCKDNS_SUFFIX)].rsplit(".", 1)[-1]
    return host


def _encode_name(name: str) -> bytes:
    out = bytearray()
    for label in name.rstrip(".").split("."):
        raw = label.encode("idna")
        if not 0 < len(raw) < 64:
            raise ValueError(f"bad DNS label in {name!r}")
        out += bytes([len(raw)]) + raw
    return bytes(out + b"\x00")


def _skip_name(data: bytes, pos: int) -> int:
    while True:
        length = data[pos]
        if length & 0xC0 == 0xC0:
            return pos + 2
        if length == 0:
            return pos + 1
        pos += 1 + length


def build_txt_query(name: str, query_id: int) -> bytes:
    """A DNS query (RD off: ask the authoritative server) for the TXT records of ``name``."""
    header = struct.pack("!HHHHHH", query_id, 0, 1, 0, 0, 0)
    return header + _encode_name(name) + struct.pack("!HH", _TYPE_TXT, _CLASS_IN)


def parse_txt_answer(data: bytes, query_id: int) -> list[str]:
    """The TXT strings in a DNS response to query ``query_id`` (each record joined)."""
    if len(data) < 12:
        raise ValueError("short DNS response")
    qid, flags, qdcount, ancount, _ns, _ar = struct.unpack("!HHHHHH", data[:12])
    if qid != query_id or not flags & 0x8000:
        raise ValueError("not the response to our query")
    rcode = flags & 0x000F
    if rcode not in (0, 3):  # NOERROR, NXDOMAIN
        raise ValueError(f"DNS error rcode {rcode}")
    pos = 12
    for _ in range(qdcount):
        pos = _skip_name(data, pos) + 4
    values: list[str] = []
    for _ in range(ancount):
        pos = _skip_name(data, pos)
        rtype, _rclass, _ttl, rdlength = struct.unpack("!HHIH", data[pos : pos + 10])
        pos += 10
        rdata = data[pos : pos + rdlength]
        pos += rdlength
        if rtype != _TYPE_TXT:
            continue
        parts: list[bytes] = []
        i = 0
        while i < len(rdata):
            n = rdata[i]
            parts.append(rdata[i + 1 : i + 1 + n])
            i += 1 + n
        values.append(b"".join(parts).decode("utf-8", "replace"))
    return values


def query_txt(server: tuple[str, int], name: str, timeout: float = 3.0) -> list[str]:
    """Ask ``server`` (host, port) over UDP for the TXT records of ``name``."""
    query_id = secrets.randbelow(65536)
    host, port = server
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as sock:
        sock.settimeout(timeout)
        sock.connect((host, port))
        sock.send(build_txt_query(name, query_id))
        deadline = time.monotonic() + timeout
        while True:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            data = sock.recv(4096)
            try:
                return parse_txt_answer(data, query_id)
            except ValueError:
                if time.monotonic() >= deadline:
                    raise


class DuckDnsSolver:
    """DNS-01 solver: publishes the TXT record through DuckDNS (blocking calls)."""

    challenge_type = CHALLENGE_DNS_01

    def __init__(
        self,
        token: str,
        *,
        update_url: str = DUCKDNS_UPDATE_URL,
        nameservers: Sequence[tuple[str, int]] | None = None,
        propagation_timeout: float = 300.0,
        poll_interval: float = 5.0,
    ) -> None:
        """``nameservers``: (host, port) pairs to check; None = DuckDNS's own."""
        self._token = token
        self._update_url = update_url
        self._nameservers = list(nameservers or [(ns, 53) for ns in DUCKDNS_NAMESERVERS])
        self._timeout = propagation_timeout
        self._interval = poll_interval

    def _update(self, domain: str, **params: str) -> None:
        query = urllib.parse.urlencode(
            {"domains": duckdns_subdomain(domain), "token": self._token, **params}
        )
        url = f"{self._update_url}?{query}"
        if not url.startswith(("https://", "http://")):
            raise DuckDnsError("the DuckDNS update URL must be http(s)")
        try:
            with urllib.request.urlopen(url, timeout=30) as resp:  # noqa: S310 - http(s) only
                body = resp.read(64).decode("ascii", "replace").strip()
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise DuckDnsError(f"DuckDNS update failed: {reason}") from None
        if not body.startswith("OK"):
            raise DuckDnsError("DuckDNS refused the TXT update (check the token and the domain)")

    def present(self, domain: str, token: str, key_authorization: str) -> None:
        """Set ``_acme-challenge.<domain>`` and wait until every name server answers it."""
        value = dns01_txt_value(key_authorization)
        self._update(domain, txt=value)
        self.wait_for(f"_acme-challenge.{domain.rstrip('.')}", value)

    def cleanup(self, domain: str, token: str, key_authorization: str) -> None:
        """Clear the TXT record."""
        self._update(domain, txt="removed", clear="true")

    def _resolve(self) -> list[tuple[str, int]]:
        servers: list[tuple[str, int]] = []
        for host, port in self._nameservers:
            try:
                infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_DGRAM)
            except OSError:
                continue
            servers.append((str(infos[0][4][0]), port))
        return servers

    def wait_for(self, name: str, value: str) -> None:
        """Poll the name servers until all answer ``value`` for ``name`` (or time out)."""
        deadline = time.monotonic() + self._timeout
        while True:
            servers = self._resolve()
            if not servers:
                # cannot ask the name servers directly: give DuckDNS a fixed while
                _LOGGER.warning(
                    "No name server to check the TXT record with; waiting %.0f s instead",
                    min(self._timeout, BLIND_WAIT_SECONDS),
                )
                time.sleep(min(self._timeout, BLIND_WAIT_SECONDS))
                return
            seen = 0
            for server in servers:
                try:
                    if value in query_txt(server, name):
                        seen += 1
                except (OSError, ValueError) as err:
                    _LOGGER.debug("TXT query to %s failed: %s", server[0], err)
            if seen == len(servers):
                return
            if time.monotonic() >= deadline:
                raise DuckDnsError(
                    f"the TXT record for {name} did not appear on "
                    f"{seen}/{len(servers)} name servers in {self._timeout:.0f} s"
                )
            time.sleep(self._interval)
