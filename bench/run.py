"""Run every benchmark, print the tables, write ``bench/results/<date>.md`` and ``.png``.

The parts, in order (see bench/README.md for what each number means):

first_frame  time to first frame over TLS: restreamer warm / cold against stunnel
             (``bench.first_frame``)
fanout       CPU per viewer-minute, sequence gaps, memory, stalled viewer (``bench.fanout``)
directives   Discover / InitializeCameraStreams / ReportState through a real HA
             (``bench.directives``)
lambda       the forwarding Lambda's handler overhead, cold and warm
             (``bench.lambda_overhead``)

A part that fails is reported and the others still run; the exit status is then 1.

Usage: python -m bench.run [--quick] [--only PART[,PART...]] [--output DIR]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from bench import directives, fanout, lambda_overhead
from bench import first_frame as first_frame_bench
from bench.report import (
    Bar,
    BenchResult,
    Panel,
    Table,
    fmt,
    fmt_ratio,
    machine_description,
    ratio,
    render_chart,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
FIRST_FRAME_RUNS = 10

FIRST_FRAME_LABELS = {
    "a": "restreamer, warm camera",
    "b": "restreamer, cold camera",
    "c": "baseline: stunnel -> camera",
}


def first_frame(quick: bool) -> BenchResult:
    """Run ``bench.first_frame`` and tabulate its results."""
    runs = 3 if quick else FIRST_FRAME_RUNS
    return first_frame_result(runs, *asyncio.run(first_frame_bench.collect(runs)))


def first_frame_result(
    runs: int, echo: first_frame_bench.Samples, ffmpeg: first_frame_bench.Samples
) -> BenchResult:
    """Table and chart panel of ``bench.first_frame``'s samples."""
    parsed = {
        "echo": {key: first_frame_bench.summary(values) for key, values in echo.items()},
        "ffmpeg": {key: first_frame_bench.summary(values) for key, values in ffmpeg.items()},
    }
    table = Table(
        f"Time to first frame over TLS (s from TCP connect), {runs} interleaved runs each",
        ["client", "server", "median", "p10", "p90", "ratio vs stunnel", "failed"],
    )
    panel = Panel("Time to first frame: median s (p10-p90)", "s")
    for section, client in (("echo", "Echo-like (can_show)"), ("ffmpeg", "ffmpeg (decoded)")):
        rows = parsed[section]
        base = rows.get("c", (float("nan"),) * 3 + (0,))[0]
        for key, (median, p10, p90, failed) in rows.items():
            table.rows.append(
                [
                    client,
                    FIRST_FRAME_LABELS.get(key, key),
                    fmt(median),
                    fmt(p10),
                    fmt(p90),
                    fmt_ratio(ratio(median, base)),
                    str(failed),
                ]
            )
            short = {"a": "ours warm", "b": "ours cold", "c": "stunnel"}.get(key, key)
            name = "Echo" if section == "echo" else "ffmpeg"
            panel.bars.append(Bar(f"{name}: {short}", median, p10, p90, key == "c"))
    table.notes.append(
        "Camera: free-running gst-rtsp-server fake, 720p25, 2 s GOP, AAC. can_show = when "
        "Android's RTSP stack would hand the first decodable IDR to the decoder; ffmpeg is "
        "counted from its process start."
    )
    return BenchResult("first_frame", [table], panel)


def lambda_part(quick: bool) -> BenchResult:
    """The Lambda handler's overhead per call, cold against warm."""
    cold_calls, warm_calls = (5, 20) if quick else (200, 2000)
    results = lambda_overhead.run(cold_calls, warm_calls)
    table = Table(
        "Lambda overhead per call against a local HA stand-in (ms)",
        ["mode", "calls", "median", "p99", "ratio (median) vs warm"],
    )
    panel = Panel("Lambda overhead: median ms (whisker to p99)", "ms")
    warm_median = results["warm"][0]
    for mode, calls in (("cold", cold_calls), ("warm", warm_calls)):
        median, p99 = results[mode]
        table.rows.append(
            [
                mode,
                str(calls),
                fmt(median * 1000, 2),
                fmt(p99 * 1000, 2),
                fmt_ratio(ratio(median, warm_median)),
            ]
        )
        panel.bars.append(Bar(mode, median * 1000, median * 1000, p99 * 1000, mode == "warm"))
    table.notes.append(
        "cold = new TLS connection per call (fresh sandbox), warm = kept-alive connection; "
        "overhead = handler wall time minus the stand-in's own time."
    )
    return BenchResult("lambda", [table], panel)


PARTS: dict[str, Callable[[bool], BenchResult]] = {
    "first_frame": first_frame,
    "fanout": fanout.run,
    "directives": directives.run,
    "lambda": lambda_part,
}


def write_report(
    output: Path,
    results: list[BenchResult],
    failures: dict[str, str],
    machine: list[tuple[str, str]],
    command: str,
    elapsed: float,
) -> tuple[Path, Path]:
    """Write ``<date>.md`` and ``<date>.png`` into ``output``; return their paths."""
    date = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d")
    output.mkdir(parents=True, exist_ok=True)
    markdown, chart = output / f"{date}.md", output / f"{date}.png"
    lines = [f"# alexa_cam_bridge benchmarks, {date}", "", f"Command: `{command}`", ""]
    lines += ["| machine | |", "|---|---|"]
    lines += [f"| {name} | {value} |" for name, value in machine]
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    lines += [
        f"| Load average at the end (1, 5, 15 min) | {load} |",
        f"| Duration | {elapsed:.0f} s |",
        "",
        f"![chart]({chart.name})",
        "",
    ]
    for result in results:
        lines += [result.markdown(), ""]
    for name, error in failures.items():
        lines += [f"### {name}: FAILED", "", "```", error.strip(), "```", ""]
    markdown.write_text("\n".join(lines))
    render_chart(
        [r.panel for r in results], chart, f"alexa_cam_bridge benchmarks {date} (loopback)"
    )
    return markdown, chart


def main(argv: list[str] | None = None) -> int:
    """Run the chosen parts; print and write the report; 0 when every part succeeded."""
    parser = argparse.ArgumentParser(description="Run the alexa_cam_bridge benchmarks")
    parser.add_argument("--quick", action="store_true", help="tiny runs (CI smoke test)")
    parser.add_argument(
        "--only", help=f"comma-separated parts to run (default all: {','.join(PARTS)})"
    )
    parser.add_argument("--output", type=Path, default=RESULTS, help="results directory")
    args = parser.parse_args(argv)
    chosen = args.only.split(",") if args.only else list(PARTS)
    unknown = [name for name in chosen if name not in PARTS]
    if unknown:
        parser.error(f"unknown part(s): {', '.join(unknown)}")
    machine = machine_description()
    print("\n".join(f"{name}: {value}" for name, value in machine), flush=True)
    started = time.monotonic()
    results: list[BenchResult] = []
    failures: dict[str, str] = {}
    for name in chosen:
        print(f"\n==> {name}", file=sys.stderr, flush=True)
        try:
            result = PARTS[name](args.quick)
        except Exception:  # report the part's failure and run the others
            failures[name] = traceback.format_exc()
            print(f"{name} FAILED:\n{failures[name]}", file=sys.stderr, flush=True)
            continue
        results.append(result)
        print(f"\n{result.text()}", flush=True)
    command = "script/bench" + (" " + " ".join(argv) if argv else "")
    markdown, chart = write_report(
        args.output, results, failures, machine, command, time.monotonic() - started
    )
    print(f"\nwrote {markdown} and {chart}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
