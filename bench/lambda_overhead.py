"""Overhead of the forwarding Lambda's handler per call, against a local HA stand-in.

overhead = the handler's wall time - the stand-in's own time for that request (from the
request line arriving to the answer being ready), i.e. what the Lambda itself adds: parsing,
JSON, TLS, HTTP, logging and the loopback round trip.

cold  a fresh SSL context, TCP connection and TLS handshake per call (a new Lambda sandbox);
warm  the kept-alive connection reused (a warm Lambda).

The stand-in runs in this process on another thread (TLS with a test CA from trustme), so
both share one GIL; the numbers are an upper bound of the real overhead, for comparing
changes, not an SLA. Nothing is asserted.

Usage: python -m bench.lambda_overhead [--quick] [--cold N] [--warm N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import ssl
import statistics
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import trustme

from lambda_proxy import lambda_function
from tests.lambda_proxy.ha_standin import HaStandin, Reply, Request

SAMPLES = Path(__file__).resolve().parents[1] / "tests" / "alexa_samples"
DIRECTIVE = "sample_messages__CameraStreamController__CameraStreamController.request.json"
ANSWER = "sample_messages__CameraStreamController__CameraStreamController.response.json"


class _Context:
    """A Lambda context with the template's 8 s timeout."""

    def get_remaining_time_in_millis(self) -> int:
        return 8000


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _percentiles(samples: list[float]) -> tuple[float, float]:
    """Median and p99 (nearest rank) of ``samples``."""
    ordered = sorted(samples)
    p99 = ordered[max(0, math.ceil(0.99 * len(ordered)) - 1)]
    return statistics.median(ordered), p99


def _measure(
    standin: HaStandin, directive: dict[str, object], calls: int, *, cold: bool
) -> list[float]:
    overheads: list[float] = []
    context = _Context()
    for _ in range(calls):
        if cold:
            lambda_function.close_connection()
        before = len(standin.server_times)
        started = time.perf_counter()
        answer = lambda_function.lambda_handler(directive, context)
        elapsed = time.perf_counter() - started
        if (
            answer["event"]["header"]["name"] != "Response"
            or len(standin.server_times) != before + 1
        ):
            raise RuntimeError(f"the stand-in did not answer as expected: {answer}")
        overheads.append(elapsed - standin.server_times[-1])
    return overheads


def run(cold_calls: int, warm_calls: int) -> dict[str, tuple[float, float]]:
    """Measure and return ``{"cold"|"warm": (median_s, p99_s)}``."""
    directive = json.loads((SAMPLES / DIRECTIVE).read_text(encoding="utf-8"))
    answer = json.dumps(json.loads((SAMPLES / ANSWER).read_text(encoding="utf-8"))).encode()

    def behavior(_request: Request) -> Reply:
        return Reply(body=answer)

    ca = trustme.CA()
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_tls)
    results: dict[str, tuple[float, float]] = {}
    with tempfile.TemporaryDirectory() as tmp, HaStandin(behavior, server_tls) as standin:
        bundle = Path(tmp) / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        with _environment({"HA_URL": standin.url, "CA_BUNDLE": str(bundle)}):
            try:
                results["cold"] = _percentiles(_measure(standin, directive, cold_calls, cold=True))
                lambda_function.close_connection()
                _measure(standin, directive, 1, cold=False)  # open the connection to reuse
                results["warm"] = _percentiles(_measure(standin, directive, warm_calls, cold=False))
            finally:
                lambda_function.close_connection()
    return results


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    """Parse arguments, run, print one line per mode and return the results."""
    parser = argparse.ArgumentParser(description="Lambda handler overhead per call")
    parser.add_argument("--quick", action="store_true", help="a few calls, to exercise the code")
    parser.add_argument("--cold", type=int, default=200, help="cold calls (default 200)")
    parser.add_argument("--warm", type=int, default=2000, help="warm calls (default 2000)")
    args = parser.parse_args(argv)
    cold_calls, warm_calls = (5, 20) if args.quick else (args.cold, args.warm)
    results = run(cold_calls, warm_calls)
    for mode, calls in (("cold", cold_calls), ("warm", warm_calls)):
        median, p99 = results[mode]
        print(
            f"{mode}: {calls} calls, handler overhead median {median * 1e6:.0f} us, "
            f"p99 {p99 * 1e6:.0f} us"
        )
    return results


if __name__ == "__main__":
    main()
