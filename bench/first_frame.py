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

``--cpu`` also measures the restreamer process's CPU seconds while 10 Echo-like viewers
play a camera that really sends 2 Mbit/s (a noise pattern) for 20 s. Nothing is
asserted; numbers are printed.

Usage: python -m bench.first_frame [--quick] [--runs N] [--cpu]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import ssl
import statistics
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from custom_components.alexa_cam_bridge.broker import StreamBroker
from custom_components.alexa_cam_bridge.restreamer import CameraConfig, Restreamer
from tests.peers.camera import FakeCamera
from tests.peers.echo_client import run_echo_client
from tests.peers.ffmpeg import ffmpeg_read_frames
from tests.peers.stunnel import Stunnel
from tests.peers.tls import TestPki

SNI = "cam.test"
HOST = "127.0.0.1"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------
# Child process: the restreamer, driven over stdin/stdout


async def serve(camera_url: str, chain: str, key: str) -> None:
    """Run a restreamer for one camera; answer ``url``, ``warm``, ``cold``, ``quit``."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain, key)
    broker = StreamBroker()

    async def source(camera_id: str) -> str | None:
        return camera_url

    async def snapshot(camera_id: str) -> bytes | None:
        return None

    restreamer = Restreamer(
        port=0,
        host=HOST,
        ssl_context=context,
        broker=broker,
        source=source,
        snapshot=snapshot,
        cameras={"cam": CameraConfig("cam")},
        grace_seconds=3600,
        public_host=HOST,
    )
    await restreamer.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(f"READY {restreamer.bound_ports[0]}", flush=True)
    while line := (await reader.readline()).decode().strip():
        if line == "url":
            grant = broker.mint("cam", ttl=600, auth_type="BASIC")
            print(restreamer.stream_uri(grant), flush=True)
        elif line == "warm":
            restreamer.prepare("cam")
            relay = restreamer.relay("cam")
            assert relay is not None
            await relay.wait_sdp()
            await relay.wait_keyframe(5.0)
            await relay.wait_all_tracks(2.0)
            print("OK", flush=True)
        elif line == "cold":
            await restreamer.stop_relay("cam")
            print("OK", flush=True)
        elif line == "quit":
            break
    await restreamer.stop()


class Child:
    """The restreamer child process."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        """Wrap a started child."""
        self.process = process
        self.port = port

    @classmethod
    async def start(cls, camera_url: str, chain: Path, key: Path) -> Child:
        """Start the child and wait for READY."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.first_frame",
            "--serve",
            camera_url,
            str(chain),
            str(key),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=PROJECT_ROOT,
        )
        assert process.stdout is not None
        line = (await process.stdout.readline()).decode().split()
        return cls(process, int(line[1]))

    async def ask(self, command: str) -> str:
        """Send a command; return the answer line."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        return (await self.process.stdout.readline()).decode().strip()

    def cpu_seconds(self) -> float:
        """User + system CPU seconds of the child so far (Linux /proc)."""
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def stop(self) -> None:
        """Ask the child to quit and reap it."""
        await self.ask("quit")
        await self.process.wait()


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


async def measure(runs: int, cpu: bool) -> None:
    """Run the benchmark and print the results."""
    pki = TestPki()
    workdir = Path(tempfile.mkdtemp(prefix="bench-first-frame-"))
    chain, key = pki.write_chain_and_key(workdir)
    client_ctx = pki.client_context()
    camera = FakeCamera(width=1280, height=720, gop=50, fps=25, bitrate=2000)
    await camera.astart()
    child = await Child.start(camera.url, chain, key)
    stunnel = Stunnel(camera.port, chain, key)
    stunnel.start()
    try:
        await asyncio.sleep(1.0)
        echo: dict[str, list[float | None]] = {"a": [], "b": [], "c": []}
        ffmpeg: dict[str, list[float | None]] = {"a": [], "c": []}
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
        print_table(runs, echo, ffmpeg)
    finally:
        stunnel.stop()
        await child.stop()
        await camera.astop()
    if cpu:
        await measure_cpu(pki, chain, key)


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


class NoisyCamera(FakeCamera):
    """The fake camera with a high-entropy pattern, so it really sends ~2 Mbit/s."""

    def command(self) -> list[str]:
        """FakeCamera's command line with ``--pattern=snow``."""
        return [*super().command(), "--pattern=snow"]


async def measure_cpu(pki: TestPki, chain: Path, key: Path, viewers: int = 10) -> None:
    """CPU seconds of the restreamer process while ``viewers`` play a 2 Mbit/s camera."""
    camera = NoisyCamera(width=1280, height=720, gop=50, fps=25, bitrate=2000)
    await camera.astart()
    child = await Child.start(camera.url, chain, key)
    client_ctx = pki.client_context()
    try:
        await child.ask("warm")
        urls = [await child.ask("url") for _ in range(viewers)]
        before = child.cpu_seconds()
        results = await asyncio.gather(
            *(
                run_echo_client(
                    url, ssl_context=client_ctx, server_hostname=SNI, until="duration", duration=20
                )
                for url in urls
            )
        )
        used = child.cpu_seconds() - before
    finally:
        await child.stop()
        await camera.astop()
    received = sum(r.bytes_received for r in results)
    gaps = sum(sum(r.seq_gaps.values()) for r in results)
    per_viewer_mbps = received * 8 / 20 / viewers / 1e6
    print(
        f"\nCPU: {viewers} viewers x 20 s: restreamer process used {used:.2f} CPU s "
        f"({used / 20 * 100:.1f}% of one core); {received / 1e6:.1f} MB delivered "
        f"({per_viewer_mbps:.2f} Mbit/s per viewer); seq gaps {gaps}"
    )


def main(argv: list[str] | None = None) -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--quick", action="store_true", help="3 runs each")
    parser.add_argument("--cpu", action="store_true", help="also measure CPU, 10 viewers")
    parser.add_argument("--serve", nargs=3, metavar=("CAMERA_URL", "CHAIN", "KEY"))
    args = parser.parse_args(argv)
    if args.serve:
        asyncio.run(serve(*args.serve))
        return
    asyncio.run(measure(3 if args.quick else args.runs, args.cpu))


if __name__ == "__main__":
    main()
