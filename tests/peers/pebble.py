"""Pebble (a small real ACME server) and pebble-challtestsrv as test peers.

``Pebble(tls_port=...)`` writes a config into a private temporary directory (Debian's
package ships no config at its default path), starts ``pebble-challtestsrv`` as Pebble's
DNS server (``-dnsserver``; every A query answers 127.0.0.1, no AAAA) and then ``pebble``
with ``PEBBLE_VA_NOSLEEP=1 PEBBLE_WFE_NONCEREJECT=0 PEBBLE_AUTHZREUSE=0`` and
``PEBBLE_ALTERNATE_ROOTS`` (alternate chains). Everything listens on 127.0.0.1.

- ``directory_url`` / ``ca_bundle``: what an ACME client needs (the listener certificate
  comes from a trustme CA, written to ``ca_bundle``).
- ``tls_port``: where Pebble's validation authority connects for TLS-ALPN-01 — the
  front door's port.
- ``root_pem(i)`` / ``root_name(i)``: Pebble's issuing roots (regenerated per start),
  from the management interface.
- ``set_txt`` / ``clear_txt``: DNS-01 records in challtestsrv.
- ``kill`` / ``revive``: the ACME server down and up again (same ports, new state).

Fixtures: import ``pebble_server_fixture, pebble_fixture`` into a test module to get one
Pebble per module (``pebble``).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.x509.oid import NameOID

from tests.peers.process import ManagedPeer, free_port, terminate

PEBBLE = "/usr/bin/pebble"
CHALLTESTSRV = "/usr/bin/pebble-challtestsrv"


class PebbleError(RuntimeError):
    """Pebble or challtestsrv did not start (the message carries their output)."""


def _wait_port(port: int, process: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        with socket.socket() as sock:
            sock.settimeout(0.2)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return True
        time.sleep(0.02)
    return False


class Pebble(ManagedPeer):
    """A running Pebble ACME server with challtestsrv as its DNS."""

    def __init__(self, *, tls_port: int = 0, alternate_roots: int = 2) -> None:
        """Store settings; :meth:`start` picks free ports (``tls_port`` too when 0).

        Creating the object opens no socket (pytest-socket may forbid it at that time).
        """
        self.tls_port = tls_port
        self.alternate_roots = alternate_roots
        self.http_port = 0
        self.acme_port = 0
        self.management_port = 0
        self.dns_port = 0
        self.challtest_port = 0
        self._dir: Path | None = None
        self._pebble: subprocess.Popen[bytes] | None = None
        self._challtest: subprocess.Popen[bytes] | None = None
        self._ca = trustme.CA(organization_name="pebble listener test CA")

    @property
    def directory_url(self) -> str:
        """The ACME directory."""
        return f"https://127.0.0.1:{self.acme_port}/dir"

    @property
    def ca_bundle(self) -> str:
        """PEM file with the CA of Pebble's HTTPS listener."""
        assert self._dir is not None
        return str(self._dir / "listener-ca.pem")

    @property
    def dns_server(self) -> tuple[str, int]:
        """challtestsrv's DNS server (UDP and TCP)."""
        return ("127.0.0.1", self.dns_port)

    def start(self) -> None:
        """Start challtestsrv, then Pebble; return once both accept connections."""
        self._dir = Path(tempfile.mkdtemp(prefix="pebble-"))
        self.tls_port = self.tls_port or free_port()
        self.http_port = free_port()
        self.acme_port = free_port()
        self.management_port = free_port()
        self.dns_port = free_port()
        self.challtest_port = free_port()
        leaf = self._ca.issue_cert("127.0.0.1", "localhost")
        leaf.cert_chain_pems[0].write_to_path(str(self._dir / "listener.pem"))
        leaf.private_key_pem.write_to_path(str(self._dir / "listener.key"))
        self._ca.cert_pem.write_to_path(self.ca_bundle)
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.acme_port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(self._dir / "listener.pem"),
                "privateKey": str(self._dir / "listener.key"),
                "httpPort": self.http_port,
                "tlsPort": self.tls_port,
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
            }
        }
        config_path = self._dir / "pebble-config.json"
        config_path.write_text(json.dumps(config))
        self._challtest = subprocess.Popen(
            [
                CHALLTESTSRV,
                "-dns01",
                f"127.0.0.1:{self.dns_port}",
                "-management",
                f"127.0.0.1:{self.challtest_port}",
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ],
            stdout=(self._dir / "challtestsrv.log").open("wb"),
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 60
        if not _wait_port(self.challtest_port, self._challtest, deadline):
            log = self.logs()
            self.stop()
            raise PebbleError(f"pebble-challtestsrv did not start:\n{log}")
        self.revive()

    def revive(self) -> None:
        """(Re)start the Pebble process on the same ports (after :meth:`kill`).

        A restarted Pebble has new roots and has forgotten every account and order.
        """
        assert self._dir is not None
        env = {
            **os.environ,
            "PEBBLE_VA_NOSLEEP": "1",
            "PEBBLE_WFE_NONCEREJECT": "0",
            "PEBBLE_AUTHZREUSE": "0",
            "PEBBLE_ALTERNATE_ROOTS": str(self.alternate_roots),
        }
        self._pebble = subprocess.Popen(
            [
                PEBBLE,
                "-config",
                str(self._dir / "pebble-config.json"),
                "-dnsserver",
                f"127.0.0.1:{self.dns_port}",
            ],
            stdout=(self._dir / "pebble.log").open("ab"),
            stderr=subprocess.STDOUT,
            env=env,
        )
        deadline = time.monotonic() + 60  # RSA root generation is slow on a busy machine
        if not all(
            _wait_port(port, self._pebble, deadline)
            for port in (self.acme_port, self.management_port)
        ):
            log = self.logs()
            self.stop()
            raise PebbleError(f"pebble did not start:\n{log}")

    @property
    def running(self) -> bool:
        """True between :meth:`start` and :meth:`stop`."""
        return self._dir is not None

    def logs(self) -> str:
        """Both processes' output so far."""
        if self._dir is None:
            return ""
        return "\n".join(
            (self._dir / name).read_text(errors="replace")
            for name in ("challtestsrv.log", "pebble.log")
            if (self._dir / name).exists()
        )

    def kill(self) -> None:
        """Stop Pebble only (the ACME server goes down; challtestsrv stays)."""
        if self._pebble is not None:
            terminate(self._pebble)
            self._pebble = None

    def stop(self) -> None:
        """Stop both processes and remove the temporary directory (idempotent)."""
        self.kill()
        if self._challtest is not None:
            terminate(self._challtest)
            self._challtest = None
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None

    # -- management ----------------------------------------------------------------------

    def _context(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=self.ca_bundle)

    def root_pem(self, index: int = 0) -> bytes:
        """Pebble's issuing root ``index`` (0 = default chain's root)."""
        url = f"https://127.0.0.1:{self.management_port}/roots/{index}"
        with urllib.request.urlopen(url, context=self._context(), timeout=5) as resp:
            body: bytes = resp.read()
            return body

    def root_name(self, index: int = 0) -> str:
        """The Common Name of root ``index``."""
        cert = x509.load_pem_x509_certificate(self.root_pem(index))
        return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)

    def _challtest_post(self, path: str, body: dict[str, str]) -> None:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.challtest_port}{path}",
            data=json.dumps(body).encode(),
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=5) as resp:
            resp.read()

    def set_txt(self, host: str, value: str) -> None:
        """Add a TXT record (``host`` is a name like ``_acme-challenge.cam.test``)."""
        self._challtest_post("/set-txt", {"host": host.rstrip(".") + ".", "value": value})

    def clear_txt(self, host: str) -> None:
        """Remove the TXT records of ``host``."""
        self._challtest_post("/clear-txt", {"host": host.rstrip(".") + "."})


@pytest.fixture(scope="module", name="pebble_server")
def pebble_server_fixture() -> Iterator[Pebble]:
    """One Pebble per test module, started lazily by :func:`pebble_fixture`."""
    server = Pebble()
    yield server
    server.stop()


@pytest.fixture(name="pebble")
def pebble_fixture(pebble_server: Pebble, socket_enabled: None) -> Pebble:
    """The module's Pebble, running (started here: sockets are allowed in a test)."""
    if not pebble_server.running:
        pebble_server.start()
    return pebble_server
