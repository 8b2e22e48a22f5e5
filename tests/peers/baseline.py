"""Measure the Echo-like client's start-up against the fake camera, plain and via stunnel.

    .venv/bin/python -m tests.peers.baseline --runs 10

Each run opens a fresh connection at a random moment (so it samples the camera's GOP and
RTCP phase) and stops at ``can_show``. Prints one line per run and a JSON summary with
median/min/max of ``can_show``, the first complete IDR, the PLAY reply and the TLS
handshake. This is the "no restreamer" baseline; the numbers are only meaningful on an
idle machine (a CPU-starved camera delivers frames seconds late).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
import tempfile
from pathlib import Path

from tests.peers.camera import FakeCamera
from tests.peers.echo_client import EchoResult, run_echo_client
from tests.peers.stunnel import Stunnel
from tests.peers.tls import TestPki


def spread(values: list[float | None]) -> dict[str, float | int | None]:
    """Median, min, max (seconds, rounded) and the count of the non-None values."""
    present = [value for value in values if value is not None]
    if not present:
        return {"n": 0, "median": None, "min": None, "max": None}
    return {
        "n": len(present),
        "median": round(statistics.median(present), 3),
        "min": round(min(present), 3),
        "max": round(max(present), 3),
    }


def summarize(results: list[EchoResult]) -> dict[str, object]:
    """Spread of the start-up milestones of several runs."""
    return {
        "can_show": spread([r.can_show for r in results]),
        "first_idr_complete": spread([r.first_idr_complete for r in results]),
        "play_reply": spread([r.play_reply for r in results]),
        "tls_done": spread([r.tls_done for r in results]),
        "failures": sum(1 for r in results if r.errors),
    }


async def measure(runs: int, limit: float) -> dict[str, object]:
    """Alternate plain and stunnel runs against one free-running camera."""
    pki = TestPki()
    results: dict[str, list[EchoResult]] = {"plain": [], "stunnel": []}
    with tempfile.TemporaryDirectory() as tmp:
        chain, key = pki.write_chain_and_key(Path(tmp))
        camera = FakeCamera()
        await camera.astart()
        tunnel = Stunnel(camera.port, chain, key)
        try:
            await tunnel.astart()
            context = pki.client_context()
            for _ in range(runs):
                for kind in ("plain", "stunnel"):
                    await asyncio.sleep(random.uniform(0.2, 2.2))
                    if kind == "plain":
                        result = await run_echo_client(camera.url, duration=limit)
                    else:
                        result = await run_echo_client(
                            f"rtsp://127.0.0.1:{tunnel.port}/cam",
                            ssl_context=context,
                            server_hostname="cam.test",
                            duration=limit,
                        )
                    results[kind].append(result)
                    sys.stdout.write(f"{kind}: {result.summary()}\n")
                    sys.stdout.flush()
        finally:
            await tunnel.astop()
            await camera.astop()
    return {kind: summarize(rows) for kind, rows in results.items()}


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=10, help="runs per path")
    parser.add_argument("--limit", type=float, default=20.0, help="give up after (s)")
    args = parser.parse_args(argv)
    summary = asyncio.run(measure(args.runs, args.limit))
    sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
