"""ffprobe/ffmpeg as independent RTSP clients (Debian's ffmpeg 5.1, always over TCP).

``rtsps://`` works too; Debian's ffmpeg never verifies the server certificate, so these
helpers prove protocol compatibility, not certificate validity (use ``gst.py`` for that).
Credentials go in the URL (``rtsp://user:pass@host/...``); ffmpeg answers Basic and Digest.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

FFPROBE = "ffprobe"
FFMPEG = "ffmpeg"

_SHOWINFO_FRAME = re.compile(rb"\[Parsed_showinfo_\d+ @ [^\]]*\] n:\s*\d+ ")


class FfmpegError(RuntimeError):
    """ffprobe/ffmpeg failed or timed out (the message carries its stderr)."""


@dataclass
class FfmpegResult:
    """Outcome of :func:`ffmpeg_read_frames`; times in seconds since the process started."""

    ok: bool
    frames: int
    first_frame_s: float | None
    returncode: int | None
    error: str | None = None
    stderr_tail: list[str] = field(default_factory=list)


async def _kill(process: asyncio.subprocess.Process) -> None:
    """Kill a child process and reap it."""
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    await process.wait()


async def ffprobe_streams(url: str, timeout: float = 20) -> list[dict[str, Any]]:  # noqa: ASYNC109
    """Return ffprobe's ``streams`` list for ``url`` (raises FfmpegError)."""
    process = await asyncio.create_subprocess_exec(
        FFPROBE,
        "-v",
        "error",
        "-rtsp_transport",
        "tcp",
        "-show_streams",
        "-of",
        "json",
        url,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        await _kill(process)
        raise FfmpegError(f"ffprobe timed out after {timeout} s") from None
    if process.returncode != 0:
        raise FfmpegError(f"ffprobe exited {process.returncode}: {stderr.decode(errors='replace')}")
    streams: list[dict[str, Any]] = json.loads(stdout).get("streams", [])
    return streams


async def ffmpeg_read_frames(url: str, n: int = 25, timeout: float = 30) -> FfmpegResult:  # noqa: ASYNC109
    """Decode ``n`` video frames of ``url`` to the null muxer.

    Every decoded frame passes the ``showinfo`` filter, which logs one line per frame;
    the arrival of the first such line (timed from process start) is ``first_frame_s``.
    ``ok`` is True when at least ``n`` frames were decoded (the filter may see one more
    than the muxer keeps) and ffmpeg exited 0 within ``timeout``.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    process = await asyncio.create_subprocess_exec(
        FFMPEG,
        "-nostdin",
        "-hide_banner",
        "-loglevel",
        "info",
        "-rtsp_transport",
        "tcp",
        "-i",
        url,
        "-map",
        "0:v:0",
        "-vf",
        "showinfo",
        "-frames:v",
        str(n),
        "-f",
        "null",
        "-",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stderr is not None
    frames = 0
    first_frame_s: float | None = None
    tail: list[str] = []
    error: str | None = None

    async def read_stderr() -> None:
        nonlocal frames, first_frame_s
        assert process.stderr is not None
        async for line in process.stderr:
            if _SHOWINFO_FRAME.search(line):
                frames += 1
                if first_frame_s is None:
                    first_frame_s = loop.time() - started
            elif b"Parsed_showinfo" not in line:
                tail.append(line.decode(errors="replace").rstrip())
                del tail[:-20]
        await process.wait()

    try:
        await asyncio.wait_for(read_stderr(), timeout)
    except TimeoutError:
        error = f"timed out after {timeout} s"
        await _kill(process)
    if error is None and process.returncode != 0:
        error = f"ffmpeg exited {process.returncode}"
    return FfmpegResult(
        ok=error is None and frames >= n,
        frames=frames,
        first_frame_s=first_frame_s,
        returncode=process.returncode,
        error=error,
        stderr_tail=tail,
    )
