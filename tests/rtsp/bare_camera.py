"""A minimal RTSP camera unlike gst's, for the relay and prober tests."""

from __future__ import annotations

import asyncio
import base64
import itertools
import struct

from custom_components.alexa_cam_bridge.rtsp.messages import RtspParser, RtspRequest

HOST = "127.0.0.1"

SPS = base64.b64decode("Z01AH9oBQBbsBagICAoAAAMAAgAAAwBlHjBlQA==")
PPS = base64.b64decode("aO48gA==")


class BareCamera:
    """A minimal RTSP camera unlike gst's: no sprop-parameter-sets and no RTCP at all.

    SPS/PPS come only in band before each IDR (single NAL unit packets), 25 fps, a
    keyframe every 10 frames; one video track.
    """

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.tasks: set[asyncio.Task[None]] = set()

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"rtsp://{HOST}:{self.server.sockets[0].getsockname()[1]}/bare"

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, HOST, 0)

    async def stop(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        assert self.server is not None
        self.server.close()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        parser = RtspParser(role="server")
        try:
            while data := await reader.read(4096):
                for request in parser.feed(data):
                    if not isinstance(request, RtspRequest):
                        continue
                    extra = ""
                    body = b""
                    if request.method == "DESCRIBE":
                        body = (
                            b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=bare\r\nt=0 0\r\n"
                            b"m=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\n"
                            b"a=fmtp:96 packetization-mode=1\r\na=control:track1\r\n"
                        )
                        extra = f"Content-Type: application/sdp\r\nContent-Base: {self.url}/\r\n"
                    elif request.method == "SETUP":
                        extra = "Transport: RTP/AVP/TCP;unicast;interleaved=0-1\r\nSession: 1\r\n"
                    elif request.method == "PLAY":
                        task = asyncio.create_task(self._stream(writer))
                        self.tasks.add(task)
                    head = f"RTSP/1.0 200 OK\r\nCSeq: {request.headers['CSeq']}\r\n{extra}"
                    if body:
                        head += f"Content-Length: {len(body)}\r\n"
                    writer.write(head.encode() + b"\r\n" + body)
        except ConnectionError:
            pass
        finally:
            writer.close()

    async def _stream(self, writer: asyncio.StreamWriter) -> None:
        seq, ts = 1000, 90000
        for frame in itertools.count():
            nals = [SPS, PPS, b"\x65" + b"\x88" * 800] if frame % 10 == 0 else [b"\x41\x9a" * 100]
            for index, nal in enumerate(nals):
                marker = 0x80 if index == len(nals) - 1 else 0
                rtp = struct.pack("!BBHII", 0x80, marker | 96, seq & 0xFFFF, ts, 0x1234) + nal
                writer.write(bytes((0x24, 0, len(rtp) >> 8, len(rtp) & 0xFF)) + rtp)
                seq += 1
            ts += 3600
            await asyncio.sleep(0.04)
