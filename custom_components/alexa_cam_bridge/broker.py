"""Stream credentials for the restreamer (pure, no I/O, no Home Assistant).

Every InitializeCameraStreams directive mints a :class:`StreamGrant`: a random stream id
(the RTSP URL path), a user name and a password, valid until ``expires_at``. The RTSP
server looks the grant up by the stream id found in the request URL and checks the
client's Basic/Digest credentials against it.

Snapshot URLs (the response's ``imageUri``) carry an HMAC-signed, expiring token naming
the camera; :meth:`StreamBroker.verify_snapshot` checks it in constant time.

:class:`FailureLimiter` counts authentication failures per client address in a sliding
window. Once an address has reached the limit (default 10 failures per 60 s) the server
answers its requests with ``403 Forbidden`` and closes the connection without checking
credentials, until the window has passed. Successful logins do not reset the count.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

AuthType = Literal["BASIC", "DIGEST"]

_TOKEN_BYTES = 18  # 24 URL-safe characters


@dataclass(frozen=True, slots=True)
class StreamGrant:
    """Credentials for one stream URL.

    ``username`` and ``password`` are URL-safe (``[A-Za-z0-9_-]``), so they can be put in
    ``rtsp://user:pass@host/stream_id`` without escaping.
    """

    stream_id: str
    camera_id: str
    username: str
    password: str
    expires_at: float
    auth_type: AuthType

    def __repr__(self) -> str:
        """Return a representation without the secrets."""
        return (
            f"StreamGrant(camera_id={self.camera_id!r}, expires_at={self.expires_at!r}, "
            f"auth_type={self.auth_type!r})"
        )


class FailureLimiter:
    """Sliding-window count of authentication failures per client address."""

    def __init__(
        self,
        *,
        max_failures: int = 10,
        window: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_addresses: int = 4096,
    ) -> None:
        """Allow ``max_failures`` failures per ``window`` seconds per address."""
        self._max = max_failures
        self._window = window
        self._clock = clock
        self._max_addresses = max_addresses
        self._failures: dict[str, deque[float]] = {}

    def _prune(self, address: str, now: float) -> deque[float] | None:
        entries = self._failures.get(address)
        if entries is None:
            return None
        while entries and entries[0] <= now - self._window:
            entries.popleft()
        if not entries:
            del self._failures[address]
            return None
        return entries

    def blocked(self, address: str) -> bool:
        """Return True when ``address`` has used up its failures for the window."""
        entries = self._prune(address, self._clock())
        return entries is not None and len(entries) >= self._max

    def record_failure(self, address: str) -> None:
        """Count one failed authentication from ``address``."""
        now = self._clock()
        entries = self._prune(address, now)
        if entries is None:
            if len(self._failures) >= self._max_addresses:
                # Bounded memory: forget the address with the oldest last failure.
                oldest = min(self._failures, key=lambda a: self._failures[a][-1])
                del self._failures[oldest]
            entries = self._failures[address] = deque()
        entries.append(now)
        while len(entries) > self._max:
            entries.popleft()

    def tracked_addresses(self) -> int:
        """Return how many addresses currently have failures recorded."""
        now = self._clock()
        for address in list(self._failures):
            self._prune(address, now)
        return len(self._failures)


class StreamBroker:
    """Mints and looks up stream grants; signs snapshot tokens."""

    def __init__(
        self,
        *,
        clock: Callable[[], float] = time.time,
        secret: bytes | None = None,
        failure_limiter: FailureLimiter | None = None,
    ) -> None:
        """Create a broker; ``secret`` keys the snapshot HMAC (random when None)."""
        self._clock = clock
        self._secret = secret if secret is not None else secrets.token_bytes(32)
        self._grants: dict[str, StreamGrant] = {}
        self.failures = failure_limiter if failure_limiter is not None else FailureLimiter()

    def mint(self, camera_id: str, *, ttl: float, auth_type: str) -> StreamGrant:
        """Create a grant for ``camera_id`` valid for ``ttl`` seconds.

        ``auth_type`` is ``"BASIC"`` or ``"DIGEST"`` (``ValueError`` otherwise).
        """
        checked: AuthType
        if auth_type == "BASIC":
            checked = "BASIC"
        elif auth_type == "DIGEST":
            checked = "DIGEST"
        else:
            raise ValueError(f"unsupported auth type {auth_type!r}")
        self._purge()
        grant = StreamGrant(
            stream_id=secrets.token_urlsafe(_TOKEN_BYTES),
            camera_id=camera_id,
            username=secrets.token_urlsafe(_TOKEN_BYTES // 2),
            password=secrets.token_urlsafe(_TOKEN_BYTES),
            expires_at=self._clock() + ttl,
            auth_type=checked,
        )
        self._grants[grant.stream_id] = grant
        return grant

    def lookup(self, stream_id: str) -> StreamGrant | None:
        """Return the live grant for ``stream_id`` (None when unknown or expired)."""
        self._purge()
        return self._grants.get(stream_id)

    def revoke_camera(self, camera_id: str) -> None:
        """Forget every grant of ``camera_id``."""
        for stream_id in [s for s, g in self._grants.items() if g.camera_id == camera_id]:
            del self._grants[stream_id]

    def active_grants(self) -> int:
        """Return the number of unexpired grants (for diagnostics)."""
        self._purge()
        return len(self._grants)

    def _purge(self) -> None:
        now = self._clock()
        for stream_id in [s for s, g in self._grants.items() if g.expires_at <= now]:
            del self._grants[stream_id]

    def _mac(self, payload: bytes) -> bytes:
        return hmac.new(self._secret, payload, hashlib.sha256).digest()[:16]

    def sign_snapshot(self, camera_id: str, ttl: float) -> str:
        """Return a URL-safe token naming ``camera_id``, valid for ``ttl`` seconds."""
        expires = int(self._clock() + ttl)
        payload = f"{expires}:{camera_id}".encode()
        blob = payload + b"." + self._mac(payload)
        return base64.urlsafe_b64encode(blob).rstrip(b"=").decode("ascii")

    def verify_snapshot(self, token: str) -> str | None:
        """Return the camera id of a valid, unexpired token, else None."""
        if not token or len(token) > 2048:
            return None
        try:
            blob = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        except (ValueError, TypeError):
            return None
        if len(blob) < 18 or blob[-17:-16] != b".":
            return None
        payload, mac = blob[:-17], blob[-16:]
        if not hmac.compare_digest(mac, self._mac(payload)):
            return None
        expires_text, sep, camera = payload.partition(b":")
        if not sep:
            return None
        try:
            expires = int(expires_text)
            camera_id = camera.decode()
        except (ValueError, UnicodeDecodeError):
            return None
        if expires <= self._clock():
            return None
        return camera_id
