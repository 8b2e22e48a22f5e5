"""A free-running fake IP camera: gst-rtsp-server with an H.264 (+ audio) test pattern.

Run with the SYSTEM interpreter (the GStreamer GI bindings are not in the venv)::

    /usr/bin/python3 tests/peers/fake_camera.py --port 0 --path /cam

It prints exactly one line ``READY rtsp://127.0.0.1:<port><first path>`` on stdout once
every path is streaming, then serves until SIGTERM/SIGINT, or until its parent process
dies (checked twice a second), so a killed test run leaves no camera behind. Tests drive it through
``tests/peers/camera.py`` (``FakeCamera``), which parses that line.

Why it behaves like a real camera and not like a typical gst-rtsp-server demo
------------------------------------------------------------------------------
A benchmark baseline measured against a demo server is flattered in two ways: every new
viewer of a seekable pipeline triggers a flushing seek (``Range: npt=0.000-``), which
restarts the encoder and hands that viewer a fresh IDR at once; and a media that is only
prepared on demand starts with an IDR for the first viewer. A real camera encodes
continuously and a viewer joins mid-GOP. So this camera:

* shares one media per path between all clients (``factory.set_shared(True)``), keyed
  by the path only (gst-rtsp-server's default key includes host and port, so a client
  behind stunnel would get its own, freshly started pipeline);
* answers the SEEKING query as *not seekable*: a probe on every source pad replies
  ``seekable=False`` before the query reaches ``videotestsrc``/``audiotestsrc``. In
  gst-rtsp-server 1.22 ``gst_rtsp_media_seek_trickmode()`` then refuses to seek; the PLAY
  request still succeeds (with or without ``Range``) and the encoder keeps its cadence;
* keeps every media running without viewers: after the server is listening, an internal
  RTSP client (a thread of this process, like an NVR that is always recording) DESCRIBEs,
  SETUPs and PLAYs every path over TCP and discards the media. ``--no-keep-alive-client``
  turns this off (then the first viewer starts the pipeline and gets the first IDR).

The RTCP sender reports are gst-rtsp-server's own (rtpbin, first one 1-5 s after a PLAY),
exactly what the Echo-like client must wait for when it talks to the camera directly.
"""

from __future__ import annotations

import argparse
import base64
import ctypes
import hashlib
import os
import re
import signal
import socket
import sys
import threading
import time

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtsp", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtsp, GstRtspServer  # noqa: E402

_LIBGST = ctypes.CDLL("libgstreamer-1.0.so.0")
_LIBGST.gst_query_set_seeking.argtypes = [
    ctypes.c_void_p,
    ctypes.c_int,
    ctypes.c_int,
    ctypes.c_int64,
    ctypes.c_int64,
]
_LIBGST.gst_query_set_seeking.restype = None

INTERNAL_USER = "internal-keepalive"
"""User name of the internal keep-alive client when the camera requires authentication."""


def video_branch(args: argparse.Namespace) -> str:
    """Return the launch fragment of the video stream (payloader ``pay0``)."""
    raw = (
        f"videotestsrc is-live=true pattern={args.pattern} name=vsrc "
        f"! video/x-raw,width={args.width},height={args.height},framerate={args.fps}/1 "
        '! timeoverlay halignment=left valignment=top font-desc="Sans 24" '
        "! videoconvert "
    )
    if args.video == "h264":
        # ultrafast turns CABAC (and 8x8dct) off: the stream would be Constrained Baseline.
        cabac = {"baseline": "", "main": ":cabac=1", "high": ":cabac=1:8x8dct=1"}[args.profile]
        return raw + (
            "! x264enc tune=zerolatency speed-preset=ultrafast aud=false "
            "threads=1 sliced-threads=false "
            f"key-int-max={args.gop} bitrate={args.bitrate} "
            f'option-string="scenecut=0:repeat-headers=0{cabac}" '
            f"! video/x-h264,profile={args.profile} "
            "! rtph264pay name=pay0 pt=96 config-interval=-1 "
        )
    if args.video == "h265":
        return raw + (
            "! x265enc tune=zerolatency speed-preset=ultrafast "
            f"key-int-max={args.gop} bitrate={args.bitrate} "
            "! rtph265pay name=pay0 pt=96 config-interval=-1 "
        )
    return raw + "! video/x-raw,format=I420 ! jpegenc quality=60 ! rtpjpegpay name=pay0 pt=26 "


def audio_branch(args: argparse.Namespace) -> str:
    """Return the launch fragment of the audio stream (payloader ``pay1``), or ``""``."""
    src = "audiotestsrc is-live=true wave=sine freq=440 volume=0.3 name=asrc ! audioconvert "
    if args.audio == "aac":
        encoder = "avenc_aac" if Gst.ElementFactory.find("avenc_aac") else "voaacenc"
        return src + (
            "! audioresample ! audio/x-raw,rate=16000,channels=1 "
            f"! {encoder} bitrate=32000 ! rtpmp4gpay name=pay1 pt=97 "
        )
    if args.audio == "pcmu":
        return src + (
            "! audioresample ! audio/x-raw,rate=8000,channels=1 "
            "! mulawenc ! rtppcmupay name=pay1 pt=0 "
        )
    if args.audio == "pcma":
        return src + (
            "! audioresample ! audio/x-raw,rate=8000,channels=1 "
            "! alawenc ! rtppcmapay name=pay1 pt=8 "
        )
    return ""


def refuse_seeking(
    _pad: Gst.Pad, info: Gst.PadProbeInfo, _data: object = None
) -> Gst.PadProbeReturn:
    """Answer the SEEKING query on a source pad as "not seekable" (a live camera).

    PyGObject hands the probe a *copy reference* of the query (``info.get_query()``), which
    is not writable, so the answer is written through the C API on the original pointer
    (``info.data``, reference count 1 here) with ctypes.
    """
    if info.get_query().type != Gst.QueryType.SEEKING:
        return Gst.PadProbeReturn.OK
    _LIBGST.gst_query_set_seeking(info.data, int(Gst.Format.TIME), 0, 0, -1)
    return Gst.PadProbeReturn.HANDLED


def on_media_configure(
    _factory: GstRtspServer.RTSPMediaFactory, media: GstRtspServer.RTSPMedia
) -> None:
    """Install the not-seekable probes on the test sources of a new media."""
    element = media.get_element()
    for name in ("vsrc", "asrc"):
        src = element.get_by_name(name)
        if src is not None:
            src.get_static_pad("src").add_probe(Gst.PadProbeType.QUERY_UPSTREAM, refuse_seeking)


class KeepAliveClient(threading.Thread):
    """Internal RTSP viewer that keeps a shared media playing (a camera's NVR).

    Blocking sockets in a daemon thread; DESCRIBE, SETUP of every track over TCP,
    PLAY without Range, then discard everything and send OPTIONS every 20 s. Reconnects
    if the server drops it. ``playing`` is set after the first successful PLAY.
    """

    def __init__(self, port: int, path: str, user: str | None, password: str | None) -> None:
        super().__init__(daemon=True, name=f"keepalive{path}")
        self.url = f"rtsp://127.0.0.1:{port}{path}"
        self.port = port
        self.user = user
        self.password = password
        self.playing = threading.Event()
        self.error: str | None = None
        self._cseq = 0
        self._auth_header: dict[str, str] = {}

    def run(self) -> None:
        while True:
            try:
                self._session()
            except (OSError, ValueError) as err:
                self.error = str(err)
            time.sleep(0.5)

    def _authorization(self, method: str, uri: str) -> str | None:
        if not self._auth_header or self.user is None or self.password is None:
            return None
        if self._auth_header.get("scheme") == "basic":
            token = base64.b64encode(f"{self.user}:{self.password}".encode()).decode()
            return f"Basic {token}"
        realm = self._auth_header.get("realm", "")
        nonce = self._auth_header.get("nonce", "")
        ha1 = hashlib.md5(f"{self.user}:{realm}:{self.password}".encode()).hexdigest()
        ha2 = hashlib.md5(f"{method}:{uri}".encode()).hexdigest()
        response = hashlib.md5(f"{ha1}:{nonce}:{ha2}".encode()).hexdigest()
        return (
            f'Digest username="{self.user}", realm="{realm}", nonce="{nonce}", '
            f'uri="{uri}", response="{response}"'
        )

    def _request(
        self, sock: socket.socket, buf: bytearray, method: str, uri: str, headers: str = ""
    ) -> tuple[int, dict[str, str], bytes]:
        for _attempt in range(2):
            self._cseq += 1
            auth = self._authorization(method, uri)
            extra = headers + (f"Authorization: {auth}\r\n" if auth else "")
            sock.sendall(f"{method} {uri} RTSP/1.0\r\nCSeq: {self._cseq}\r\n{extra}\r\n".encode())
            status, reply_headers, body = read_reply(sock, buf)
            if status != 401 or self._auth_header:
                return status, reply_headers, body
            challenge = reply_headers.get("www-authenticate", "")
            if challenge.lower().startswith("digest"):
                self._auth_header = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
                self._auth_header["scheme"] = "digest"
            else:
                self._auth_header = {"scheme": "basic"}
        return status, reply_headers, body

    def _session(self) -> None:
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            buf = bytearray()
            status, headers, body = self._request(
                sock, buf, "DESCRIBE", self.url, "Accept: application/sdp\r\n"
            )
            if status != 200:
                raise ValueError(f"DESCRIBE answered {status}")
            base = headers.get("content-base", self.url)
            controls = re.findall(r"^a=control:(\S+)", body.decode(), re.MULTILINE)
            controls = [c for c in controls if c != "*"]
            session = ""
            for index, control in enumerate(controls):
                uri = control if "://" in control else base.rstrip("/") + "/" + control
                transport = f"RTP/AVP/TCP;unicast;interleaved={2 * index}-{2 * index + 1}"
                extra = f"Transport: {transport}\r\n" + (
                    f"Session: {session}\r\n" if session else ""
                )
                status, headers, _ = self._request(sock, buf, "SETUP", uri, extra)
                if status != 200:
                    raise ValueError(f"SETUP answered {status}")
                session = headers["session"].split(";")[0]
            status, _, _ = self._request(sock, buf, "PLAY", base, f"Session: {session}\r\n")
            if status != 200:
                raise ValueError(f"PLAY answered {status}")
            self.playing.set()
            sock.settimeout(1.0)
            last_keepalive = time.monotonic()
            while True:
                if time.monotonic() - last_keepalive > 20:
                    self._cseq += 1
                    sock.sendall(
                        f"OPTIONS {self.url} RTSP/1.0\r\nCSeq: {self._cseq}\r\n"
                        f"Session: {session}\r\n\r\n".encode()
                    )
                    last_keepalive = time.monotonic()
                try:
                    if not sock.recv(65536):
                        raise ValueError("server closed the keep-alive connection")
                except TimeoutError:
                    continue


def read_reply(sock: socket.socket, buf: bytearray) -> tuple[int, dict[str, str], bytes]:
    """Read one RTSP reply (skipping interleaved frames); return status, headers, body."""
    while True:
        while len(buf) < 4 or (buf[0] == 0x24 and len(buf) < 4 + int.from_bytes(buf[2:4])):
            chunk = sock.recv(65536)
            if not chunk:
                raise ValueError("connection closed")
            buf += chunk
        if buf[0] == 0x24:
            del buf[: 4 + int.from_bytes(buf[2:4])]
            continue
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            chunk = sock.recv(65536)
            if not chunk:
                raise ValueError("connection closed")
            buf += chunk
            continue
        lines = bytes(buf[:end]).decode("latin-1").split("\r\n")
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        while len(buf) < end + 4 + length:
            chunk = sock.recv(65536)
            if not chunk:
                raise ValueError("connection closed")
            buf += chunk
        body = bytes(buf[end + 4 : end + 4 + length])
        del buf[: end + 4 + length]
        return int(lines[0].split()[1]), headers, body


def build_auth(args: argparse.Namespace) -> GstRtspServer.RTSPAuth | None:
    """Return the server's RTSPAuth for ``--user``/``--password``, or None without auth."""
    if args.user is None:
        return None
    auth = GstRtspServer.RTSPAuth()
    if args.realm:
        auth.set_realm(args.realm)
    token = GstRtspServer.RTSPToken()
    token.set_string("media.factory.role", "user")
    if args.auth == "digest":
        auth.set_supported_methods(GstRtsp.RTSPAuthMethod.DIGEST)
        auth.add_digest(args.user, args.password, token)
        auth.add_digest(INTERNAL_USER, args.internal_password, token)
    else:
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        auth.add_basic(
            GstRtspServer.RTSPAuth.make_basic(INTERNAL_USER, args.internal_password), token
        )
    return auth


class PathKeyedFactory(GstRtspServer.RTSPMediaFactory):
    """A media factory whose shared media is keyed by the URL path only.

    gst-rtsp-server keys shared media by "host:port/path", so a client that reaches the
    camera through a proxy (stunnel: another port) or by another host name would get a
    fresh pipeline, starting with a fresh IDR: a real camera has one encoder per stream.
    """

    def do_gen_key(self, url: GstRtsp.RTSPUrl) -> str:
        """Key the media by path (and query), not by the host and port in the URL."""
        return url.abspath + (f"?{url.query}" if url.query else "")


def build_factory(args: argparse.Namespace) -> GstRtspServer.RTSPMediaFactory:
    """Return a shared, non-seekable media factory for one path."""
    factory = PathKeyedFactory()
    factory.set_launch(f"( {video_branch(args)} {audio_branch(args)} )")
    factory.set_shared(True)
    factory.set_suspend_mode(GstRtspServer.RTSPSuspendMode.NONE)
    factory.set_eos_shutdown(False)
    factory.connect("media-configure", on_media_configure)
    if args.user is not None:
        permissions = GstRtspServer.RTSPPermissions()
        permissions.add_permission_for_role("user", "media.factory.access", True)
        permissions.add_permission_for_role("user", "media.factory.construct", True)
        factory.set_permissions(permissions)
    return factory


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--path", action="append", help="mount path (repeatable)")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--height", type=int, default=720)
    parser.add_argument("--fps", type=int, default=25)
    parser.add_argument("--gop", type=int, default=50, help="key frame interval in frames")
    parser.add_argument("--bitrate", type=int, default=2000, help="video kbit/s")
    parser.add_argument("--video", choices=["h264", "h265", "jpeg"], default="h264")
    parser.add_argument("--profile", choices=["baseline", "main", "high"], default="main")
    parser.add_argument("--audio", choices=["aac", "pcmu", "pcma", "none"], default="aac")
    parser.add_argument("--pattern", default="ball", help="videotestsrc pattern")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--auth", choices=["basic", "digest"], default="basic")
    parser.add_argument("--realm", help="auth realm (default: gst-rtsp-server's)")
    parser.add_argument(
        "--no-keep-alive-client",
        dest="keep_alive_client",
        action="store_false",
        help="do not keep the media running with an internal viewer",
    )
    args = parser.parse_args(argv)
    args.path = args.path or ["/cam"]
    if any(not p.startswith("/") for p in args.path):
        parser.error("--path must start with /")
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    args.internal_password = base64.urlsafe_b64encode(os.urandom(12)).decode()
    return args


def main(argv: list[str]) -> int:
    """Serve until SIGTERM/SIGINT; print the READY line once every path is playing."""
    args = parse_args(argv)
    Gst.init(None)
    loop = GLib.MainLoop()
    server = GstRtspServer.RTSPServer()
    server.set_address(args.bind)
    server.set_service(str(args.port))
    auth = build_auth(args)
    if auth is not None:
        server.set_auth(auth)
    mounts = server.get_mount_points()
    for path in args.path:
        mounts.add_factory(path, build_factory(args))
    if server.attach(None) == 0:
        print(f"cannot listen on {args.bind}:{args.port}", file=sys.stderr)
        return 1
    port = server.get_bound_port()

    def stop(*_args: object) -> bool:
        loop.quit()
        return GLib.SOURCE_REMOVE

    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGTERM, stop)
    GLib.unix_signal_add(GLib.PRIORITY_HIGH, signal.SIGINT, stop)

    parent = os.getppid()

    def exit_with_parent() -> bool:
        # A test run that is killed cannot stop its cameras: do not outlive it (an
        # orphaned 720p encoder costs a quarter of a core for nothing).
        if os.getppid() != parent:
            print("parent process gone, exiting", file=sys.stderr, flush=True)
            loop.quit()
            return GLib.SOURCE_REMOVE
        return GLib.SOURCE_CONTINUE

    GLib.timeout_add(500, exit_with_parent)

    clients: list[KeepAliveClient] = []
    if args.keep_alive_client:
        user = INTERNAL_USER if args.user is not None else None
        clients = [KeepAliveClient(port, p, user, args.internal_password) for p in args.path]
        for client in clients:
            client.start()

    deadline = time.monotonic() + 30
    exit_code = 0

    def announce_when_playing() -> bool:
        nonlocal exit_code
        if all(c.playing.is_set() for c in clients):
            print(f"READY rtsp://127.0.0.1:{port}{args.path[0]}", flush=True)
            return GLib.SOURCE_REMOVE
        if time.monotonic() > deadline:
            errors = "; ".join(f"{c.url}: {c.error}" for c in clients)
            print(f"keep-alive client never played: {errors}", file=sys.stderr, flush=True)
            exit_code = 1
            loop.quit()
            return GLib.SOURCE_REMOVE
        return GLib.SOURCE_CONTINUE

    GLib.timeout_add(20, announce_when_playing)
    loop.run()
    sys.stdout.flush()
    sys.stderr.flush()
    # The GLib/GStreamer threads need no orderly teardown: the process is a test peer.
    os._exit(exit_code)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
