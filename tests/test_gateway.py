"""gateway.py against local fake LWA and Event Gateway servers: tokens, delivery, retries."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest

from custom_components.alexa_cam_bridge.gateway import (
    EventGateway,
    LinkLostError,
    LwaTokens,
    Region,
    RetryPolicy,
    StopReason,
    TokenError,
    Tokens,
)
from custom_components.alexa_cam_bridge.smart_home.messages import (
    build_change_report,
    build_doorbell_press,
    connectivity_property,
)
from tests.fake_amazon import (
    CLIENT_ID,
    CLIENT_SECRET,
    GOOD_CODE,
    REFRESH_TOKEN,
    FakeAmazon,
    serve_fake_amazon,
)

FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)


class Clock:
    """A settable Unix clock."""

    def __init__(self) -> None:
        """Start at the real time."""
        self.now = time.time()

    def __call__(self) -> float:
        """The current fake time."""
        return self.now


class Saved:
    """Records what the token manager persists."""

    def __init__(self) -> None:
        """Nothing saved yet."""
        self.history: list[Tokens | None] = []

    async def __call__(self, tokens: Tokens | None) -> None:
        """Persist (record) ``tokens``."""
        self.history.append(tokens)


@pytest.fixture
async def fake_amazon() -> AsyncIterator[FakeAmazon]:
    """Fake LWA, Event Gateway and region lookup on 127.0.0.1."""
    async with serve_fake_amazon() as fake:
        yield fake


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session (HA's shared one in production)."""
    async with aiohttp.ClientSession() as client:
        yield client


def health(endpoint_id: str = "camera#porch", reachable: bool = False) -> Callable[[str], Any]:
    """An event builder: a connectivity ChangeReport."""
    sampled = datetime.now(UTC)
    return lambda token: build_change_report(
        endpoint_id, token, [connectivity_property(reachable, sampled)], "PERIODIC_POLL"
    )


def press(endpoint_id: str = "camera#porch") -> Callable[[str], Any]:
    """An event builder: a DoorbellPress."""
    pressed = datetime.now(UTC)
    return lambda token: build_doorbell_press(endpoint_id, token, pressed)


def make(
    fake: FakeAmazon,
    session: aiohttp.ClientSession,
    *,
    tokens: Tokens | None = None,
    clock: Clock | None = None,
    region: Region | None = Region.NA,
    stops: list[tuple[StopReason, str]] | None = None,
    **kwargs: Any,
) -> tuple[LwaTokens, EventGateway, Saved]:
    """A token manager and gateway talking to the fake servers."""
    saved = Saved()
    lwa = LwaTokens(
        session,
        CLIENT_ID,
        CLIENT_SECRET,
        save=saved,
        tokens=tokens,
        token_url=fake.token_url,
        clock=clock or time.time,
    )
    gateway = EventGateway(
        session,
        lwa,
        region=region,
        region_urls={r: fake.event_url(r.value) for r in Region},
        lookup_url=fake.lookup_url,
        retry=kwargs.pop("retry", FAST),
        on_stopped=(lambda reason, code: stops.append((reason, code)))
        if stops is not None
        else None,
        **kwargs,
    )
    return lwa, gateway, saved


def linked(fake: FakeAmazon, *, expires_in: float = 3600, region: Region | None = None) -> Tokens:
    """Tokens as after an AcceptGrant, with a valid access token."""
    return Tokens(fake.issue_access_token(), REFRESH_TOKEN, time.time() + expires_in, region)


# -- tokens ---------------------------------------------------------------------------------


async def test_grant_exchange(fake_amazon: FakeAmazon, session: aiohttp.ClientSession) -> None:
    """The code is exchanged with the skill's credentials; the tokens are saved."""
    lwa, gateway, saved = make(fake_amazon, session)
    assert gateway.stats()["active"] is False
    tokens = await lwa.exchange(GOOD_CODE)
    (request,) = fake_amazon.token_requests
    assert request == {
        "grant_type": "authorization_code",
        "code": GOOD_CODE,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
    }
    assert saved.history == [tokens]
    assert tokens.refresh_token == REFRESH_TOKEN
    assert tokens.expires_at == pytest.approx(time.time() + 3600, abs=5)
    assert lwa.linked
    assert gateway.active
    assert tokens.access_token not in repr(tokens)
    assert REFRESH_TOKEN not in repr(tokens)
    assert Tokens.from_dict(tokens.as_dict()) == tokens


async def test_grant_exchange_failures(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """A bad code, bad client credentials and an unreachable LWA are TokenErrors."""
    lwa, _, saved = make(fake_amazon, session)
    with pytest.raises(TokenError) as bad_code:
        await lwa.exchange("expired-code")
    assert bad_code.value.code == "invalid_grant"
    assert "expired-code" not in str(bad_code.value)
    wrong = LwaTokens(session, CLIENT_ID, "wrong", save=saved, token_url=fake_amazon.token_url)
    with pytest.raises(TokenError) as bad_client:
        await wrong.exchange(GOOD_CODE)
    assert bad_client.value.code == "invalid_client"
    down = LwaTokens(
        session, CLIENT_ID, CLIENT_SECRET, save=saved, token_url="http://127.0.0.1:9/token"
    )
    with pytest.raises(TokenError) as unreachable:
        await down.exchange(GOOD_CODE)
    assert unreachable.value.code == "network"
    assert saved.history == []
    assert not lwa.linked


async def test_refresh_ahead_of_expiry(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """A token within the refresh margin of expiry is refreshed before sending."""
    clock = Clock()
    tokens = linked(fake_amazon)
    lwa, gateway, saved = make(fake_amazon, session, tokens=tokens, clock=clock)
    assert gateway.submit("health:a", health())
    await gateway.wait_idle()
    assert fake_amazon.token_requests == []
    clock.now = tokens.expires_at - 60  # inside the 300 s margin
    assert gateway.submit("health:a", health())
    await gateway.wait_idle()
    (refresh,) = fake_amazon.token_requests
    assert refresh["grant_type"] == "refresh_token"
    assert refresh["refresh_token"] == REFRESH_TOKEN
    first, second = fake_amazon.events
    assert first.status == second.status == 202
    assert second.authorization != first.authorization
    assert lwa.tokens is not None
    assert second.authorization == f"Bearer {lwa.tokens.access_token}"
    assert saved.history == [lwa.tokens]
    await gateway.close()


async def test_concurrent_senders_share_one_refresh(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """Ten events sent at once with an expired token cause one refresh, all succeed."""
    fake_amazon.lwa_delay = 0.2
    tokens = linked(fake_amazon, expires_in=-10)
    lwa, gateway, _ = make(fake_amazon, session, tokens=tokens, max_concurrent=10)
    for n in range(10):
        assert gateway.submit(f"health:camera{n}", health(f"camera#c{n}"))
    await gateway.wait_idle()
    assert len(fake_amazon.token_requests) == 1
    assert lwa.refreshes == 1
    assert fake_amazon.names() == ["Alexa.ChangeReport"] * 10
    assert len({event.authorization for event in fake_amazon.events}) == 1
    await gateway.close()


async def test_invalid_grant_stops_sending(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture
) -> None:
    """A refresh rejected with invalid_grant forgets the tokens and stops the gateway."""
    caplog.set_level(logging.DEBUG)
    fake_amazon.refresh_script.append((400, "invalid_grant"))
    stops: list[tuple[StopReason, str]] = []
    tokens = linked(fake_amazon, expires_in=-10)
    lwa, gateway, saved = make(fake_amazon, session, tokens=tokens, stops=stops)
    assert gateway.submit("health:a", health())
    assert gateway.submit("doorbell:a", press())
    await gateway.wait_idle()
    assert stops == [(StopReason.LINK_LOST, "invalid_grant")]
    assert saved.history == [None]
    assert not lwa.linked
    assert not gateway.active
    assert fake_amazon.events == []
    assert len(fake_amazon.token_requests) == 1  # both senders shared the failed refresh
    assert not gateway.submit("health:a", health())
    with pytest.raises(LinkLostError):
        await LwaTokens(
            session,
            CLIENT_ID,
            CLIENT_SECRET,
            save=saved,
            tokens=Tokens("x", "dead-refresh", 0),
            token_url=fake_amazon.token_url,
        ).access_token()
    # a new AcceptGrant links again and sending resumes
    await lwa.exchange(GOOD_CODE)
    gateway.resume()
    assert gateway.submit("doorbell:a", press())
    await gateway.wait_idle()
    assert fake_amazon.names() == ["Alexa.DoorbellEventSource.DoorbellPress"]
    for secret in (REFRESH_TOKEN, CLIENT_SECRET, GOOD_CODE, tokens.access_token):
        assert secret not in caplog.text
    await gateway.close()


async def test_lwa_unreachable_is_retried(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """A refresh failing with a server error is retried like a gateway 5xx."""
    fake_amazon.refresh_script.append((500, None))
    _, gateway, _ = make(fake_amazon, session, tokens=linked(fake_amazon, expires_in=-10))
    assert gateway.submit("doorbell:a", press())
    await gateway.wait_idle()
    assert len(fake_amazon.token_requests) == 2
    assert fake_amazon.names() == ["Alexa.DoorbellEventSource.DoorbellPress"]
    assert gateway.counters["retried"] == 1
    await gateway.close()


# -- delivery -------------------------------------------------------------------------------


async def test_401_refreshes_once_then_retries(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """The gateway rejects a token before its expiry: one refresh, one more try."""
    _, gateway, _ = make(fake_amazon, session, tokens=linked(fake_amazon))
    fake_amazon.expire_all()
    assert gateway.submit("doorbell:a", press())
    await gateway.wait_idle()
    assert [event.status for event in fake_amazon.events] == [401, 202]
    assert len(fake_amazon.token_requests) == 1
    # a gateway that keeps saying 401 gets one refresh, then the event is dropped
    fake_amazon.gateway_script.extend([(401, "INVALID_ACCESS_TOKEN_EXCEPTION")] * 2)
    assert gateway.submit("doorbell:a", press())
    await gateway.wait_idle()
    assert [event.status for event in fake_amazon.events] == [401, 202, 401, 401]
    assert len(fake_amazon.token_requests) == 2
    assert gateway.counters["failed"] == 1
    assert gateway.active
    await gateway.close()


@pytest.mark.parametrize("statuses", [[429, 500, 503], [500], [429]])
async def test_retry_on_429_and_5xx(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession, statuses: list[int]
) -> None:
    """Throttling and server errors are retried until the gateway accepts the event."""
    fake_amazon.gateway_script.extend((status, "SCRIPTED") for status in statuses)
    _, gateway, _ = make(fake_amazon, session, tokens=linked(fake_amazon))
    assert gateway.submit("health:a", health())
    await gateway.wait_idle()
    assert [event.status for event in fake_amazon.events] == [*statuses, 202]
    assert gateway.counters["retried"] == len(statuses)
    assert gateway.counters["delivered"] == 1
    # every try carries a fresh copy built from the same state
    bodies = {
        event.body["event"]["payload"]["change"]["cause"]["type"] for event in fake_amazon.events
    }
    assert bodies == {"PERIODIC_POLL"}
    await gateway.close()


async def test_give_up(fake_amazon: FakeAmazon, session: aiohttp.ClientSession) -> None:
    """Retries are bounded; a 4xx other than 401/403/429 is not retried at all."""
    fake_amazon.gateway_script.extend([(503, "SERVICE_UNAVAILABLE_EXCEPTION")] * 10)
    _, gateway, _ = make(fake_amazon, session, tokens=linked(fake_amazon))
    assert gateway.submit("health:a", health())
    await gateway.wait_idle()
    assert len(fake_amazon.events) == FAST.attempts
    assert gateway.counters["failed"] == 1
    fake_amazon.gateway_script.clear()
    fake_amazon.gateway_script.append((400, "INVALID_REQUEST_EXCEPTION"))
    assert gateway.submit("health:a", health())
    await gateway.wait_idle()
    assert len(fake_amazon.events) == FAST.attempts + 1
    assert gateway.counters["failed"] == 2
    assert gateway.last_error == "400: INVALID_REQUEST_EXCEPTION"
    assert gateway.active
    # an unreachable gateway is retried and then given up too
    _, dead, _ = make(
        fake_amazon, session, tokens=linked(fake_amazon), event_url="http://127.0.0.1:9/"
    )
    assert dead.submit("health:a", health())
    await dead.wait_idle()
    assert dead.counters["retried"] == FAST.attempts - 1
    assert dead.counters["failed"] == 1
    await gateway.close()
    await dead.close()


async def test_403_skill_disabled_stops(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """403 SKILL_DISABLED_EXCEPTION stops all sending and reports why, once."""
    stops: list[tuple[StopReason, str]] = []
    lwa, gateway, _ = make(fake_amazon, session, tokens=linked(fake_amazon), stops=stops)
    fake_amazon.gateway_script.append((403, "SKILL_DISABLED_EXCEPTION"))
    assert gateway.submit("health:a", health())
    await gateway.wait_idle()
    assert stops == [(StopReason.SKILL_DISABLED, "SKILL_DISABLED_EXCEPTION")]
    assert gateway.stopped == (StopReason.SKILL_DISABLED, "SKILL_DISABLED_EXCEPTION")
    assert lwa.linked
    assert not gateway.active
    assert not gateway.submit("doorbell:a", press())
    assert len(fake_amazon.events) == 1
    gateway.resume()
    assert gateway.submit("doorbell:a", press())
    await gateway.wait_idle()
    assert fake_amazon.names() == ["Alexa.DoorbellEventSource.DoorbellPress"]
    await gateway.close()


async def test_newest_state_supersedes(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """An event waiting for a retry is replaced by a newer one with the same key."""
    fake_amazon.gateway_script.append((500, "INTERNAL_SERVICE_EXCEPTION"))
    slow = RetryPolicy(attempts=3, base=0.3, cap=0.3)
    _, gateway, _ = make(fake_amazon, session, tokens=linked(fake_amazon), retry=slow)
    assert gateway.submit("health:a", health(reachable=False))
    await fake_amazon.wait_for(1)
    assert gateway.submit("health:a", health(reachable=True))
    await gateway.wait_idle()
    first, second = fake_amazon.events
    assert (first.status, second.status) == (500, 202)
    value = second.body["event"]["payload"]["change"]["properties"][0]["value"]["value"]
    assert value == "OK"
    assert gateway.counters["superseded"] == 1
    assert gateway.counters["delivered"] == 1
    await gateway.close()


async def test_bounded_queue_drops_oldest(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """With the queue full, the oldest pending event is dropped for a new one."""
    fake_amazon.gateway_script.extend([(500, "X")] * 3)
    slow = RetryPolicy(attempts=2, base=0.3, cap=0.3)
    _, gateway, _ = make(
        fake_amazon, session, tokens=linked(fake_amazon), retry=slow, max_pending=2
    )
    assert gateway.submit("health:a", health("camera#a"))
    assert gateway.submit("health:b", health("camera#b"))
    await fake_amazon.wait_for(2)
    assert gateway.submit("health:c", health("camera#c"))
    assert gateway.stats()["pending"] == ["health:b", "health:c"]
    await gateway.wait_idle()
    assert gateway.counters["dropped"] == 1
    delivered = [
        e.body["event"]["endpoint"]["endpointId"] for e in fake_amazon.events if e.status == 202
    ]
    assert sorted(delivered) == ["camera#b", "camera#c"]
    await gateway.close()


async def test_close_cancels_pending(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """close() ends every delivery (nothing lingers after an entry unloads)."""
    fake_amazon.gateway_script.append((500, "X"))
    slow = RetryPolicy(attempts=3, base=30, cap=30)
    _, gateway, _ = make(fake_amazon, session, tokens=linked(fake_amazon), retry=slow)
    assert gateway.submit("health:a", health())
    await fake_amazon.wait_for(1)
    await asyncio.wait_for(gateway.close(), 1)
    assert not gateway.active
    assert gateway.stats()["pending"] == []
    assert not gateway.submit("health:a", health())


# -- region ---------------------------------------------------------------------------------


async def test_region_detected_once_and_kept(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """Without a region option the user's region is looked up once and saved."""
    lwa, gateway, saved = make(fake_amazon, session, tokens=linked(fake_amazon), region=None)
    for _ in range(2):
        assert gateway.submit("doorbell:a", press())
        await gateway.wait_idle()
    assert [event.region for event in fake_amazon.events] == ["eu", "eu"]
    assert len(fake_amazon.lookups) == 1
    assert fake_amazon.lookups[0].startswith("Bearer Atza|")
    assert lwa.tokens is not None
    assert lwa.tokens.region is Region.EU
    assert saved.history[-1] is not None
    assert saved.history[-1].region is Region.EU
    assert gateway.stats()["region"] == Region.EU
    await gateway.close()


@pytest.mark.parametrize("answer", [None, "api.example.com", "https://api.fe.amazonalexa.com"])
async def test_region_lookup_answers(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession, answer: str | None
) -> None:
    """A failed or unknown lookup falls back to North America (not saved); a URL works."""
    fake_amazon.lookup_host = answer
    lwa, gateway, _ = make(fake_amazon, session, tokens=linked(fake_amazon), region=None)
    assert gateway.submit("doorbell:a", press())
    await gateway.wait_idle()
    expected = "fe" if answer and "fe." in answer else "na"
    assert [event.region for event in fake_amazon.events] == [expected]
    assert lwa.tokens is not None
    assert lwa.tokens.region is (Region.FE if expected == "fe" else None)
    await gateway.close()


async def test_region_option_and_custom_url(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """A configured region or gateway URL is used without any lookup."""
    _, by_region, _ = make(fake_amazon, session, tokens=linked(fake_amazon), region=Region.FE)
    assert by_region.submit("doorbell:a", press())
    await by_region.wait_idle()
    _, by_url, _ = make(
        fake_amazon, session, tokens=linked(fake_amazon), event_url=fake_amazon.event_url("eu")
    )
    assert by_url.submit("doorbell:a", press())
    await by_url.wait_idle()
    assert [event.region for event in fake_amazon.events] == ["fe", "eu"]
    assert fake_amazon.lookups == []
    assert by_url.stats()["region"] == "custom"
    await by_region.close()
    await by_url.close()


def test_tokens_from_storage() -> None:
    """Stored tokens are read back; malformed data is ignored."""
    tokens = Tokens("a", "r", 123.0, Region.EU)
    assert Tokens.from_dict(tokens.as_dict()) == tokens
    assert Tokens.from_dict({**tokens.as_dict(), "region": "XX"}) == Tokens("a", "r", 123.0)
    assert Tokens.from_dict({}) is None
    assert Tokens.from_dict({"access_token": "a", "refresh_token": "r"}) is None
    assert Tokens.from_dict({"access_token": "", "refresh_token": "r", "expires_at": 1}) is None


def test_retry_policy_backoff_with_jitter() -> None:
    """Waits double up to the cap, with jitter in the upper half; Retry-After is honoured."""
    policy = RetryPolicy(attempts=6, base=1, cap=8)
    rng = random.Random(1)
    for retry, ceiling in ((1, 1), (2, 2), (3, 4), (4, 8), (5, 8)):
        waits = [policy.delay(retry, rng) for _ in range(50)]
        assert all(ceiling / 2 <= wait <= ceiling for wait in waits)
        assert len(set(waits)) > 1
    assert policy.delay(1, rng, retry_after=5) == 5
    assert policy.delay(1, rng, retry_after=500) == 8


async def test_keep_token_fresh(fake_amazon: FakeAmazon, session: aiohttp.ClientSession) -> None:
    """The periodic check refreshes a token that is due, and stops on a dead link."""
    clock = Clock()
    tokens = linked(fake_amazon)
    stops: list[tuple[StopReason, str]] = []
    lwa, gateway, _ = make(fake_amazon, session, tokens=tokens, clock=clock, stops=stops)
    await gateway.keep_token_fresh()
    assert fake_amazon.token_requests == []
    clock.now = tokens.expires_at - 100
    await gateway.keep_token_fresh()
    assert len(fake_amazon.token_requests) == 1
    assert lwa.tokens is not None
    assert lwa.tokens.access_token != tokens.access_token
    fake_amazon.refresh_script.append((503, None))  # transient: tried again next time
    clock.now = lwa.tokens.expires_at - 100
    await gateway.keep_token_fresh()
    assert gateway.active
    assert gateway.last_error == "refresh: server_error"
    fake_amazon.refresh_script.append((400, "invalid_grant"))
    await gateway.keep_token_fresh()
    assert stops == [(StopReason.LINK_LOST, "invalid_grant")]
    await gateway.close()


async def test_grant_exchange_times_out(
    fake_amazon: FakeAmazon, session: aiohttp.ClientSession
) -> None:
    """A slow LWA fails the exchange in time for Alexa's AcceptGrant deadline."""
    fake_amazon.lwa_delay = 2.0
    saved = Saved()
    lwa = LwaTokens(
        session, CLIENT_ID, CLIENT_SECRET, save=saved, token_url=fake_amazon.token_url, timeout=0.2
    )
    with pytest.raises(TokenError) as slow:
        await lwa.exchange(GOOD_CODE)
    assert slow.value.code == "network"  # LWA would have answered 200 after 2 s
    assert not lwa.linked
