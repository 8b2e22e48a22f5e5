"""The HTTP view the Lambda forwards Alexa directives to."""

from __future__ import annotations

import logging
import time

from aiohttp import web
from homeassistant.config_entries import ConfigEntryState
from homeassistant.helpers.http import KEY_HASS, HomeAssistantView

from .const import API_PATH, DOMAIN, MAX_DIRECTIVE_BYTES
from .smart_home import handle_directive, unavailable_response

_LOGGER = logging.getLogger(__name__)


class AlexaSmartHomeView(HomeAssistantView):
    """POST /api/alexa_cam_bridge/smart_home: an Alexa directive in, its answer out.

    Authenticated with the HA access token from account linking (Bearer). Alexa
    expects HTTP 200 with an ErrorResponse body for every directive-level error.
    """

    url = API_PATH
    name = "api:alexa_cam_bridge:smart_home"
    requires_auth = True

    async def post(self, request: web.Request) -> web.Response:
        """Answer one directive."""
        hass = request.app[KEY_HASS]
        started = time.monotonic()
        if (request.content_length or 0) > MAX_DIRECTIVE_BYTES:
            body: bytes = b""
            too_large = True
        else:
            body = await request.read()
            too_large = len(body) > MAX_DIRECTIVE_BYTES
        entries = [
            e
            for e in hass.config_entries.async_entries(DOMAIN)
            if e.state is ConfigEntryState.LOADED
        ]
        if too_large:
            response = unavailable_response(
                b"", "INVALID_DIRECTIVE", f"directive larger than {MAX_DIRECTIVE_BYTES} bytes"
            )
        elif not entries:
            response = unavailable_response(
                body, "BRIDGE_UNREACHABLE", "Alexa Camera Bridge is not set up or not loaded"
            )
        else:
            response = await handle_directive(body, entries[0].runtime_data.backend)
        header = response.get("event", {}).get("header", {})
        _LOGGER.debug(
            "%s.%s answered in %.0f ms",
            header.get("namespace"),
            header.get("name"),
            (time.monotonic() - started) * 1000,
        )
        return self.json(response)
