"""The Lambda against the real thing: Home Assistant's HTTP server, auth and the bridge view.

HA's test server listens on 127.0.0.1 (plain HTTP, hence ALLOW_HTTP=1); the handler runs in
HA's executor, as it would run in its own process, while HA serves on the event loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.common import MockConfigEntry, MockUser

from lambda_proxy.lambda_function import lambda_handler
from tests.alexa_schema import validate_message
from tests.lambda_proxy.conftest import FakeContext, load_sample

ClientFactory = Callable[..., Awaitable[TestClient[web.Request, web.Application]]]


@pytest.fixture
async def ha_url(
    hass: HomeAssistant,
    loaded_entry: MockConfigEntry,
    hass_client: ClientFactory,
    lambda_env: pytest.MonkeyPatch,
) -> str:
    """HA with the bridge loaded, serving on 127.0.0.1; the Lambda configured to use it."""
    client = await hass_client()
    url = str(client.make_url("/"))
    lambda_env.setenv("HA_URL", url)
    lambda_env.setenv("ALLOW_HTTP", "1")
    return url


async def _invoke(hass: HomeAssistant, event: dict[str, Any]) -> dict[str, Any]:
    answer = await hass.async_add_executor_job(lambda_handler, event, FakeContext())
    validate_message(answer)
    return answer


def _discover(token: str) -> dict[str, Any]:
    directive = load_sample("Discovery.request")
    directive["directive"]["payload"]["scope"]["token"] = token
    return directive


async def test_discover_through_home_assistant(
    hass: HomeAssistant, ha_url: str, hass_access_token: str
) -> None:
    """A valid HA token: HA's Discover.Response comes back through the Lambda."""
    answer = await _invoke(hass, _discover(hass_access_token))
    assert answer["event"]["header"]["name"] == "Discover.Response"
    (endpoint,) = answer["event"]["payload"]["endpoints"]
    assert endpoint["friendlyName"] == "front door"


async def test_rejected_token(hass: HomeAssistant, ha_url: str) -> None:
    answer = await _invoke(hass, _discover("not-a-token"))
    assert answer["event"]["payload"]["type"] == "INVALID_AUTHORIZATION_CREDENTIAL"


async def test_expired_token(hass: HomeAssistant, ha_url: str, hass_admin_user: MockUser) -> None:
    """HA answers a bare 401 for an expired access token; Alexa must hear EXPIRED_..."""
    refresh_token = await hass.auth.async_create_refresh_token(
        hass_admin_user, "https://layla.amazon.com/", access_token_expiration=timedelta(hours=-1)
    )
    expired = hass.auth.async_create_access_token(refresh_token)
    answer = await _invoke(hass, _discover(expired))
    assert answer["event"]["payload"]["type"] == "EXPIRED_AUTHORIZATION_CREDENTIAL"


async def test_camera_directive_through_home_assistant(
    hass: HomeAssistant, ha_url: str, hass_access_token: str
) -> None:
    """An endpoint directive reaches the bridge; its answer (whatever the camera's state)
    is a valid Alexa message with the directive's correlation token."""
    directive = load_sample("CameraStreamController.request")
    directive["directive"]["endpoint"]["scope"]["token"] = hass_access_token
    directive["directive"]["endpoint"]["endpointId"] = "camera#front_door"
    answer = await _invoke(hass, directive)
    header = answer["event"]["header"]
    assert header["correlationToken"] == directive["directive"]["header"]["correlationToken"]
