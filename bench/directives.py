"""Directive latency through Home Assistant's HTTP view, with 1, 10 and 100 cameras.

Real Home Assistant processes (``hass``, one per camera count, started at the same time)
each get N demo cameras (``acb_demo_camera``, script/develop's camera entity). Every
camera entity streams from the same free-running fake camera, so the probes at set-up
succeed and Discover advertises probed streams; Discover is timed once the probe cache
is full (the first Discover, which may still wait for probes, is reported apart). Each
HA is onboarded through its API, gets a long-lived token, and the bridge is configured
through its real config flow with every camera selected.

Timed: the wall time of ``POST /api/alexa_cam_bridge/smart_home`` (aiohttp, one
kept-alive connection, one request at a time, as the Lambda sends them):

- Discover against each HA, interleaved round-robin; the ratio is 100 cameras : 1;
- InitializeCameraStreams and ReportState, alternating, against the 1-camera HA, on the
  same endpoint (its relay starts on the first call and stays warm).

Usage: python -m bench.directives [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from bench.report import Bar, BenchResult, Panel, Spread, Table, fmt, fmt_ratio, ratio
from script.dev.ha import (
    DOMAIN,
    camera_entities,
    configure_bridge,
    onboard,
    wait_for_http,
    write_config,
)
from tests import directives as alexa
from tests.peers.camera import FakeCamera
from tests.peers.process import free_port
from tests.peers.tls import TestPki

STREAM_HOST = "cam.localhost"
HA_START_TIMEOUT = 300.0


@dataclass(frozen=True, slots=True)
class Params:
    """What a directive benchmark run does."""

    camera_counts: tuple[int, ...]
    discover_rounds: int
    stream_calls: int


FULL = Params(camera_counts=(1, 10, 100), discover_rounds=50, stream_calls=1000)
QUICK = Params(camera_counts=(1, 3), discover_rounds=3, stream_calls=10)


# ---------------------------------------------------------------------------------------
# A real Home Assistant


@dataclass
class HomeAssistant:
    """One running HA: its base URL, access token and HTTP session."""

    cameras: int
    base: str
    token: str
    session: aiohttp.ClientSession
    endpoints: list[str]

    async def post(self, body: dict[str, Any]) -> tuple[float, dict[str, Any]]:
        """POST a directive to the bridge's view; (seconds, answer)."""
        started = time.perf_counter()
        async with self.session.post(
            f"{self.base}/api/{DOMAIN}/smart_home",
            json=body,
            headers={"Authorization": f"Bearer {self.token}"},
        ) as resp:
            answer: dict[str, Any] = await resp.json()
        return time.perf_counter() - started, answer


@contextlib.asynccontextmanager
async def home_assistant(
    workdir: Path, cameras: int, camera_url: str, cert: Path, key: Path
) -> AsyncIterator[HomeAssistant]:
    """Start a real HA with ``cameras`` demo cameras and the bridge configured."""
    config = workdir / f"ha-{cameras}"
    port = free_port()
    write_config(config, port, [(f"Bench {i:03d}", camera_url) for i in range(1, cameras + 1)])
    hass = Path(sys.executable).with_name("hass")
    with (config / "ha.log").open("w") as log:
        proc = await asyncio.create_subprocess_exec(
            str(hass), "-c", str(config), "--skip-pip", stdout=log, stderr=log
        )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_for_http(
                session, base, lambda: proc.returncode is not None, HA_START_TIMEOUT
            )
            token = await onboard(session, base, client_name="bench", lifespan_days=1)
            entities = await camera_entities(session, base, token, cameras, HA_START_TIMEOUT)
            answers: dict[str, dict[str, Any]] = {
                "user": {"host": STREAM_HOST, "port": free_port(), "cert_mode": "files"},
                "certificate_files": {"cert_file": str(cert), "key_file": str(key)},
                "cameras": {"cameras": entities},
            }
            await configure_bridge(session, base, token, answers)
            yield HomeAssistant(cameras, base, token, session, [])
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 60)
            except TimeoutError:
                proc.kill()
                await proc.wait()


# ---------------------------------------------------------------------------------------
# Measurements


@dataclass
class Timings:
    """Everything measured, in seconds."""

    first_discover: dict[int, float]
    discover: dict[int, list[float]]
    initialize: list[float]
    report_state: list[float]


def _check(answer: dict[str, Any], name: str) -> dict[str, Any]:
    header = answer.get("event", {}).get("header", {})
    if header.get("name") != name:
        raise RuntimeError(f"expected {name}, got {answer}")
    return answer


async def _discover(ha: HomeAssistant) -> float:
    elapsed, answer = await ha.post(alexa.discover())
    endpoints = _check(answer, "Discover.Response")["event"]["payload"]["endpoints"]
    if len(endpoints) != ha.cameras:
        raise RuntimeError(f"Discover listed {len(endpoints)} of {ha.cameras} cameras")
    ha.endpoints = [e["endpointId"] for e in endpoints]
    return elapsed


async def measure(params: Params) -> Timings:
    """Start the HAs, then time the directives."""
    pki = TestPki(identities=(STREAM_HOST,))
    workdir = Path(tempfile.mkdtemp(prefix="bench-directives-"))
    try:
        cert, key = pki.write_chain_and_key(workdir)
        camera = FakeCamera(width=1280, height=720, fps=25, gop=50, bitrate=2000)
        await camera.astart()
        try:
            async with contextlib.AsyncExitStack() as stack:
                instances = await asyncio.gather(
                    *(
                        stack.enter_async_context(home_assistant(workdir, n, camera.url, cert, key))
                        for n in params.camera_counts
                    )
                )
                print("directives: Home Assistant ready", file=sys.stderr, flush=True)
                return await _time_directives(params, list(instances))
        finally:
            await camera.astop()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


async def _time_directives(params: Params, instances: Sequence[HomeAssistant]) -> Timings:
    timings = Timings({}, {ha.cameras: [] for ha in instances}, [], [])
    for ha in instances:
        timings.first_discover[ha.cameras] = await _discover(ha)
    for _ in range(params.discover_rounds):
        for ha in instances:
            timings.discover[ha.cameras].append(await _discover(ha))
    smallest = min(instances, key=lambda ha: ha.cameras)
    endpoint = smallest.endpoints[0]
    for _ in range(params.stream_calls):
        elapsed, answer = await smallest.post(alexa.initialize_streams(endpoint))
        _check(answer, "Response")
        timings.initialize.append(elapsed)
        elapsed, answer = await smallest.post(alexa.report_state(endpoint))
        _check(answer, "StateReport")
        timings.report_state.append(elapsed)
    return timings


def build_result(params: Params, timings: Timings) -> BenchResult:
    """Tables and chart panel of the directive benchmark."""
    ms = 1000.0
    table = Table(
        "Directive latency through HA's HTTP view (ms, wall time of the POST)",
        ["directive", "cameras", "calls", "p50", "p90", "p99", "ratio (p50)", "first call"],
    )
    panel = Panel("Directives through HA: p50 ms (whisker to p99)", "ms")
    base_count = min(params.camera_counts)
    base = Spread.of(timings.discover[base_count])
    for count in params.camera_counts:
        samples = timings.discover[count]
        spread = Spread.of(samples)
        p99 = Spread.of(samples, "p99").high
        table.rows.append(
            [
                "Discover",
                str(count),
                str(len(samples)),
                fmt(spread.median * ms, 1),
                fmt(spread.high * ms, 1),
                fmt(p99 * ms, 1),
                f"{fmt_ratio(ratio(spread.median, base.median))} of {base_count}",
                fmt(timings.first_discover[count] * ms, 1),
            ]
        )
        panel.bars.append(
            Bar(
                f"Discover, {count} cam.",
                spread.median * ms,
                spread.median * ms,
                p99 * ms,
                baseline=count == base_count,
            )
        )
    for name, samples in (
        ("InitializeCameraStreams", timings.initialize),
        ("ReportState", timings.report_state),
    ):
        spread = Spread.of(samples)
        p99 = Spread.of(samples, "p99").high
        table.rows.append(
            [
                name,
                str(base_count),
                str(len(samples)),
                fmt(spread.median * ms, 1),
                fmt(spread.high * ms, 1),
                fmt(p99 * ms, 1),
                "",
                fmt(samples[0] * ms, 1) if samples else "-",
            ]
        )
        panel.bars.append(Bar(name, spread.median * ms, spread.median * ms, p99 * ms))
    table.notes += [
        f"One HA per camera count, running at the same time; Discover calls interleaved "
        f"round-robin; ratio = p50 against {base_count} camera(s).",
        "All camera entities stream from one fake camera (probed at set-up; Discover is "
        "timed with the probe cache full; 'first call' is the first Discover, which may "
        "still wait for probes).",
        "InitializeCameraStreams and ReportState alternate on one endpoint; each Initialize "
        "mints a grant and (first call only) starts the relay.",
    ]
    return BenchResult("directives", [table], panel)


def run(quick: bool = False) -> BenchResult:
    """Measure and return the table (``quick``: 2 small HAs and a few calls)."""
    params = QUICK if quick else FULL
    return build_result(params, asyncio.run(measure(params)))


def main(argv: list[str] | None = None) -> BenchResult:
    """Command line: measure, print the table, return it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny run, to exercise the code")
    args = parser.parse_args(argv)
    result = run(args.quick)
    print(result.text())
    return result


if __name__ == "__main__":
    main()
