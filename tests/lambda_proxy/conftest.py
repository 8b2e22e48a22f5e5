"""Fixtures for the Lambda tests: a test CA, HA stand-ins and a clean Lambda environment."""

from __future__ import annotations

import dataclasses
import json
import ssl
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
import trustme

from lambda_proxy import lambda_function
from tests.lambda_proxy.ha_standin import Behavior, HaStandin

SAMPLES = Path(__file__).parents[1] / "alexa_samples"
ENV_NAMES = ("HA_URL", "ALLOW_HTTP", "VERIFY_TLS", "CA_BUNDLE", "DEBUG")

StandinFactory = Callable[..., HaStandin]


@dataclasses.dataclass
class FakeContext:
    """A Lambda context as the runtime passes it: only the remaining time matters here."""

    remaining_ms: int = 8000

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def load_sample(name: str) -> dict[str, Any]:
    """One of Amazon's sample messages, by the part of its file name after the last ``__``."""
    (path,) = SAMPLES.glob(f"*__{name}.json")
    message: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return message


def compact(message: object) -> bytes:
    """The compact JSON encoding both the stand-in and the Lambda use on the wire."""
    return json.dumps(message, separators=(",", ":")).encode("utf-8")


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    """The CA the Lambda is told to trust through CA_BUNDLE."""
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_bundle(test_ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    """Path of the test CA's certificate as a PEM file."""
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    return str(path)


def server_context(ca: trustme.CA, *hostnames: str) -> ssl.SSLContext:
    """A server-side TLS context with a leaf for ``hostnames`` issued by ``ca``."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*hostnames).configure_cert(context)
    return context


@pytest.fixture(scope="session")
def trusted_tls(test_ca: trustme.CA) -> ssl.SSLContext:
    """Server TLS context whose certificate the Lambda trusts (via CA_BUNDLE)."""
    return server_context(test_ca, "127.0.0.1")


@pytest.fixture
def make_standin(trusted_tls: ssl.SSLContext) -> Iterator[StandinFactory]:
    """Start HA stand-ins (HTTPS with the trusted certificate unless told otherwise)."""
    with ExitStack() as stack:

        def start(behavior: Behavior, tls: ssl.SSLContext | bool | None = True) -> HaStandin:
            context = trusted_tls if tls is True else (tls or None)
            return stack.enter_context(HaStandin(behavior, context))

        yield start
        lambda_function.close_connection()  # let the stand-ins' handler threads finish


@pytest.fixture(autouse=True)
def lambda_env(
    monkeypatch: pytest.MonkeyPatch, socket_enabled: None
) -> Iterator[pytest.MonkeyPatch]:
    """A clean Lambda environment and no connection left over from another test.

    Sockets are enabled (pytest-socket still limits connects to 127.0.0.1).
    """
    for name in ENV_NAMES:
        monkeypatch.delenv(name, raising=False)
    lambda_function.close_connection()
    yield monkeypatch
    lambda_function.close_connection()
