"""Time to first frame over TLS: the restreamer (warm, cold) against stunnel alone.

Camera: the free-running fake camera (tests/peers/fake_camera.py), H.264 1280x720 25 fps
with a 2 s GOP and AAC audio, kept playing by its internal viewer like a real camera.

a  restreamer, warm: the camera's relay is running and its GOP cache full
b  restreamer, cold: the relay is stopped before each run (DESCRIBE starts it)
c  baseline: stunnel (TLS 1.2+) in front of the camera itself

The metric is the Echo-like client's ``can_show`` (tests/peers/echo_client.py: when
Android's RTSP stack would hand the first decodable IDR to the decoder), counted from the
start of the TCP connect. Runs of a, b and c are interleaved. ffmpeg's time to its first
decoded frame is measured for a and c as well. The restreamer runs in a child process
(like stunnel), so it does not share this process's GIL with the clients.

CPU and memory with many viewers: bench/fanout.py. Nothing is asserted; numbers are
printed.

Usage: python -m bench.first_frame [--quick] [--runs N]
"""

from __future__ import annotations

import argparse
import asyncio
import ssl
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from bench.serve import RestreamerProcess
from tests.peers.camera import FakeCamera
from tests.peers.echo_client import run_echo_client
from tests.peers.ffmpeg import ffmpeg_read_frames
from tests.peers.stunnel import Stunnel
from tests.peers.tls import TestPki

SNI = "cam.test"
HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------
# Measurements


def summary(values: Sequence[float | None]) -> tuple[float, float, float, int]:
    """(median, p10, p90, failures) of the successful runs (nan when none)."""
    ok = sorted(v for v in values if v is not None)
    failures = len(values) - len(ok)
    if not ok:
        nan = float("nan")
        return nan, nan, nan, failures
    if len(ok) == 1:
        return ok[0], ok[0], ok[0], failures
    deciles = statistics.quantiles(ok, n=10, method="inclusive")
    return statistics.median(ok), deciles[0], deciles[-1], failures


async def echo_can_show(url: str, client_ctx: ssl.SSLContext) -> float | None:
    """One Echo-like session; its ``can_show`` (None when it never could show)."""
    result = await run_echo_client(
        url, ssl_context=client_ctx, server_hostname=SNI, timeout=15.0, duration=15.0
    )
    return result.can_show


Samples = dict[str, list[float | None]]


async def collect(runs: int) -> tuple[Samples, Samples]:
    """Run the benchmark: (Echo-like can_show by key a/b/c, ffmpeg first frame by a/c)."""
    pki = TestPki()
    workdir = Path(tempfile.mkdtemp(prefix="bench-first-frame-"))
    chain, key = pki.write_chain_and_key(workdir)
    client_ctx = pki.client_context()
    camera = FakeCamera(width=1280, height=720, gop=50, fps=25, bitrate=2000)
    await camera.astart()
    child = await RestreamerProcess.start(camera.url, chain, key)
    stunnel = Stunnel(camera.port, chain, key)
    stunnel.start()
    try:
        await asyncio.sleep(1.0)
        echo: Samples = {"a": [], "b": [], "c": []}
        ffmpeg: Samples = {"a": [], "c": []}
        baseline_url = f"rtsp://{HOST}:{stunnel.port}{camera.path}"
        for run in range(runs):
            await child.ask("warm")
            echo["a"].append(await echo_can_show(await child.ask("url"), client_ctx))
            await child.ask("cold")
            echo["b"].append(await echo_can_show(await child.ask("url"), client_ctx))
            echo["c"].append(await echo_can_show(baseline_url, client_ctx))
            await child.ask("warm")
            url = (await child.ask("url")).replace("rtsp://", "rtsps://", 1)
            ffmpeg["a"].append((await ffmpeg_read_frames(url, n=1, timeout=20)).first_frame_s)
            ffmpeg["c"].append(
                (
                    await ffmpeg_read_frames(
                        baseline_url.replace("rtsp://", "rtsps://", 1), n=1, timeout=20
                    )
                ).first_frame_s
            )
            print(f"run {run + 1}/{runs} done", file=sys.stderr, flush=True)
    finally:
        stunnel.stop()
        await child.stop()
        await camera.astop()
    return echo, ffmpeg


async def measure(runs: int) -> None:
    """Run the benchmark and print the results."""
    echo, ffmpeg = await collect(runs)
    print_table(runs, echo, ffmpeg)


def print_table(
    runs: int, echo: dict[str, list[float | None]], ffmpeg: dict[str, list[float | None]]
) -> None:
    """Print medians, spreads and ratios against the stunnel baseline."""
    names = {
        "a": "restreamer warm",
        "b": "restreamer cold",
        "c": "stunnel -> camera",
    }
    print(f"\nTime to first frame over TLS, {runs} runs each (seconds from TCP connect)")
    print("Echo-like client (can_show):")
    base = summary(echo["c"])[0]
    for key, label in names.items():
        median, p10, p90, failed = summary(echo[key])
        print(
            f"  {key} {label:18s} median {median:6.3f}  p10 {p10:6.3f}  p90 {p90:6.3f}"
            f"  x{median / base:5.2f} of c  failures {failed}"
        )
    print("ffmpeg (first decoded frame, from process start):")
    base = summary(ffmpeg["c"])[0]
    for key in ("a", "c"):
        median, p10, p90, failed = summary(ffmpeg[key])
        print(
            f"  {key} {names[key]:18s} median {median:6.3f}  p10 {p10:6.3f}  p90 {p90:6.3f}"
            f"  x{median / base:5.2f} of c  failures {failed}"
        )


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 runs each")
    args = parser.parse_args(argv)
    asyncio.run(measure(3 if args.quick else args.runs))


if __name__ == "__main__":
    main()
