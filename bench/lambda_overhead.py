"""Overhead of the forwarding Lambda's handler per call, against a local HA stand-in.

overhead = the handler's wall time - the stand-in's own time for that request (from the
request line arriving to the answer being ready), i.e. what the Lambda itself adds: parsing,
JSON, TLS, HTTP, logging and the loopback round trip.

cold  a fresh SSL context, TCP connection and TLS handshake per call (a new Lambda sandbox);
warm  the kept-alive connection reused (a warm Lambda).

The stand-in (tests/lambda_proxy/ha_standin.py, TLS with a test CA from trustme) runs in a
child process, so it does not compete with the handler for this process's GIL; it reports
its per-request times when the run ends. The numbers are for comparing changes, not an SLA.
Nothing is asserted.

Usage: python -m bench.lambda_overhead [--quick] [--cold N] [--warm N]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import trustme

from lambda_proxy import lambda_function
from tests.lambda_proxy.ha_standin import HaStandin, Reply

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "tests" / "alexa_samples"
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


def _serve_standin(cert_chain_pem: str, answer_file: str) -> None:
    """Child process: serve the canned answer, print the URL, and on stdin EOF the times."""
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert_chain_pem)
    reply = Reply(body=Path(answer_file).read_bytes())
    with HaStandin(lambda _request: reply, tls) as standin:
        print(standin.url, flush=True)
        sys.stdin.read()
    print(json.dumps(standin.server_times), flush=True)


def _time_calls(directive: dict[str, Any], calls: int, *, cold: bool) -> list[float]:
    """Wall time of each handler call (seconds)."""
    elapsed: list[float] = []
    context = _Context()
    for _ in range(calls):
        if cold:
            lambda_function.close_connection()
        started = time.perf_counter()
        answer = lambda_function.lambda_handler(directive, context)
        elapsed.append(time.perf_counter() - started)
        if answer["event"]["header"]["name"] != "Response":
            raise RuntimeError(f"the stand-in did not answer as expected: {answer}")
    return elapsed


def run(cold_calls: int, warm_calls: int) -> dict[str, tuple[float, float]]:
    """Measure and return ``{"cold"|"warm": (median_s, p99_s)}`` of the overhead."""
    directive = json.loads((SAMPLES / DIRECTIVE).read_text(encoding="utf-8"))
    answer = json.loads((SAMPLES / ANSWER).read_text(encoding="utf-8"))
    ca = trustme.CA()
    with tempfile.TemporaryDirectory() as tmp:
        bundle, chain, answer_file = (Path(tmp) / n for n in ("ca.pem", "leaf.pem", "a.json"))
        ca.cert_pem.write_to_path(str(bundle))
        ca.issue_cert("127.0.0.1").private_key_and_cert_chain_pem.write_to_path(str(chain))
        answer_file.write_text(json.dumps(answer), encoding="utf-8")
        serve = ["--serve-standin", str(chain), str(answer_file)]
        child = subprocess.Popen(
            [sys.executable, "-m", "bench.lambda_overhead", *serve],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert child.stdin is not None
        assert child.stdout is not None
        try:
            url = child.stdout.readline().strip()
            with _environment({"HA_URL": url, "CA_BUNDLE": str(bundle)}):
                cold = _time_calls(directive, cold_calls, cold=True)
                lambda_function.close_connection()
                _time_calls(directive, 1, cold=False)  # open the connection to reuse
                warm = _time_calls(directive, warm_calls, cold=False)
        finally:
            lambda_function.close_connection()
            child.stdin.close()
            server_times: list[float] = json.loads(child.stdout.readline() or "[]")
            child.stdout.close()
            child.wait(timeout=30)
    if len(server_times) != cold_calls + 1 + warm_calls:
        raise RuntimeError(
            f"{len(server_times)} server times for {cold_calls + 1 + warm_calls} calls"
        )
    cold_server, warm_server = server_times[:cold_calls], server_times[cold_calls + 1 :]
    return {
        "cold": _percentiles([t - s for t, s in zip(cold, cold_server, strict=True)]),
        "warm": _percentiles([t - s for t, s in zip(warm, warm_server, strict=True)]),
    }


def main(argv: list[str] | None = None) -> dict[str, tuple[float, float]]:
    """Parse arguments, run, print one line per mode and return the results."""
    parser = argparse.ArgumentParser(description="Lambda handler overhead per call")
    parser.add_argument("--quick", action="store_true", help="a few calls, to exercise the code")
    parser.add_argument("--cold", type=int, default=200, help="cold calls (default 200)")
    parser.add_argument("--warm", type=int, default=2000, help="warm calls (default 2000)")
    parser.add_argument("--serve-standin", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_standin:
        _serve_standin(*args.serve_standin)
        return {}
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
