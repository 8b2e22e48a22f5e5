"""What every subprocess peer shares: a free loopback port, a polite stop, and the
context-manager / async wrappers around a blocking ``start``/``stop``."""

from __future__ import annotations

import asyncio
import socket
import subprocess
from types import TracebackType
from typing import Any, Self


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def terminate(process: subprocess.Popen[Any], timeout: float = 5) -> None:
    """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL; always reaps the process."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
    process.wait()


class ManagedPeer:
    """Base of the peers: subclasses implement the blocking ``start()`` and ``stop()``."""

    def start(self) -> None:
        """Start the peer (blocks until it serves)."""
        raise NotImplementedError

    def stop(self) -> None:
        """Stop the peer (idempotent)."""
        raise NotImplementedError

    async def astart(self) -> None:
        """:meth:`start` in a worker thread."""
        await asyncio.to_thread(self.start)

    async def astop(self) -> None:
        """:meth:`stop` in a worker thread."""
        await asyncio.to_thread(self.stop)

    def __enter__(self) -> Self:
        """Start."""
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        """Stop."""
        self.stop()
