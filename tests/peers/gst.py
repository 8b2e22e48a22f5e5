"""Typed asyncio wrapper around ``gst_client.py`` (GStreamer ``rtspsrc`` + H.264 decode).

GStreamer verifies ``rtsps://`` certificates (with ``ca_path`` as the only trust anchor),
which makes it the peer that proves the served chain is valid; ffmpeg does not verify.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from pathlib import Path

from tests.peers.camera import SYSTEM_PYTHON

GST_CLIENT_SCRIPT = Path(__file__).with_name("gst_client.py")


@dataclass
class GstResult:
    """Outcome of :func:`gst_play`; ``first_frame_s`` counts from the client's start."""

    ok: bool
    frames: int
    first_frame_s: float | None
    error: str | None
    returncode: int | None
    stderr: str


async def gst_play(
    url: str,
    *,
    ca_path: Path | str | None = None,
    user: str | None = None,
    password: str | None = None,
    frames: int = 10,
    timeout: float = 30,  # noqa: ASYNC109 - passed to the client, plus a margin here
) -> GstResult:
    """Play ``url`` with GStreamer until ``frames`` frames are decoded or ``timeout``."""
    command = [SYSTEM_PYTHON, str(GST_CLIENT_SCRIPT), url, f"--frames={frames}"]
    command.append(f"--timeout={timeout}")
    if ca_path is not None:
        command.append(f"--ca={ca_path}")  # gst_client.py makes it absolute
    if user is not None:
        command += [f"--user={user}", f"--password={password or ''}"]
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout + 10)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            process.kill()
        _, stderr = await process.communicate()
        return GstResult(
            ok=False,
            frames=0,
            first_frame_s=None,
            error="gst client did not exit",
            returncode=process.returncode,
            stderr=stderr.decode(errors="replace"),
        )
    lines = stdout.decode(errors="replace").strip().splitlines()
    try:
        report = json.loads(lines[-1])
    except (IndexError, ValueError):
        report = {"ok": False, "frames": 0, "first_frame_s": None, "error": "no report"}
    return GstResult(
        ok=bool(report["ok"]),
        frames=int(report["frames"]),
        first_frame_s=report["first_frame_s"],
        error=report["error"],
        returncode=process.returncode,
        stderr=stderr.decode(errors="replace"),
    )
