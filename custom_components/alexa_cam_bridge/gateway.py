"""Alexa Event Gateway client: Login with Amazon tokens and proactive event delivery.

Nothing here imports Home Assistant. The HA glue (``events.py``) hands in an aiohttp
session, a coroutine that persists :class:`Tokens`, and callbacks; tests run both classes
against local fake servers.

- :class:`LwaTokens` turns an ``AcceptGrant`` code into access + refresh tokens, refreshes
  the access token ahead of its expiry (single-flight: concurrent senders share one
  refresh), and reports a refresh Login with Amazon rejects for good as
  :class:`LinkLostError`.
- :class:`EventGateway` delivers events: one task per event *key* (``health:<endpoint>``,
  ``doorbell:<endpoint>``, ...), a newer event with the same key supersedes an older one
  that has not been delivered yet, at most ``max_pending`` keys are pending (the oldest
  is dropped). 202 is success; 429, 5xx and network errors are retried with exponential
  backoff and jitter; 401 causes one token refresh and one more try; 403 (skill disabled,
  permission missing) and a lost link stop all sending until :meth:`EventGateway.resume`.

Tokens never appear in logs or reprs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

_LOGGER = logging.getLogger(__name__)


class Region(StrEnum):
    """Alexa regions, each with its own Event Gateway."""

    NA = "NA"
    EU = "EU"
    FE = "FE"


#: The Event Gateway of each region (Amazon's "Send Events" documentation).
EVENT_GATEWAY_URLS: Final[Mapping[Region, str]] = {
    Region.NA: "https://api.amazonalexa.com/v3/events",
    Region.EU: "https://api.eu.amazonalexa.com/v3/events",
    Region.FE: "https://api.fe.amazonalexa.com/v3/events",
}
#: Login with Amazon's token endpoint (authorization code and refresh token grants).
LWA_TOKEN_URL: Final = "https://api.amazon.com/auth/o2/token"  # noqa: S105 (a URL)
#: Answers, for the user an access token belongs to, the Alexa API host of their region
#: (``{"endpoints": ["api.eu.amazonalexa.com"]}``).
API_ENDPOINT_URL: Final = "https://api.amazonalexa.com/v1/alexaApiEndpoint"

_HOST_REGIONS: Final[Mapping[str, Region]] = {
    urlsplit(url).hostname or "": region for region, url in EVENT_GATEWAY_URLS.items()
}

#: Refresh the access token this many seconds before it expires.
REFRESH_MARGIN_SECONDS: Final = 300.0
#: Seconds one HTTP exchange with Login with Amazon or the gateway may take.
HTTP_TIMEOUT_SECONDS: Final = 10.0
#: Seconds the AcceptGrant code exchange may take: the Lambda gives a whole directive 5 s.
EXCHANGE_TIMEOUT_SECONDS: Final = 4.0
#: Most bytes of an error body read (for its ``code``).
_MAX_ERROR_BODY: Final = 16 * 1024
#: LWA error codes that mean the refresh token (or the skill's client) is no good any more.
_LINK_LOST_CODES: Final = frozenset({"invalid_grant", "invalid_client", "unauthorized_client"})


@dataclass(frozen=True, slots=True)
class Tokens:
    """One user's Login with Amazon tokens, and the region detected for them.

    ``expires_at`` is a Unix time. The tokens are left out of ``repr``.
    """

    access_token: str = field(repr=False)
    refresh_token: str = field(repr=False)
    expires_at: float
    region: Region | None = None

    def as_dict(self) -> dict[str, Any]:
        """The form kept in storage."""
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "expires_at": self.expires_at,
            "region": self.region.value if self.region else None,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Tokens | None:
        """Read the stored form; None when it is missing or malformed."""
        access = data.get("access_token")
        refresh = data.get("refresh_token")
        expires_at = data.get("expires_at")
        region = data.get("region")
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            return None
        if not isinstance(expires_at, int | float):
            return None
        known = Region(region) if isinstance(region, str) and region in Region.__members__ else None
        return cls(access, refresh, float(expires_at), known)


class TokenError(Exception):
    """Login with Amazon did not give a token.

    ``code`` is LWA's ``error`` (``invalid_grant``, ...) or ``http_<status>`` /
    ``network`` when there was no OAuth error; the message never holds a token.
    """

    def __init__(self, code: str, message: str) -> None:
        """Create the error."""
        super().__init__(message)
        self.code = code


class LinkLostError(TokenError):
    """The refresh was rejected for good (``invalid_grant``, ``invalid_client``, ...)."""


class NotLinkedError(TokenError):
    """There are no tokens: no AcceptGrant has been exchanged (or the link was lost)."""


type TokenSaver = Callable[[Tokens | None], Awaitable[None]]


def _error_code(status: int, body: object) -> str:
    if isinstance(body, Mapping) and isinstance(body.get("error"), str):
        return str(body["error"])
    return f"http_{status}"


class LwaTokens:
    """Login with Amazon tokens for the Event Gateway.

    ``client_id``/``client_secret`` are the skill's "Alexa Skill Messaging" credentials;
    ``save`` persists a new token set (None: forget them); ``clock`` returns Unix time.
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        client_id: str,
        client_secret: str,
        *,
        save: TokenSaver,
        tokens: Tokens | None = None,
        token_url: str = LWA_TOKEN_URL,
        clock: Callable[[], float] = time.time,
        refresh_margin: float = REFRESH_MARGIN_SECONDS,
        timeout: float = HTTP_TIMEOUT_SECONDS,
    ) -> None:
        """Start with the stored ``tokens`` (None: not linked)."""
        self._session = session
        self._client_id = client_id
        self._client_secret = client_secret
        self._save = save
        self._tokens = tokens
        self._token_url = token_url
        self._clock = clock
        self._margin = refresh_margin
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._refreshing: asyncio.Future[str] | None = None
        self.refreshes = 0

    @property
    def linked(self) -> bool:
        """Whether there are tokens to send events with."""
        return self._tokens is not None

    @property
    def tokens(self) -> Tokens | None:
        """The current tokens (None: not linked)."""
        return self._tokens

    async def exchange(self, code: str) -> Tokens:
        """Exchange an AcceptGrant ``code`` for tokens, keep and save them.

        Raises :class:`TokenError` when Login with Amazon refuses or cannot be reached.
        """
        tokens = await self._request(
            {"grant_type": "authorization_code", "code": code},
            None,
            aiohttp.ClientTimeout(
                total=min(EXCHANGE_TIMEOUT_SECONDS, self._timeout.total or EXCHANGE_TIMEOUT_SECONDS)
            ),
        )
        self._tokens = tokens
        await self._save(tokens)
        return tokens

    async def set_region(self, region: Region) -> None:
        """Remember the region detected for the current tokens."""
        if self._tokens is not None and self._tokens.region is not region:
            self._tokens = replace(self._tokens, region=region)
            await self._save(self._tokens)

    async def access_token(self) -> str:
        """A valid access token, refreshed first when it expires within the margin.

        Raises :class:`NotLinkedError`, :class:`LinkLostError` or (transient)
        :class:`TokenError`.
        """
        tokens = self._tokens
        if tokens is None:
            raise NotLinkedError("not_linked", "No Alexa account is linked")
        if tokens.expires_at - self._margin > self._clock():
            return tokens.access_token
        return await self._refresh()

    async def refresh_rejected(self, rejected: str) -> str:
        """A token after the gateway rejected ``rejected`` (401).

        When another sender has refreshed meanwhile, its token is returned; otherwise the
        token is refreshed (shared with concurrent callers).
        """
        tokens = self._tokens
        if tokens is None:
            raise NotLinkedError("not_linked", "No Alexa account is linked")
        if tokens.access_token != rejected:
            return tokens.access_token
        return await self._refresh()

    async def _refresh(self) -> str:
        if self._refreshing is None:
            future = asyncio.ensure_future(self._refresh_once())
            self._refreshing = future

            def _done(done: asyncio.Future[str]) -> None:
                self._refreshing = None
                if not done.cancelled():
                    done.exception()  # retrieved here; awaiting callers get it too

            future.add_done_callback(_done)
        return await asyncio.shield(self._refreshing)

    async def _refresh_once(self) -> str:
        tokens = self._tokens
        if tokens is None:
            raise NotLinkedError("not_linked", "No Alexa account is linked")
        self.refreshes += 1
        try:
            fresh = await self._request(
                {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token},
                tokens,
                self._timeout,
            )
        except TokenError as err:
            if err.code not in _LINK_LOST_CODES:
                raise
            if err.code == "invalid_grant":
                # The refresh token is dead: only a new AcceptGrant helps.
                self._tokens = None
                await self._save(None)
            raise LinkLostError(err.code, str(err)) from None
        self._tokens = fresh
        await self._save(fresh)
        return fresh.access_token

    async def _request(
        self, form: dict[str, str], previous: Tokens | None, limit: aiohttp.ClientTimeout
    ) -> Tokens:
        data = {**form, "client_id": self._client_id, "client_secret": self._client_secret}
        grant = form["grant_type"]
        try:
            async with self._session.post(self._token_url, data=data, timeout=limit) as resp:
                status = resp.status
                try:
                    body: object = await resp.json(content_type=None)
                except (ValueError, aiohttp.ClientPayloadError):
                    body = None
        except (aiohttp.ClientError, TimeoutError) as err:
            raise TokenError(
                "network", f"Login with Amazon unreachable ({type(err).__name__})"
            ) from None
        if status != 200:
            code = _error_code(status, body)
            raise TokenError(code, f"Login with Amazon refused the {grant} grant: {code}")
        if not isinstance(body, Mapping):
            raise TokenError("invalid_response", "Login with Amazon answered no JSON object")
        access = body.get("access_token")
        refresh = body.get("refresh_token") or (previous.refresh_token if previous else None)
        expires_in = body.get("expires_in", 3600)
        if not (isinstance(access, str) and access and isinstance(refresh, str) and refresh):
            raise TokenError("invalid_response", "Login with Amazon answered no tokens")
        if not isinstance(expires_in, int | float) or expires_in <= 0:
            expires_in = 3600
        return Tokens(
            access,
            refresh,
            self._clock() + float(expires_in),
            previous.region if previous else None,
        )


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a retryable failure (429, 5xx, network) is retried.

    The wait before retry ``n`` (1-based) is ``min(cap, base * 2**(n-1))``, of which the
    upper half is random (jitter), or the gateway's ``Retry-After`` when it is longer
    (still capped).
    """

    attempts: int = 6
    base: float = 1.0
    cap: float = 60.0

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry``."""
        ceiling: float = min(self.cap, self.base * 2.0 ** (retry - 1))
        wait = ceiling / 2 + rng.uniform(0, ceiling / 2)
        if retry_after is not None:
            wait = max(wait, min(self.cap, retry_after))
        return wait


class StopReason(StrEnum):
    """Why the gateway stopped sending."""

    LINK_LOST = "link_lost"
    SKILL_DISABLED = "skill_disabled"


type EventBuilder = Callable[[str], dict[str, Any]]
type StopCallback = Callable[[StopReason, str], None]


@dataclass(slots=True)
class _Pending:
    build: EventBuilder
    on_delivered: Callable[[], None] | None


@dataclass(slots=True)
class _Outcome:
    """The result of one POST."""

    status: int | None  # None: no HTTP answer (network error, timeout)
    code: str | None = None
    retry_after: float | None = None


def _retry_after(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(0.0, seconds)


class EventGateway:
    """Delivers Alexa events to the Event Gateway of the user's region.

    The URL is ``event_url`` when given (private deployments, tests); otherwise the
    gateway of ``region`` when given; otherwise of the region detected once per link with
    ``lookup_url`` (kept with the tokens), North America when detection fails.
    ``on_stopped`` is called once when sending stops (link lost, skill disabled).
    """

    def __init__(
        self,
        session: aiohttp.ClientSession,
        tokens: LwaTokens,
        *,
        event_url: str | None = None,
        region: Region | None = None,
        region_urls: Mapping[Region, str] = EVENT_GATEWAY_URLS,
        lookup_url: str = API_ENDPOINT_URL,
        retry: RetryPolicy | None = None,
        max_pending: int = 64,
        max_concurrent: int = 4,
        timeout: float = HTTP_TIMEOUT_SECONDS,
        on_stopped: StopCallback | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """Configure; nothing is sent until :meth:`submit`."""
        self._session = session
        self._tokens = tokens
        self._event_url = event_url
        self._region = region
        self._region_urls = dict(region_urls)
        self._lookup_url = lookup_url
        self._retry = retry or RetryPolicy()
        self._max_pending = max_pending
        self._semaphore = asyncio.Semaphore(max_concurrent)
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._on_stopped = on_stopped
        self._rng = rng or random.Random()  # noqa: S311 (jitter, not security)
        self._pending: OrderedDict[str, _Pending] = OrderedDict()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._detect_lock = asyncio.Lock()
        self._fallback_region: Region | None = None
        self._stopped: tuple[StopReason, str] | None = None
        self._closed = False
        self.counters: dict[str, int] = dict.fromkeys(
            ("delivered", "superseded", "dropped", "retried", "failed"), 0
        )
        self.last_error: str | None = None

    # -- public API -----------------------------------------------------------------------

    @property
    def active(self) -> bool:
        """Whether events are sent (linked, not stopped, not closed)."""
        return self._tokens.linked and self._stopped is None and not self._closed

    @property
    def stopped(self) -> tuple[StopReason, str] | None:
        """Why sending stopped, with the error code, or None."""
        return self._stopped

    def submit(
        self, key: str, build: EventBuilder, *, on_delivered: Callable[[], None] | None = None
    ) -> bool:
        """Queue an event; ``build(access_token)`` makes its message at send time.

        A pending event with the same ``key`` is superseded (only the newest is sent).
        Returns False when the event is not queued (not linked, stopped, closed).
        ``on_delivered`` runs after the gateway accepted the event.
        """
        if not self.active:
            _LOGGER.debug("Not sending %s: Alexa events are not active", key)
            return False
        item = _Pending(build, on_delivered)
        if key in self._pending:
            self.counters["superseded"] += 1
            self._pending[key] = item
            return True
        if len(self._pending) >= self._max_pending:
            oldest, _ = self._pending.popitem(last=False)
            self.counters["dropped"] += 1
            _LOGGER.warning("Alexa event queue is full; dropping the oldest event %s", oldest)
            if (task := self._tasks.pop(oldest, None)) is not None:
                task.cancel()
        self._pending[key] = item
        self._tasks[key] = asyncio.create_task(self._deliver(key), name=f"alexa event {key}")
        return True

    async def keep_token_fresh(self) -> None:
        """Refresh the access token if it is due, so no event has to wait for LWA.

        Called periodically by the host; a refresh rejected for good stops sending like
        one during a delivery; a transient failure is left to the next call.
        """
        if not self.active:
            return
        try:
            await self._tokens.access_token()
        except LinkLostError as err:
            self._stop(StopReason.LINK_LOST, err.code)
        except TokenError as err:
            self.last_error = f"refresh: {err.code}"
            _LOGGER.debug("Proactive token refresh failed: %s", err.code)

    def resume(self) -> None:
        """Send again after a new link (a fresh AcceptGrant): forget stop and region."""
        self._stopped = None
        self._fallback_region = None

    async def close(self) -> None:
        """Cancel every pending delivery and wait for the tasks to end."""
        self._closed = True
        tasks = list(self._tasks.values())
        self._tasks.clear()
        self._pending.clear()
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    async def wait_idle(self) -> None:
        """Wait until nothing is pending (for tests and orderly shutdowns)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    def stats(self) -> dict[str, Any]:
        """Counters and state for diagnostics (no tokens, no URLs with credentials)."""
        tokens = self._tokens.tokens
        return {
            "active": self.active,
            "stopped": list(self._stopped) if self._stopped else None,
            "pending": list(self._pending),
            "region": (
                (self._region or (tokens.region if tokens else None) or self._fallback_region)
                if self._event_url is None
                else "custom"
            ),
            "refreshes": self._tokens.refreshes,
            "last_error": self.last_error,
            **self.counters,
        }

    # -- delivery -------------------------------------------------------------------------

    async def _deliver(self, key: str) -> None:
        try:
            await self._deliver_until_done(key)
        finally:
            if self._tasks.get(key) is asyncio.current_task():
                del self._tasks[key]

    async def _deliver_until_done(self, key: str) -> None:
        retries = 0
        refreshed = False
        while (item := self._pending.get(key)) is not None:
            try:
                async with self._semaphore:
                    outcome, token = await self._post(item)
            except LinkLostError as err:
                self._stop(StopReason.LINK_LOST, err.code)
                return
            except NotLinkedError:
                self._pending.pop(key, None)
                return
            except TokenError as err:  # LWA unreachable or erring: retry like a 5xx
                outcome, token = _Outcome(None, err.code), None
            status = outcome.status
            if status is not None and 200 <= status < 300:
                self.counters["delivered"] += 1
                if self._pending.get(key) is item:  # else a newer event waits: send it
                    del self._pending[key]
                    if item.on_delivered is not None:
                        item.on_delivered()
                retries, refreshed = 0, False
                continue
            if status == 401 and not refreshed and token is not None:
                refreshed = True
                try:
                    await self._tokens.refresh_rejected(token)
                except LinkLostError as err:
                    self._stop(StopReason.LINK_LOST, err.code)
                    return
                except TokenError as err:
                    self.last_error = f"refresh: {err.code}"
                continue
            if status == 403:
                self._stop(StopReason.SKILL_DISABLED, outcome.code or "http_403")
                return
            retryable = status is None or status == 429 or status >= 500
            if not retryable or retries + 1 >= self._retry.attempts:
                self._give_up(key, item, outcome)
                retries, refreshed = 0, False
                continue
            retries += 1
            self.counters["retried"] += 1
            delay = self._retry.delay(retries, self._rng, outcome.retry_after)
            _LOGGER.debug(
                "Alexa event %s: %s, retry %d in %.1f s",
                key,
                outcome.code or status,
                retries,
                delay,
            )
            await asyncio.sleep(delay)

    def _give_up(self, key: str, item: _Pending, outcome: _Outcome) -> None:
        self.counters["failed"] += 1
        self.last_error = f"{outcome.status}: {outcome.code}"
        _LOGGER.warning(
            "Alexa Event Gateway did not accept %s (%s %s); giving up",
            key,
            outcome.status if outcome.status is not None else "no answer",
            outcome.code or "",
        )
        if self._pending.get(key) is item:
            del self._pending[key]

    def _stop(self, reason: StopReason, code: str) -> None:
        if self._stopped is not None:
            return
        self._stopped = (reason, code)
        self.last_error = f"{reason.value}: {code}"
        _LOGGER.error("Stopped sending Alexa events: %s (%s)", reason.value, code)
        current = asyncio.current_task()
        for key, task in list(self._tasks.items()):
            if task is not current:
                task.cancel()
                del self._tasks[key]
        self._pending.clear()
        if self._on_stopped is not None:
            self._on_stopped(reason, code)

    async def _post(self, item: _Pending) -> tuple[_Outcome, str]:
        token = await self._tokens.access_token()
        url = await self._url(token)
        message = item.build(token)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with self._session.post(
                url, json=message, headers=headers, timeout=self._timeout
            ) as resp:
                if 200 <= resp.status < 300:
                    return _Outcome(resp.status), token
                code: str | None = None
                with contextlib.suppress(ValueError, aiohttp.ClientError):
                    body = await resp.content.read(_MAX_ERROR_BODY)
                    code = _gateway_code(body)
                return (
                    _Outcome(resp.status, code, _retry_after(resp.headers.get("Retry-After"))),
                    token,
                )
        except (aiohttp.ClientError, TimeoutError) as err:
            return _Outcome(None, type(err).__name__), token

    # -- region ---------------------------------------------------------------------------

    async def _url(self, token: str) -> str:
        if self._event_url is not None:
            return self._event_url
        region = self._region or self._known_region()
        if region is None:
            async with self._detect_lock:
                region = self._known_region()
                if region is None:
                    region = await self._detect_region(token)
        return self._region_urls[region]

    def _known_region(self) -> Region | None:
        tokens = self._tokens.tokens
        return (tokens.region if tokens else None) or self._fallback_region

    async def _detect_region(self, token: str) -> Region:
        """Ask Amazon which API host serves the user; remember the answer with the tokens."""
        region: Region | None = None
        try:
            async with self._session.get(
                self._lookup_url,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self._timeout,
            ) as resp:
                if resp.status == 200:
                    body = await resp.json(content_type=None)
                    region = _region_of(body)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            _LOGGER.debug("Alexa region lookup failed: %s", type(err).__name__)
        if region is None:
            _LOGGER.info(
                "Could not detect the Alexa region of the linked account; using North America "
                "(choose the region in the integration's options if events do not arrive)"
            )
            self._fallback_region = Region.NA
            return Region.NA
        _LOGGER.info("Alexa account region: %s", region.value)
        await self._tokens.set_region(region)
        return region


def _region_of(body: object) -> Region | None:
    """The region of the first host in an ``alexaApiEndpoint`` answer, if known."""
    if not isinstance(body, Mapping):
        return None
    endpoints = body.get("endpoints")
    if not isinstance(endpoints, list) or not endpoints or not isinstance(endpoints[0], str):
        return None
    value = endpoints[0]
    host = urlsplit(value if "//" in value else f"//{value}").hostname
    return _HOST_REGIONS.get(host or "")


def _gateway_code(body: bytes) -> str | None:
    """The ``payload.code`` of an Event Gateway error answer."""
    try:
        data = json.loads(body)
    except ValueError:
        return None
    payload = data.get("payload") if isinstance(data, Mapping) else None
    code = payload.get("code") if isinstance(payload, Mapping) else None
    return code if isinstance(code, str) else None
