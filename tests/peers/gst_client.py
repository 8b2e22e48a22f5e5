"""GStreamer RTSP client that decodes H.264 and counts frames (a strict TLS peer).

Run with the SYSTEM interpreter (GI bindings)::

    /usr/bin/python3 tests/peers/gst_client.py URL [--ca CA.pem] [--user U --password P]
        [--frames 10] [--timeout 30]

Pipeline: ``rtspsrc protocols=tcp`` -> (video pad) ``rtph264depay ! h264parse !
avdec_h264 ! fakesink``; other pads (audio) go to a ``fakesink``. For ``rtsps://`` the
server certificate is verified against ``--ca`` through ``tls-database``
(``Gio.TlsFileDatabase``) with the default validation flags, so a wrong CA or a wrong
host name FAILS, unlike ffmpeg. Prints exactly one JSON line
``{"ok": bool, "frames": int, "first_frame_s": float|null, "error": str|null}`` (time
from process start) and exits 0 when ``--frames`` frames were decoded, 1 otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import gi

gi.require_version("Gst", "1.0")
from gi.repository import Gio, GLib, Gst  # noqa: E402

STARTED = time.monotonic()


class State:
    """What the client has seen so far."""

    def __init__(self, loop: GLib.MainLoop) -> None:
        self.loop = loop
        self.frames = 0
        self.first_frame_s: float | None = None
        self.error: str | None = None


def build_pipeline(args: argparse.Namespace, state: State) -> Gst.Pipeline:
    """Create the pipeline; frame counting and pad linking update ``state``."""
    pipeline = Gst.Pipeline.new("client")
    source = Gst.ElementFactory.make("rtspsrc", "src")
    source.set_property("location", args.url)
    source.set_property("protocols", "tcp")
    source.set_property("latency", 0)
    if args.user is not None:
        source.set_property("user-id", args.user)
        source.set_property("user-pw", args.password or "")
    if args.ca is not None:
        source.set_property("tls-database", Gio.TlsFileDatabase.new(os.path.abspath(args.ca)))
    depay = Gst.ElementFactory.make("rtph264depay", "depay")
    parse = Gst.ElementFactory.make("h264parse", "parse")
    decode = Gst.ElementFactory.make("avdec_h264", "decode")
    sink = Gst.ElementFactory.make("fakesink", "videosink")
    sink.set_property("sync", False)
    sink.set_property("signal-handoffs", True)
    for element in (source, depay, parse, decode, sink):
        pipeline.add(element)
    depay.link(parse)
    parse.link(decode)
    decode.link(sink)

    def on_pad_added(_src: Gst.Element, pad: Gst.Pad) -> None:
        caps = pad.get_current_caps() or pad.query_caps(None)
        structure = caps.get_structure(0)
        is_h264 = (
            structure.get_string("media") == "video"
            and structure.get_string("encoding-name") == "H264"
        )
        if is_h264 and not depay.get_static_pad("sink").is_linked():
            pad.link(depay.get_static_pad("sink"))
            return
        other = Gst.ElementFactory.make("fakesink", None)
        other.set_property("sync", False)
        pipeline.add(other)
        other.sync_state_with_parent()
        pad.link(other.get_static_pad("sink"))

    def on_handoff(*_args: object) -> None:
        state.frames += 1
        if state.first_frame_s is None:
            state.first_frame_s = round(time.monotonic() - STARTED, 4)
        if state.frames == args.frames:
            GLib.idle_add(state.loop.quit)

    source.connect("pad-added", on_pad_added)
    sink.connect("handoff", on_handoff)
    return pipeline


def main(argv: list[str]) -> int:
    """Play until ``--frames`` frames are decoded, an error, or ``--timeout``."""
    parser = argparse.ArgumentParser(description="GStreamer H.264 RTSP(S) test client")
    parser.add_argument("url")
    parser.add_argument("--ca", help="CA certificate (PEM) that must validate the server")
    parser.add_argument("--user")
    parser.add_argument("--password")
    parser.add_argument("--frames", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args(argv)
    Gst.init(None)
    loop = GLib.MainLoop()
    state = State(loop)
    pipeline = build_pipeline(args, state)

    def on_message(_bus: Gst.Bus, message: Gst.Message) -> None:
        if message.type == Gst.MessageType.ERROR:
            err, debug = message.parse_error()
            state.error = f"{err.message} ({debug})" if debug else err.message
            loop.quit()
        elif message.type == Gst.MessageType.EOS:
            state.error = state.error or "end of stream"
            loop.quit()

    def on_timeout() -> bool:
        state.error = f"timeout after {args.timeout} s"
        loop.quit()
        return GLib.SOURCE_REMOVE

    bus = pipeline.get_bus()
    bus.add_signal_watch()
    bus.connect("message", on_message)
    GLib.timeout_add(int(args.timeout * 1000), on_timeout)
    pipeline.set_state(Gst.State.PLAYING)
    loop.run()
    ok = state.frames >= args.frames
    print(
        json.dumps(
            {
                "ok": ok,
                "frames": state.frames,
                "first_frame_s": state.first_frame_s,
                "error": None if ok else state.error,
            }
        ),
        flush=True,
    )
    # Tearing the RTSP session down properly can block on a dead server: just exit.
    os._exit(0 if ok else 1)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
