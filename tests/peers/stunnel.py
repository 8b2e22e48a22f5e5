"""stunnel4 as a TLS terminator in front of a plain RTSP server (benchmark baseline).

``Stunnel`` writes a config into a private temporary directory and runs
``/usr/bin/stunnel4`` in the foreground: it accepts TLS 1.2+ on ``127.0.0.1:<port>``
with the given certificate chain and key and forwards the plain bytes to the backend.
``TCP_NODELAY`` is set on both sides so the baseline is not handicapped by Nagle.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

from tests.peers.process import ManagedPeer, free_port, terminate

STUNNEL = "/usr/bin/stunnel4"


class StunnelError(RuntimeError):
    """stunnel did not start (the message carries its log)."""


class Stunnel(ManagedPeer):
    """One stunnel4 server process: TLS on ``127.0.0.1:port`` -> ``backend``."""

    def __init__(
        self,
        backend_port: int,
        chain_path: Path,
        key_path: Path,
        *,
        backend_host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        """Store the settings; ``port=0`` picks a free port at :meth:`start`."""
        self.backend_host = backend_host
        self.backend_port = backend_port
        self.chain_path = Path(chain_path).resolve()
        self.key_path = Path(key_path).resolve()
        self.port = port
        self._dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    def _config(self) -> str:
        return "\n".join(
            [
                "foreground = yes",
                "pid =",
                "debug = 4",
                f"output = {self._dir}/stunnel.log",
                "[rtsp]",
                f"accept = 127.0.0.1:{self.port}",
                f"connect = {self.backend_host}:{self.backend_port}",
                f"cert = {self.chain_path}",
                f"key = {self.key_path}",
                "sslVersionMin = TLSv1.2",
                "libwrap = no",
                "socket = l:TCP_NODELAY=1",
                "socket = r:TCP_NODELAY=1",
                "",
            ]
        )

    def log(self) -> str:
        """stunnel's log so far."""
        if self._dir is None or not (self._dir / "stunnel.log").exists():
            return ""
        return (self._dir / "stunnel.log").read_text(errors="replace")

    def start(self, timeout: float = 10) -> None:
        """Start stunnel and wait until it accepts TCP connections."""
        if self._process is not None:
            raise RuntimeError("stunnel is already running")
        if self.port == 0:
            self.port = free_port()
        self._dir = Path(tempfile.mkdtemp(prefix="stunnel-"))
        config = self._dir / "stunnel.conf"
        config.write_text(self._config())
        self._process = subprocess.Popen(
            [STUNNEL, str(config)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                log = self.log()
                self.stop()
                raise StunnelError(f"stunnel exited: {log}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                if time.monotonic() > deadline:
                    log = self.log()
                    self.stop()
                    raise StunnelError(f"stunnel not listening after {timeout} s: {log}") from None
                time.sleep(0.02)

    def stop(self) -> None:
        """Stop stunnel and remove its temporary directory."""
        process, self._process = self._process, None
        if process is not None:
            terminate(process)
        if self._dir is not None:
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
