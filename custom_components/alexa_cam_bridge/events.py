"""Home Assistant's side of proactive Alexa events.

:class:`AlexaEvents` wires the HA-free :mod:`.gateway` into one config entry: tokens in HA
storage, the AcceptGrant exchange, repair issues when sending stops, and the listeners
that produce events:

- camera availability (HA state) and stream reachability (probes) -> ``Alexa.ChangeReport``
  of ``Alexa.EndpointHealth.connectivity``, once the value has settled for
  ``CHANGE_REPORT_DEBOUNCE_SECONDS`` and only when it differs from the last report;
- a linked doorbell trigger (``binary_sensor`` off -> on, or an ``event`` entity firing)
  -> ``Alexa.DoorbellEventSource.DoorbellPress`` at once, and the camera's upstream is
  started so the Echo's popup opens quickly;
- the exposed camera set, names or doorbell links differing from what Alexa was last
  told (checked at every set-up, which an options change triggers) ->
  ``Alexa.Discovery.AddOrUpdateReport`` / ``DeleteReport``.

Nothing here runs inside directive handling except the AcceptGrant token exchange.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import (
    CALLBACK_TYPE,
    Event,
    EventStateChangedData,
    HomeAssistant,
    State,
    callback,
)
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.event import (
    async_call_later,
    async_track_state_change_event,
    async_track_time_interval,
)
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .bridge import CAUSE_PERIODIC_POLL, HaBackend, doorbell_links
from .const import (
    CHANGE_REPORT_DEBOUNCE_SECONDS,
    CONF_EVENT_GATEWAY_URL,
    CONF_EVENTS_REGION,
    CONF_LWA_CLIENT_ID,
    CONF_LWA_CLIENT_SECRET,
    CONF_LWA_TOKEN_URL,
    DOMAIN,
    ISSUE_EVENTS_CLIENT_REJECTED,
    ISSUE_EVENTS_RELINK,
    ISSUE_EVENTS_SKILL_DISABLED,
    PROBE_CACHE_SECONDS,
)
from .gateway import (
    LWA_TOKEN_URL,
    EventBuilder,
    EventGateway,
    LwaTokens,
    Region,
    StopReason,
    TokenError,
    Tokens,
)
from .smart_home import AcceptGrantFailedError, make_endpoint_id
from .smart_home.discovery import discover
from .smart_home.messages import (
    build_add_or_update_report,
    build_change_report,
    build_delete_report,
    build_doorbell_press,
    connectivity_property,
)

_LOGGER = logging.getLogger(__name__)

STORAGE_KEY: Final = f"{DOMAIN}.events"
STORAGE_VERSION: Final = 1
#: How often the access token's expiry is checked (it is refreshed 300 s before it ends).
TOKEN_CHECK_SECONDS: Final = 120
_CLIENT_CODES: Final = frozenset({"invalid_client", "unauthorized_client"})
_OFF_STATES: Final = frozenset({STATE_UNAVAILABLE, STATE_UNKNOWN})


def is_doorbell_press(entity_id: str, old: State | None, new: State | None) -> bool:
    """Whether a state change of a doorbell trigger is a press.

    A ``binary_sensor`` turning from ``off`` to ``on``; an ``event`` entity whose state
    (the time of its last event) changes to a new time, not when it is first added or
    comes back from ``unavailable`` (that is a restored state, not a press).
    """
    if new is None or old is None:
        return False
    if entity_id.startswith("binary_sensor."):
        return old.state == "off" and new.state == "on"
    if entity_id.startswith("event."):
        return new.state not in _OFF_STATES and old.state not in (STATE_UNAVAILABLE, new.state)
    return False


def _doorbell_press(endpoint_id: str, pressed_at: datetime) -> EventBuilder:
    return lambda token: build_doorbell_press(endpoint_id, token, pressed_at)


def _region_option(value: object) -> Region | None:
    return Region(value) if isinstance(value, str) and value in Region.__members__ else None


class AlexaEvents:
    """Proactive Alexa events for one loaded config entry."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry, backend: HaBackend) -> None:
        """Bind to the entry's options and backend; :meth:`async_start` does the work."""
        self._hass = hass
        self._entry = entry
        self._backend = backend
        options: Mapping[str, Any] = entry.options
        self._client_id = str(options.get(CONF_LWA_CLIENT_ID) or "").strip()
        self._client_secret = str(options.get(CONF_LWA_CLIENT_SECRET) or "").strip()
        self._region = _region_option(options.get(CONF_EVENTS_REGION))
        self._event_url = str(options.get(CONF_EVENT_GATEWAY_URL) or "").strip() or None
        self._token_url = str(options.get(CONF_LWA_TOKEN_URL) or "").strip() or LWA_TOKEN_URL
        self._doorbells = doorbell_links(options)
        self._store: Store[dict[str, Any]] = Store(hass, STORAGE_VERSION, STORAGE_KEY, private=True)
        self._data: dict[str, Any] = {}
        self._lwa: LwaTokens | None = None
        self._gateway: EventGateway | None = None
        self._unsubs: list[CALLBACK_TYPE] = []
        self._debounce: dict[str, CALLBACK_TYPE] = {}
        self._causes: dict[str, str] = {}
        self._reported_health: dict[str, bool] = {}
        self._saves: set[asyncio.Task[None]] = set()

    @property
    def configured(self) -> bool:
        """Whether the skill's LWA client id and secret are set."""
        return bool(self._client_id and self._client_secret)

    @property
    def gateway(self) -> EventGateway | None:
        """The gateway (None when events are not configured)."""
        return self._gateway

    # -- lifecycle ------------------------------------------------------------------------

    async def async_start(self) -> None:
        """Load tokens, start listening; report endpoint changes in the background."""
        if not self.configured:
            return
        self._data = dict(await self._store.async_load() or {})
        session = async_get_clientsession(self._hass)
        self._lwa = LwaTokens(
            session,
            self._client_id,
            self._client_secret,
            save=self._save_tokens,
            tokens=Tokens.from_dict(self._data.get("tokens") or {}),
            token_url=self._token_url,
        )
        self._gateway = EventGateway(
            session,
            self._lwa,
            event_url=self._event_url,
            region=self._region,
            on_stopped=self._stopped,
        )
        # The credentials may have been corrected since they were rejected: try again.
        ir.async_delete_issue(self._hass, DOMAIN, ISSUE_EVENTS_CLIENT_REJECTED)
        self._backend.grant_exchanger = self.accept_grant
        self._backend.reachability_listener = self._probe_finished
        cameras = [endpoint.entity_id for endpoint in self._backend.endpoints()]
        for endpoint in self._backend.endpoints():
            self._reported_health[endpoint.endpoint_id] = self._connectivity(endpoint.endpoint_id)
        self._unsubs.append(
            async_track_state_change_event(self._hass, cameras, self._camera_changed)
        )
        # Probes are cached: re-probing when they are due finds streams that went away.
        self._unsubs.append(
            async_track_time_interval(
                self._hass, self._poll, timedelta(seconds=PROBE_CACHE_SECONDS)
            )
        )
        # A fresh token before a doorbell rings: the press then never waits for LWA.
        self._unsubs.append(
            async_track_time_interval(
                self._hass, self._refresh_token, timedelta(seconds=TOKEN_CHECK_SECONDS)
            )
        )
        if self._doorbells:
            self._unsubs.append(
                async_track_state_change_event(
                    self._hass, sorted(set(self._doorbells.values())), self._trigger_changed
                )
            )
        if self._gateway.active:
            self._entry.async_create_background_task(
                self._hass, self._sync_endpoints(), f"{DOMAIN} endpoint sync"
            )

    async def async_stop(self) -> None:
        """Stop listening, drop pending events and timers, finish storage writes."""
        for unsub in self._unsubs:
            unsub()
        self._unsubs.clear()
        for cancel in self._debounce.values():
            cancel()
        self._debounce.clear()
        self._backend.reachability_listener = None
        self._backend.grant_exchanger = None
        if self._gateway is not None:
            await self._gateway.close()
        if self._saves:
            await asyncio.gather(*self._saves, return_exceptions=True)

    def diagnostics(self) -> dict[str, Any]:
        """State for diagnostics: no tokens, no credentials."""
        return {
            "configured": self.configured,
            "linked": self._lwa.linked if self._lwa else False,
            "region_option": self._region.value if self._region else "auto",
            "doorbells": len(self._doorbells),
            "reported_endpoints": len(self._data.get("reported") or {}),
            "gateway": self._gateway.stats() if self._gateway else None,
        }

    # -- tokens ---------------------------------------------------------------------------

    async def accept_grant(self, code: str) -> None:
        """Exchange an AcceptGrant code; raise ACCEPT_GRANT_FAILED when that fails."""
        if self._lwa is None or self._gateway is None:
            raise AcceptGrantFailedError("Alexa events are not configured")
        try:
            await self._lwa.exchange(code)
        except TokenError as err:
            _LOGGER.warning("Linking Alexa events failed: %s", err)
            if err.code in _CLIENT_CODES:
                raise AcceptGrantFailedError(
                    "Login with Amazon rejected the skill's client id or secret"
                ) from None
            raise AcceptGrantFailedError(
                f"Token exchange with Login with Amazon failed ({err.code})"
            ) from None
        _LOGGER.info("Alexa account linked; proactive events are on")
        self._gateway.resume()
        for issue in (
            ISSUE_EVENTS_RELINK,
            ISSUE_EVENTS_SKILL_DISABLED,
            ISSUE_EVENTS_CLIENT_REJECTED,
        ):
            ir.async_delete_issue(self._hass, DOMAIN, issue)
        # Alexa discovers the endpoints itself right after linking.
        self._data["reported"] = self._fingerprint()
        await self._store.async_save(self._data)

    async def _save_tokens(self, tokens: Tokens | None) -> None:
        self._data["tokens"] = tokens.as_dict() if tokens is not None else None
        await self._store.async_save(self._data)

    @callback
    def _stopped(self, reason: StopReason, code: str) -> None:
        if reason is StopReason.SKILL_DISABLED:
            issue, placeholders = ISSUE_EVENTS_SKILL_DISABLED, {"code": code}
        elif code in _CLIENT_CODES:
            issue, placeholders = ISSUE_EVENTS_CLIENT_REJECTED, {"code": code}
        else:
            issue, placeholders = ISSUE_EVENTS_RELINK, {"code": code}
        ir.async_create_issue(
            self._hass,
            DOMAIN,
            issue,
            is_fixable=False,
            severity=ir.IssueSeverity.ERROR,
            translation_key=issue,
            translation_placeholders=placeholders,
        )

    def _background_save(self) -> None:
        task = self._hass.async_create_task(
            self._store.async_save(self._data), f"{DOMAIN} save events", eager_start=True
        )
        if not task.done():
            self._saves.add(task)
            task.add_done_callback(self._saves.discard)

    # -- connectivity ---------------------------------------------------------------------

    def _connectivity(self, endpoint_id: str) -> bool:
        return self._backend.is_available(endpoint_id) and self._backend.probed_reachable(
            endpoint_id
        )

    @callback
    def _refresh_token(self, _now: datetime) -> None:
        if self._gateway is not None and self._gateway.active:
            self._entry.async_create_background_task(
                self._hass, self._gateway.keep_token_fresh(), f"{DOMAIN} token refresh"
            )

    @callback
    def _poll(self, _now: datetime) -> None:
        self._entry.async_create_background_task(
            self._hass, self._backend.refresh_all(), f"{DOMAIN} periodic probe"
        )

    @callback
    def _camera_changed(self, event: Event[EventStateChangedData]) -> None:
        self._health_changed(make_endpoint_id(event.data["entity_id"]), CAUSE_PERIODIC_POLL)

    @callback
    def _probe_finished(self, entity_id: str, reachable: bool, cause: str) -> None:
        del reachable  # read again when the change has settled
        self._health_changed(make_endpoint_id(entity_id), cause)

    @callback
    def _health_changed(self, endpoint_id: str, cause: str) -> None:
        """Note a possible change; report it once it has settled (debounce)."""
        if endpoint_id not in self._reported_health:
            return
        self._causes[endpoint_id] = cause
        if endpoint_id in self._debounce:
            return
        if self._connectivity(endpoint_id) == self._reported_health[endpoint_id]:
            return
        self._debounce[endpoint_id] = async_call_later(
            self._hass,
            timedelta(seconds=CHANGE_REPORT_DEBOUNCE_SECONDS),
            partial(self._health_settled, endpoint_id),
        )

    @callback
    def _health_settled(self, endpoint_id: str, _now: datetime) -> None:
        self._debounce.pop(endpoint_id, None)
        reachable = self._connectivity(endpoint_id)
        if reachable == self._reported_health.get(endpoint_id):
            return  # it flapped back
        cause = self._causes.get(endpoint_id, CAUSE_PERIODIC_POLL)
        sampled_at = dt_util.utcnow()
        if self._gateway is not None and self._gateway.submit(
            f"health:{endpoint_id}",
            lambda token: build_change_report(
                endpoint_id, token, [connectivity_property(reachable, sampled_at)], cause
            ),
        ):
            self._reported_health[endpoint_id] = reachable
            _LOGGER.debug(
                "ChangeReport %s connectivity %s (%s)",
                endpoint_id,
                "OK" if reachable else "UNREACHABLE",
                cause,
            )

    # -- doorbells ------------------------------------------------------------------------

    @callback
    def _trigger_changed(self, event: Event[EventStateChangedData]) -> None:
        trigger = event.data["entity_id"]
        if not is_doorbell_press(trigger, event.data["old_state"], event.data["new_state"]):
            return
        pressed_at = dt_util.utcnow()
        for camera, linked in self._doorbells.items():
            if linked != trigger:
                continue
            endpoint_id = make_endpoint_id(camera)
            self._backend.warm_up(camera)
            if self._gateway is not None:
                self._gateway.submit(
                    f"doorbell:{endpoint_id}",
                    _doorbell_press(endpoint_id, pressed_at),
                )
            _LOGGER.debug("Doorbell %s pressed: %s", trigger, camera)

    # -- discovery ------------------------------------------------------------------------

    def _fingerprint(self) -> dict[str, dict[str, Any]]:
        """What Alexa must know again when it changes: each endpoint's name and kind."""
        return {
            endpoint.endpoint_id: {"name": endpoint.friendly_name, "doorbell": endpoint.doorbell}
            for endpoint in self._backend.endpoints()
        }

    async def _sync_endpoints(self) -> None:
        """Tell Alexa about cameras added, renamed, re-linked or removed since last time."""
        current = self._fingerprint()
        reported: dict[str, Any] | None = self._data.get("reported")
        if reported is None:  # linked before this feature: assume Alexa knows these
            self._data["reported"] = current
            await self._store.async_save(self._data)
            return
        changed = [eid for eid, mark in current.items() if reported.get(eid) != mark]
        removed = [eid for eid in reported if eid not in current]
        if changed and self._gateway is not None:
            descriptions = [
                description
                for description in await discover(self._backend)
                if description["endpointId"] in changed
            ]
            if descriptions:
                self._gateway.submit(
                    "discovery:add_or_update",
                    lambda token: build_add_or_update_report(descriptions, token),
                    on_delivered=partial(
                        self._mark_reported, {eid: current[eid] for eid in changed}, ()
                    ),
                )
        if removed and self._gateway is not None:
            self._gateway.submit(
                "discovery:delete",
                lambda token: build_delete_report(removed, token),
                on_delivered=partial(self._mark_reported, {}, tuple(removed)),
            )

    @callback
    def _mark_reported(self, updated: dict[str, Any], removed: tuple[str, ...]) -> None:
        reported = dict(self._data.get("reported") or {})
        reported.update(updated)
        for endpoint_id in removed:
            reported.pop(endpoint_id, None)
        self._data["reported"] = reported
        self._background_save()
