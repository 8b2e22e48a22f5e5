"""Resource limits shared by the front door, the RTSP server and the camera relay."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds that keep slow, broken or hostile peers from hurting anyone else.

    - ``max_connections``: open client connections (TLS included); more are closed at once.
    - ``handshake_timeout``: seconds from accept to a finished TLS handshake.
    - ``request_timeout``: seconds to complete a request once its first byte arrived
      (slowloris bound); also the bound for the first request after the handshake.
    - ``idle_timeout``: seconds without any byte from a client that is not playing.
    - ``max_line`` / ``max_header_bytes`` / ``max_headers``: request size bounds.
    - ``session_timeout``: the RTSP session timeout announced in ``Session:`` and enforced
      (a playing client must send something - a keep-alive or RTCP - within it).
    - ``viewer_queue_bytes``: per-viewer bytes waiting to be sent before that viewer skips
      to the next keyframe.
    - ``gop_cache_bytes``: per-camera bound of the keyframe (GOP) cache.
    """

    max_connections: int = 64
    handshake_timeout: float = 10.0
    request_timeout: float = 10.0
    idle_timeout: float = 60.0
    max_line: int = 4096
    max_header_bytes: int = 16384
    max_headers: int = 64
    session_timeout: int = 60
    viewer_queue_bytes: int = 4 * 1024 * 1024
    gop_cache_bytes: int = 8 * 1024 * 1024
