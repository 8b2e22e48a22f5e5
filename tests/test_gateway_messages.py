"""The event builders of smart_home/messages.py, validated against Amazon's schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import jsonschema
import pytest

from custom_components.alexa_cam_bridge.smart_home import CameraEndpoint, StreamInfo
from custom_components.alexa_cam_bridge.smart_home.discovery import endpoint_description
from custom_components.alexa_cam_bridge.smart_home.messages import (
    build_add_or_update_report,
    build_change_report,
    build_delete_report,
    build_doorbell_press,
    connectivity_property,
    format_event_timestamp,
)
from tests.alexa_schema import validate_message
from tests.fake_amazon import DELETE_REPORT_SCHEMA, validate_event

TOKEN = "Atza|event-token"
MOMENT = datetime(2026, 11, 21, 8, 30, 5, 987654, tzinfo=UTC)


def _door(doorbell: bool = True) -> CameraEndpoint:
    return CameraEndpoint(
        endpoint_id="camera#front_door",
        friendly_name="front door",
        description="front door via Home Assistant",
        manufacturer="Alexa Camera Bridge",
        entity_id="camera.front_door",
        doorbell=doorbell,
    )


@pytest.mark.parametrize("reachable", [True, False])
@pytest.mark.parametrize("cause", ["PERIODIC_POLL", "APP_INTERACTION"])
def test_change_report(reachable: bool, cause: str) -> None:
    """A connectivity ChangeReport carries the endpoint, its scope and the cause."""
    message = build_change_report(
        "camera#porch", TOKEN, [connectivity_property(reachable, MOMENT)], cause
    )
    validate_message(message)
    event = message["event"]
    assert event["header"]["namespace"] == "Alexa"
    assert event["header"]["name"] == "ChangeReport"
    assert event["endpoint"] == {
        "scope": {"type": "BearerToken", "token": TOKEN},
        "endpointId": "camera#porch",
    }
    change = event["payload"]["change"]
    assert change["cause"] == {"type": cause}
    (prop,) = change["properties"]
    assert prop["value"] == {"value": "OK" if reachable else "UNREACHABLE"}
    assert prop["timeOfSample"] == "2026-11-21T08:30:05.987Z"


def test_doorbell_press() -> None:
    """DoorbellPress: PHYSICAL_INTERACTION and a UTC timestamp without milliseconds."""
    message = build_doorbell_press("camera#front_door", TOKEN, MOMENT)
    validate_message(message)
    event = message["event"]
    assert event["header"]["namespace"] == "Alexa.DoorbellEventSource"
    assert event["header"]["name"] == "DoorbellPress"
    assert event["endpoint"]["scope"]["token"] == TOKEN
    assert event["payload"] == {
        "cause": {"type": "PHYSICAL_INTERACTION"},
        "timestamp": "2026-11-21T08:30:05Z",
    }
    # Amazon's schema refuses milliseconds in this timestamp
    with_ms = {**message, "event": {**event, "payload": {**event["payload"]}}}
    with_ms["event"]["payload"]["timestamp"] = "2026-11-21T08:30:05.987Z"
    with pytest.raises(AssertionError, match="timestamp"):
        validate_message(with_ms)


def test_event_timestamp_is_utc() -> None:
    """Aware times are converted to UTC; naive ones are taken as UTC."""
    local = MOMENT.astimezone(timezone(timedelta(hours=-8)))
    assert format_event_timestamp(local) == "2026-11-21T08:30:05Z"
    assert format_event_timestamp(MOMENT.replace(tzinfo=None)) == "2026-11-21T08:30:05Z"


@pytest.mark.parametrize("h264", [True, False])
def test_add_or_update_report(h264: bool) -> None:
    """AddOrUpdateReport reuses the Discover.Response endpoint and carries the scope."""
    description = endpoint_description(_door(), StreamInfo(1920, 1080, h264=h264))
    message = build_add_or_update_report([description], TOKEN)
    validate_message(message)
    payload = message["event"]["payload"]
    assert payload["scope"] == {"type": "BearerToken", "token": TOKEN}
    (endpoint,) = payload["endpoints"]
    assert endpoint["displayCategories"] == ["CAMERA", "DOORBELL"]
    interfaces = [c["interface"] for c in endpoint["capabilities"]]
    assert "Alexa.DoorbellEventSource" in interfaces
    assert ("Alexa.CameraStreamController" in interfaces) is h264


def test_delete_report() -> None:
    """DeleteReport lists the endpoint ids and the scope (Amazon's documented shape)."""
    message = build_delete_report(["camera#a", "camera#b"], TOKEN)
    validate_event(message)
    assert message["event"]["header"]["namespace"] == "Alexa.Discovery"
    assert message["event"]["payload"]["endpoints"] == [
        {"endpointId": "camera#a"},
        {"endpointId": "camera#b"},
    ]
    broken = build_delete_report([], TOKEN)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft4Validator(DELETE_REPORT_SCHEMA).validate(broken)
