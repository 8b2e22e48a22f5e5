"""The restreamer in a child process, driven over stdin/stdout (for the benchmarks).

Running the restreamer in its own process keeps its CPU time and memory measurable
(``/proc/<pid>``) and keeps it off the benchmark's GIL, where the viewers run.

Child: ``python -m bench.serve CAMERA_URL CHAIN KEY`` prints ``READY <port>``, then
answers one line per command read from stdin:

``url``   a fresh stream URI (Basic credentials, valid 10 minutes)
``warm``  start the camera's relay and wait for its SDP, a cached keyframe and every
          track's timing (``OK``)
``cold``  stop the camera's relay (``OK``); the next viewer starts it again
``stats`` the restreamer's ``stats()`` as one JSON line
``quit``  stop and exit
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import ssl
import sys
from pathlib import Path

from custom_components.alexa_cam_bridge.broker import StreamBroker
from custom_components.alexa_cam_bridge.restreamer import CameraConfig, Restreamer

HOST = "127.0.0.1"
CAMERA_ID = "cam"
ROOT = Path(__file__).resolve().parents[1]


async def serve(camera_url: str, chain: str, key: str) -> None:
    """Run a restreamer for one camera and answer commands until ``quit`` or EOF."""
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
        cameras={CAMERA_ID: CameraConfig(CAMERA_ID)},
        grace_seconds=3600,
        public_host=HOST,
    )
    await restreamer.start()
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    print(f"READY {restreamer.bound_ports[0]}", flush=True)
    try:
        while line := (await reader.readline()).decode().strip():
            if line == "url":
                grant = broker.mint(CAMERA_ID, ttl=600, auth_type="BASIC")
                print(restreamer.stream_uri(grant), flush=True)
            elif line == "warm":
                restreamer.prepare(CAMERA_ID)
                relay = restreamer.relay(CAMERA_ID)
                if relay is None:
                    raise RuntimeError("no relay for the benchmark camera")
                await relay.wait_sdp()
                await relay.wait_keyframe(10.0)
                await relay.wait_all_tracks(5.0)
                print("OK", flush=True)
            elif line == "cold":
                await restreamer.stop_relay(CAMERA_ID)
                print("OK", flush=True)
            elif line == "stats":
                print(json.dumps(restreamer.stats(), default=str), flush=True)
            elif line == "quit":
                break
            else:
                print(f"ERROR unknown command {line!r}", flush=True)
    finally:
        await restreamer.stop()


class RestreamerProcess:
    """The parent's handle on a ``bench.serve`` child."""

    def __init__(self, process: asyncio.subprocess.Process, port: int) -> None:
        """Wrap a started child listening on ``port``."""
        self.process = process
        self.port = port

    @classmethod
    async def start(cls, camera_url: str, chain: Path, key: Path) -> RestreamerProcess:
        """Start the child and wait for its READY line."""
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bench.serve",
            camera_url,
            str(chain),
            str(key),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            cwd=ROOT,
        )
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 120)).decode().split()
        if len(line) != 2 or line[0] != "READY":
            process.kill()
            await process.wait()
            raise RuntimeError(f"the restreamer child did not start: {line}")
        return cls(process, int(line[1]))

    @property
    def pid(self) -> int:
        """The child's process id."""
        return self.process.pid

    async def ask(self, command: str, timeout: float = 30.0) -> str:  # noqa: ASYNC109
        """Send one command; return its answer line."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()
        answer = (await asyncio.wait_for(self.process.stdout.readline(), timeout)).decode()
        if not answer:
            raise RuntimeError(f"the restreamer child exited (code {self.process.returncode})")
        return answer.strip()

    async def stats(self) -> dict[str, object]:
        """The restreamer's ``stats()``."""
        result: dict[str, object] = json.loads(await self.ask("stats"))
        return result

    async def stop(self) -> None:
        """Ask the child to quit and reap it (killed if it does not exit in 10 s)."""
        if self.process.returncode is None and self.process.stdin is not None:
            with contextlib.suppress(ConnectionError):
                self.process.stdin.write(b"quit\n")
                await self.process.stdin.drain()
                self.process.stdin.close()
        try:
            await asyncio.wait_for(self.process.wait(), 10)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


def main(argv: list[str] | None = None) -> None:
    """Child entry point: ``python -m bench.serve CAMERA_URL CHAIN KEY``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        raise SystemExit("usage: python -m bench.serve CAMERA_URL CHAIN KEY")
    asyncio.run(serve(*args))


if __name__ == "__main__":
    main()
