"""Fan-out cost: N Echo-like viewers of one camera, the restreamer against stunnel.

Camera: the free-running fake camera (tests/peers/fake_camera.py), H.264 1280x720 25 fps,
2 s GOP, 2 Mbit/s (a noise pattern, so the encoder really sends that), AAC audio, kept
playing by its internal viewer like a real camera.

ours     N viewers -> the restreamer (a child process, ``bench.serve``) -> 1 upstream
         session to the camera (the relay is warm before the runs: steady state)
stunnel  N viewers -> stunnel4 (TLS 1.2+) -> N sessions to the camera

Per run (``duration`` seconds of playing, all viewers at once, in this process with
asyncio; their CPU is not counted) the CPU seconds of the serving process (our
restreamer, or stunnel) and of the camera are read from ``/proc``; CPU per viewer-minute
is ``cpu / (N * wall seconds / 60)``. The camera's CPU is reported separately: with
stunnel it serves every viewer itself, with us it serves one. It encodes all the time, so
what a stunnel viewer costs it is the difference between its CPU rate in a stunnel run
and in the ours run of the same repeat, divided by N. RTP sequence gaps are summed per
viewer (must be 0: over TCP nothing may be lost unless the server drops for a slow
viewer). The memory is the restreamer's peak resident set during the run (sampled every
0.2 s), next to its size at rest (relay warm, no viewer).

Runs of ours and stunnel are interleaved (ours first on even repeats, stunnel first on
odd ones); runs of few viewers last longer so their CPU adds up to enough clock ticks.
Then a reference run of 10 viewers and the stall run: 10 viewers of ours, one of which
stops reading after 200 packets; the others' gaps must stay 0 and their frame rate match
the reference (both 40 s: the relay skips a stalled viewer ahead only once its backlog
outgrows the kernel's socket buffer, up to 4 MiB, and the relay's 4 MiB queue, which
takes about half a minute at 2 Mbit/s).

Usage: python -m bench.fanout [--quick] [--duration S] [--repeats N]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import ssl
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.procstat import child_pids, cpu_seconds, peak_rss_mib, rss_mib
from bench.report import (
    NAN,
    Bar,
    BenchResult,
    Panel,
    Spread,
    Table,
    fmt,
    fmt_ratio,
    ratio,
)
from bench.serve import RestreamerProcess
from tests.peers.camera import FakeCamera
from tests.peers.echo_client import EchoResult, run_echo_client
from tests.peers.stunnel import Stunnel
from tests.peers.tls import TestPki

SNI = "cam.test"
HOST = "127.0.0.1"
STALL_AFTER_PACKETS = 200


@dataclass(frozen=True, slots=True)
class Params:
    """What a fan-out benchmark run does."""

    viewer_counts: tuple[int, ...]
    duration: float
    repeats: int
    stall_viewers: int
    stall_duration: float
    min_viewer_seconds: float = 0.0
    """Runs of few viewers last longer, so that CPU (counted in 10 ms ticks) adds up."""

    def run_seconds(self, viewers: int) -> float:
        """How long a run of ``viewers`` plays."""
        return max(self.duration, self.min_viewer_seconds / viewers)


FULL = Params(
    viewer_counts=(1, 5, 10, 20),
    duration=6.0,
    repeats=3,
    stall_viewers=10,
    stall_duration=40.0,
    min_viewer_seconds=20.0,
)
QUICK = Params(viewer_counts=(1, 2), duration=2.0, repeats=1, stall_viewers=3, stall_duration=2.0)


@dataclass(frozen=True, slots=True)
class RunSample:
    """One run of N viewers through one server."""

    mode: str
    viewers: int
    repeat: int
    wall: float
    server_cpu: float
    camera_cpu: float
    gaps: list[int]
    frames: list[int]
    received: list[int]
    failed: int
    peak_rss_mib: float

    @property
    def viewer_minutes(self) -> float:
        """Viewer-minutes served."""
        return self.viewers * self.wall / 60

    @property
    def server_cpu_per_viewer_minute(self) -> float:
        """Serving process CPU seconds per viewer-minute."""
        return self.server_cpu / self.viewer_minutes

    @property
    def camera_cpu_per_minute(self) -> float:
        """Camera CPU seconds per wall minute (encoding and serving)."""
        return self.camera_cpu / (self.wall / 60)


@dataclass(frozen=True, slots=True)
class StallSample:
    """The stall run: healthy viewers' results next to the stalled one's."""

    healthy: list[EchoResult]
    stalled: EchoResult
    viewer_skips: int
    wall: float
    peak_rss_mib: float


class Rig:
    """The camera, the restreamer child and stunnel, with their pids."""

    def __init__(
        self, camera: FakeCamera, ours: RestreamerProcess, stunnel: Stunnel, stunnel_pid: int
    ) -> None:
        """Hold the running peers."""
        self.camera = camera
        self.ours = ours
        self.stunnel = stunnel
        self.stunnel_pid = stunnel_pid
        self.client_ctx: ssl.SSLContext = ssl.create_default_context()
        self.rest_rss_mib = rss_mib(ours.pid)

    @property
    def camera_pid(self) -> int:
        """The camera process (it must be running)."""
        pid = self.camera.pid
        if pid is None:
            raise RuntimeError("the camera is not running")
        return pid

    @property
    def baseline_url(self) -> str:
        """The camera's URL through stunnel."""
        return f"rtsp://{HOST}:{self.stunnel.port}{self.camera.path}"


@contextlib.asynccontextmanager
async def rig() -> AsyncIterator[Rig]:
    """Start the camera, the restreamer (relay warm) and stunnel; stop them afterwards."""
    pki = TestPki()
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as workdir:
        chain, key = pki.write_chain_and_key(Path(workdir))
        camera = FakeCamera(pattern="snow", width=1280, height=720, fps=25, gop=50, bitrate=2000)
        await camera.astart()
        stunnel = Stunnel(camera.port, chain, key)
        ours: RestreamerProcess | None = None
        try:
            ours = await RestreamerProcess.start(camera.url, chain, key)
            await stunnel.astart()
            (stunnel_pid,) = child_pids("stunnel4")
            await ours.ask("warm")
            setup = Rig(camera, ours, stunnel, stunnel_pid)
            setup.client_ctx = pki.client_context()
            yield setup
        finally:
            await stunnel.astop()
            if ours is not None:
                await ours.stop()
            await camera.astop()


async def _play(
    url: str, ctx: ssl.SSLContext, duration: float, stall_after: int | None = None
) -> EchoResult:
    return await run_echo_client(
        url,
        ssl_context=ctx,
        server_hostname=SNI,
        until="duration",
        duration=duration,
        stall_after_packets=stall_after,
        timeout=15.0,
    )


async def _sample_rss(pid: int, stop: asyncio.Event) -> float:
    """Largest resident set of ``pid`` seen every 0.2 s until ``stop`` is set."""
    peak = rss_mib(pid)
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 0.2)
        peak = max(peak, rss_mib(pid))
    return peak


async def one_run(
    setup: Rig, mode: str, viewers: int, duration: float, repeat: int = 0
) -> RunSample:
    """N viewers play for ``duration`` through ``mode`` ("ours" or "stunnel")."""
    if mode == "ours":
        urls = [await setup.ours.ask("url") for _ in range(viewers)]
        server_pid = setup.ours.pid
    else:
        urls = [setup.baseline_url] * viewers
        server_pid = setup.stunnel_pid
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(setup.ours.pid, stop))
    server_before, camera_before = cpu_seconds(server_pid), cpu_seconds(setup.camera_pid)
    started = time.monotonic()
    results = await asyncio.gather(*(_play(u, setup.client_ctx, duration) for u in urls))
    wall = time.monotonic() - started
    server_cpu = cpu_seconds(server_pid) - server_before
    camera_cpu = cpu_seconds(setup.camera_pid) - camera_before
    stop.set()
    peak = await sampler
    return RunSample(
        mode=mode,
        viewers=viewers,
        repeat=repeat,
        wall=wall,
        server_cpu=server_cpu,
        camera_cpu=camera_cpu,
        gaps=[sum(r.seq_gaps.values()) for r in results],
        frames=[r.video_access_units for r in results],
        received=[r.bytes_received for r in results],
        failed=sum(1 for r in results if r.errors or not r.video_access_units),
        peak_rss_mib=peak,
    )


async def idle_camera_cpu_per_minute(setup: Rig, seconds: float) -> float:
    """The camera's CPU seconds per minute while only the relay (one session) reads it."""
    before = cpu_seconds(setup.camera_pid)
    await asyncio.sleep(seconds)
    return (cpu_seconds(setup.camera_pid) - before) / (seconds / 60)


async def stall_run(setup: Rig, viewers: int, duration: float) -> StallSample:
    """``viewers`` play through ours; the last one stops reading after a few packets."""
    urls = [await setup.ours.ask("url") for _ in range(viewers)]
    plays = [_play(u, setup.client_ctx, duration) for u in urls[:-1]]
    plays.append(_play(urls[-1], setup.client_ctx, duration, stall_after=STALL_AFTER_PACKETS))
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sample_rss(setup.ours.pid, stop))
    started = time.monotonic()
    tasks = [asyncio.ensure_future(play) for play in plays]
    await asyncio.sleep(duration * 0.9)
    stats = await setup.ours.stats()
    results = await asyncio.gather(*tasks)
    wall = time.monotonic() - started
    stop.set()
    peak = await sampler
    cameras = stats.get("cameras")
    skips = 0
    if isinstance(cameras, dict):
        relay = cameras.get("cam")
        if isinstance(relay, dict):
            skips = int(relay.get("viewer_skips", 0))
    return StallSample(list(results[:-1]), results[-1], skips, wall, peak)


@dataclass(frozen=True, slots=True)
class Measurements:
    """Everything one fan-out benchmark measured."""

    samples: list[RunSample]
    idle_camera_cpu_per_minute: float
    rest_rss_mib: float
    stunnel_peak_rss_mib: float
    stall: StallSample
    reference: list[RunSample]


async def measure(params: Params) -> Measurements:
    """All runs: fan-out samples, the camera's idle rate, the stall run and its reference."""
    async with rig() as setup:
        idle = await idle_camera_cpu_per_minute(setup, min(params.duration, 5.0))
        samples: list[RunSample] = []
        for repeat in range(params.repeats):
            order = ("ours", "stunnel") if repeat % 2 == 0 else ("stunnel", "ours")
            for viewers in params.viewer_counts:
                for mode in order:
                    samples.append(await one_run(setup, mode, viewers, params.duration, repeat))
                    print(
                        f"fanout: repeat {repeat + 1}/{params.repeats}, {viewers} viewers, "
                        f"{mode} done",
                        file=sys.stderr,
                        flush=True,
                    )
        reference = [await one_run(setup, "ours", params.stall_viewers, params.stall_duration)]
        stall = await stall_run(setup, params.stall_viewers, params.stall_duration)
        rest, stunnel_peak = setup.rest_rss_mib, peak_rss_mib(setup.stunnel_pid)
    return Measurements(samples, idle, rest, stunnel_peak, stall, reference)


def _range(values: Sequence[float]) -> Spread:
    return Spread.of(list(values), spread="range")


def _cell(spread: Spread, digits: int = 3) -> str:
    if spread.count <= 1:
        return fmt(spread.median, digits)
    return f"{fmt(spread.median, digits)} ({fmt(spread.low, digits)}-{fmt(spread.high, digits)})"


def _backlog_mib(stall: StallSample) -> float:
    """Bytes a healthy viewer received minus what the stalled one read (MiB)."""
    healthy = _median([r.bytes_received for r in stall.healthy])
    return (healthy - stall.stalled.bytes_received) / 2**20


def _median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else NAN


def _rss_cell(peak: float, rest: float) -> str:
    return f"{fmt(peak, 1)} (+{fmt(peak - rest, 1)})"


def build_result(params: Params, measured: Measurements) -> BenchResult:
    """Tables and chart panel of the fan-out benchmark."""
    samples, idle = measured.samples, measured.idle_camera_cpu_per_minute
    stall, reference = measured.stall, measured.reference
    cost = Table(
        f"Fan-out cost: CPU seconds per viewer-minute, median (min-max) of "
        f"{params.repeats} run(s) of {params.duration:g} s "
        f"(at least {params.min_viewer_seconds:g} viewer-seconds)",
        [
            "viewers",
            "ours",
            "stunnel",
            "ours/stunnel",
            "camera s/min, ours",
            "camera s/min, stunnel",
            "camera extra via stunnel",
        ],
    )
    health = Table(
        "Fan-out health: RTP sequence gaps per viewer (must be 0), failures, memory",
        [
            "viewers",
            "max gaps ours",
            "max gaps stunnel",
            "failed ours",
            "failed stunnel",
            "Mbit/s per viewer",
            "peak RSS ours MiB (above rest)",
        ],
    )
    panel = Panel("Fan-out: CPU s per viewer-minute (median, min-max)", "CPU s")
    for viewers in params.viewer_counts:
        ours = [s for s in samples if s.mode == "ours" and s.viewers == viewers]
        base = [s for s in samples if s.mode == "stunnel" and s.viewers == viewers]
        ours_cpu = _range([s.server_cpu_per_viewer_minute for s in ours])
        base_cpu = _range([s.server_cpu_per_viewer_minute for s in base])
        # The camera's extra cost of serving N sessions itself: its CPU in a stunnel
        # run minus its CPU in the ours run of the same repeat (adjacent in time).
        extra = _range(
            [
                (b.camera_cpu_per_minute - o.camera_cpu_per_minute) / viewers
                for o in ours
                for b in base
                if o.repeat == b.repeat
            ]
        )
        cost.rows.append(
            [
                str(viewers),
                _cell(ours_cpu),
                _cell(base_cpu),
                fmt_ratio(ratio(ours_cpu.median, base_cpu.median)),
                _cell(_range([s.camera_cpu_per_minute for s in ours]), 1),
                _cell(_range([s.camera_cpu_per_minute for s in base]), 1),
                _cell(extra),
            ]
        )
        health.rows.append(
            [
                str(viewers),
                str(max((g for s in ours for g in s.gaps), default=0)),
                str(max((g for s in base for g in s.gaps), default=0)),
                str(sum(s.failed for s in ours)),
                str(sum(s.failed for s in base)),
                fmt(_median([b * 8 / s.wall / 1e6 for s in ours for b in s.received]), 2),
                _rss_cell(max((s.peak_rss_mib for s in ours), default=NAN), measured.rest_rss_mib),
            ]
        )
        panel.bars.append(Bar(f"{viewers} ours", ours_cpu.median, ours_cpu.low, ours_cpu.high))
        panel.bars.append(
            Bar(f"{viewers} stunnel", base_cpu.median, base_cpu.low, base_cpu.high, True)
        )
    cost.notes += [
        "ours = the restreamer process, its upstream session included; stunnel = the "
        "stunnel4 process alone. CPU comes from /proc in 10 ms ticks.",
        "camera s/min = the camera's CPU seconds per minute (it encodes all the time: "
        f"{idle:.1f} s/min idle with only our relay's session); with ours it serves one "
        "session whatever N, with stunnel every viewer is a session of its own.",
        "camera extra via stunnel = (camera s/min with stunnel - with ours, same repeat) / N:"
        " what each stunnel viewer costs the camera, per viewer-minute. Serving a session is "
        "cheap next to encoding, so this is mostly noise around 0: no system-wide ratio is "
        "given, ours/stunnel is the one to read.",
    ]
    health.notes.append(
        "max gaps = the largest count of missing RTP sequence numbers of any viewer in any "
        "run; failed = viewers with an error or no video; Mbit/s = what an ours viewer "
        "received (video set to 2 Mbit/s, plus audio and RTP/RTSP framing); "
        "peak RSS sampled every 0.2 s. "
        f"At rest (relay warm, no viewer) the restreamer process held {measured.rest_rss_mib:.1f}"
        " MiB: mostly the interpreter and Home Assistant's modules (the package imports "
        "homeassistant), which inside HA are shared; the difference is the per-camera cost. "
        f"stunnel's peak RSS over all runs: {measured.stunnel_peak_rss_mib:.1f} MiB."
    )
    healthy_gaps = [sum(r.seq_gaps.values()) for r in stall.healthy]
    healthy_rates = [r.video_access_units / stall.wall for r in stall.healthy]
    reference_rates = [f / s.wall for s in reference for f in s.frames]
    stall_table = Table(
        f"Stalled viewer: {params.stall_viewers} viewers of ours for "
        f"{params.stall_duration:g} s, one stops reading after {STALL_AFTER_PACKETS} packets",
        ["", "viewers", "max seq gaps", "video frames/s, median (min-max)", "errors"],
    )
    stall_table.rows.append(
        [
            "healthy, with a stalled peer",
            str(len(stall.healthy)),
            str(max(healthy_gaps, default=0)),
            _cell(_range(healthy_rates), 1),
            str(sum(1 for r in stall.healthy if r.errors)),
        ]
    )
    stall_table.rows.append(
        [
            "reference: no stalled peer",
            str(sum(s.viewers for s in reference)),
            str(max((g for s in reference for g in s.gaps), default=0)),
            _cell(_range(reference_rates), 1),
            str(sum(s.failed for s in reference)),
        ]
    )
    stall_table.rows.append(
        [
            "the stalled viewer",
            "1",
            str(sum(stall.stalled.seq_gaps.values())),
            fmt(stall.stalled.video_access_units / stall.wall, 1),
            str(len(stall.stalled.errors)),
        ]
    )
    stall_table.notes.append(
        "video frames/s = complete video access units received / wall time of the run "
        "(handshake and the GOP-cache burst at the start included, so above 25 in short "
        "runs); the healthy viewers must match the reference."
    )
    stall_table.notes.append(
        f"the relay skipped the stalled viewer ahead {stall.viewer_skips} time(s) "
        "(to the next keyframe, once the viewer's backlog outgrows the kernel's socket buffer "
        "and the relay's 4 MiB queue); the restreamer's peak RSS during the stall run: "
        f"{stall.peak_rss_mib:.1f} MiB; the stalled viewer's backlog: "
        f"{_backlog_mib(stall):.1f} MiB."
    )
    return BenchResult("fanout", [cost, health, stall_table], panel)


def run(quick: bool = False, params: Params | None = None) -> BenchResult:
    """Measure and return the tables (``quick``: tiny, to exercise the code)."""
    chosen = params if params is not None else (QUICK if quick else FULL)
    return build_result(chosen, asyncio.run(measure(chosen)))


def main(argv: list[str] | None = None) -> BenchResult:
    """Command line: measure, print the tables, return them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="tiny run, to exercise the code")
    parser.add_argument("--duration", type=float, help=f"seconds per run ({FULL.duration:g})")
    parser.add_argument("--repeats", type=int, help=f"runs per point ({FULL.repeats})")
    args = parser.parse_args(argv)
    params = QUICK if args.quick else FULL
    params = dataclasses.replace(
        params,
        duration=args.duration or params.duration,
        repeats=args.repeats or params.repeats,
    )
    result = run(params=params)
    print(result.text())
    return result


if __name__ == "__main__":
    main()
