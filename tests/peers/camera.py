"""Typed wrapper that runs ``fake_camera.py`` (a free-running gst-rtsp-server camera).

The camera itself needs the GStreamer GI bindings, which exist only for the system
interpreter, so it runs as a subprocess of ``/usr/bin/python3``. See the docstring of
``tests/peers/fake_camera.py`` for what makes it behave like a real IP camera (shared,
non-seekable media kept playing by an internal viewer).

Usage::

    with FakeCamera(audio="none") as cam:
        ...  # cam.url == "rtsp://127.0.0.1:<port>/cam"

    cam = FakeCamera(user="admin", password="secret", auth="digest")
    await cam.astart()
    try:
        ...
    finally:
        await cam.astop()
"""

from __future__ import annotations

import asyncio
import atexit
import os
import selectors
import signal
import subprocess
import tempfile
import time
import weakref
from pathlib import Path
from typing import IO, Literal, NoReturn
from urllib.parse import quote

from tests.peers.process import ManagedPeer

SYSTEM_PYTHON = "/usr/bin/python3"
"""Interpreter that has the GStreamer GI bindings (Debian's python3-gi)."""

FAKE_CAMERA_SCRIPT = Path(__file__).with_name("fake_camera.py")

AudioCodec = Literal["aac", "pcmu", "pcma", "none"]
VideoCodec = Literal["h264", "h265", "jpeg"]
H264Profile = Literal["baseline", "main", "high"]
AuthMethod = Literal["basic", "digest"]


def _read_whole(file: IO[bytes]) -> str:
    """Return a file's whole content without moving the offset it shares with the child."""
    fd = file.fileno()
    return os.pread(fd, os.fstat(fd).st_size, 0).decode(errors="replace")


_RUNNING: weakref.WeakSet[FakeCamera] = weakref.WeakSet()


@atexit.register
def _kill_leftovers() -> None:
    """Kill cameras a crashed test forgot (the camera also exits when its parent dies)."""
    for camera in list(_RUNNING):
        camera.kill()


class FakeCameraError(RuntimeError):
    """The fake camera did not start (the message carries its stderr)."""


class FakeCamera(ManagedPeer):
    """One fake camera process serving ``rtsp://127.0.0.1:<port><path>``.

    ``port=0`` lets the camera pick a free port on the first start; :meth:`restart`
    reuses that port. Not thread-safe: drive one instance from one task/thread.
    """

    def __init__(
        self,
        *,
        width: int = 1280,
        height: int = 720,
        fps: int = 25,
        gop: int = 50,
        bitrate: int = 2000,
        audio: AudioCodec = "aac",
        video: VideoCodec = "h264",
        profile: H264Profile = "main",
        user: str | None = None,
        password: str | None = None,
        auth: AuthMethod = "basic",
        realm: str | None = None,
        path: str = "/cam",
        port: int = 0,
        keep_alive_client: bool = True,
        pattern: str = "ball",
    ) -> None:
        """Store the settings; nothing runs until :meth:`start`.

        ``gop`` is the key-frame interval in frames, ``bitrate`` the video rate in
        kbit/s. ``user``/``password`` enable RTSP authentication with ``auth``
        (``realm`` defaults to gst-rtsp-server's "GStreamer RTSP Server").
        ``keep_alive_client=False`` lets the pipeline start only with the first viewer
        (unlike a real camera). ``pattern`` is videotestsrc's: "snow" does not compress,
        so the encoder really sends ``bitrate`` (the moving ball sends about a third).
        """
        if (user is None) != (password is None):
            raise ValueError("user and password go together")
        if not path.startswith("/"):
            raise ValueError("path must start with /")
        self.width = width
        self.height = height
        self.fps = fps
        self.gop = gop
        self.bitrate = bitrate
        self.pattern = pattern
        self.audio: AudioCodec = audio
        self.video: VideoCodec = video
        self.profile: H264Profile = profile
        self.user = user
        self.password = password
        self.auth: AuthMethod = auth
        self.realm = realm
        self.path = path
        self.keep_alive_client = keep_alive_client
        self._port = port
        self._process: subprocess.Popen[bytes] | None = None
        self._stderr: IO[bytes] | None = None

    # -- properties -------------------------------------------------------------------

    @property
    def port(self) -> int:
        """TCP port the camera listens on (known after the first :meth:`start`)."""
        if self._port == 0:
            raise RuntimeError("the camera has not been started yet")
        return self._port

    @property
    def url(self) -> str:
        """Stream URL without credentials."""
        return f"rtsp://127.0.0.1:{self.port}{self.path}"

    @property
    def url_with_credentials(self) -> str:
        """Stream URL with ``user:password@`` (percent-encoded) when auth is enabled."""
        if self.user is None or self.password is None:
            return self.url
        userinfo = f"{quote(self.user, safe='')}:{quote(self.password, safe='')}"
        return f"rtsp://{userinfo}@127.0.0.1:{self.port}{self.path}"

    @property
    def running(self) -> bool:
        """True while the camera process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """Process id of the camera, or None when it is not running."""
        return self._process.pid if self._process is not None else None

    # -- lifecycle --------------------------------------------------------------------

    def command(self) -> list[str]:
        """Return the camera's command line for the current settings."""
        cmd = [
            SYSTEM_PYTHON,
            str(FAKE_CAMERA_SCRIPT),
            f"--port={self._port}",
            f"--path={self.path}",
            f"--width={self.width}",
            f"--height={self.height}",
            f"--fps={self.fps}",
            f"--gop={self.gop}",
            f"--bitrate={self.bitrate}",
            f"--audio={self.audio}",
            f"--video={self.video}",
            f"--profile={self.profile}",
            f"--pattern={self.pattern}",
        ]
        if self.user is not None and self.password is not None:
            cmd += [f"--user={self.user}", f"--password={self.password}", f"--auth={self.auth}"]
        if self.realm is not None:
            cmd.append(f"--realm={self.realm}")
        if not self.keep_alive_client:
            cmd.append("--no-keep-alive-client")
        return cmd

    def start(self, timeout: float = 20) -> None:
        """Start the camera and wait for its READY line (raises FakeCameraError)."""
        if self.running:
            raise RuntimeError("the camera is already running")
        # stderr goes to a file: a pipe nobody reads could fill up and block the camera.
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed in _reap
        process = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            env={**os.environ, "GST_DEBUG_NO_COLOR": "1"},
        )
        self._process = process
        _RUNNING.add(self)
        assert process.stdout is not None
        line = b""
        deadline = time.monotonic() + timeout
        with selectors.DefaultSelector() as selector:
            selector.register(process.stdout, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    self._fail(f"no READY line within {timeout} s")
                chunk = os.read(process.stdout.fileno(), 1)
                if not chunk:
                    self._fail(f"exited with code {process.wait()}")
                line += chunk
        text = line.decode().strip()
        if not text.startswith("READY rtsp://"):
            self._fail(f"unexpected output {text!r}")
        self._port = int(text.rsplit(":", 1)[1].split("/", 1)[0])

    def _fail(self, reason: str) -> NoReturn:
        """Kill the half-started process and raise with its stderr."""
        if self._process is not None:
            self._process.kill()
        stderr = self._reap()
        raise FakeCameraError(f"fake camera {reason}: {stderr[-4000:]}")

    def _reap(self) -> str:
        """Wait for the (signalled) process, close its pipes; return its stderr text."""
        process, self._process = self._process, None
        _RUNNING.discard(self)
        if process is not None:
            process.wait()
            if process.stdout is not None:
                process.stdout.close()
        stderr_file, self._stderr = self._stderr, None
        if stderr_file is None:
            return ""
        with stderr_file:
            return _read_whole(stderr_file)

    @property
    def stderr(self) -> str:
        """What the running camera has written to stderr so far (for diagnostics)."""
        return "" if self._stderr is None else _read_whole(self._stderr)

    def stop(self, timeout: float = 5) -> None:
        """Stop the camera with SIGTERM (SIGKILL if it does not exit within ``timeout``)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
        self._reap()

    def kill(self) -> None:
        """SIGKILL the camera: a camera that dies without closing its sessions."""
        if self._process is None:
            return
        self._process.kill()
        self._reap()

    def restart(self, timeout: float = 20) -> None:
        """Stop (if running) and start again on the same port.

        Retries the start for a short while in case the port is still in TIME_WAIT.
        """
        self.stop()
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.start(timeout=max(1.0, deadline - time.monotonic()))
                return
            except FakeCameraError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.2)

    # -- asyncio helpers --------------------------------------------------------------

    async def astart(self, timeout: float = 20) -> None:  # noqa: ASYNC109 - the thread's bound
        """:meth:`start` in a worker thread."""
        await asyncio.to_thread(self.start, timeout)

    async def astop(self) -> None:
        """:meth:`stop` in a worker thread."""
        await asyncio.to_thread(self.stop)

    async def akill(self) -> None:
        """:meth:`kill` in a worker thread."""
        await asyncio.to_thread(self.kill)

    async def arestart(self, timeout: float = 20) -> None:  # noqa: ASYNC109 - the thread's bound
        """:meth:`restart` in a worker thread."""
        await asyncio.to_thread(self.restart, timeout)

    def __repr__(self) -> str:
        """Short description for test output."""
        where = f"port {self._port}" if self._port else "not started"
        return f"<FakeCamera {self.video}+{self.audio} {self.width}x{self.height} {where}>"
