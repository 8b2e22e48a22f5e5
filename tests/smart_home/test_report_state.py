"""Alexa.ReportState."""

from __future__ import annotations

from typing import Any

import pytest

from custom_components.alexa_cam_bridge.smart_home import EndpointUnreachableError, StreamInfo

from .backend import (
    CORRELATION_TOKEN,
    FRONT_DOOR,
    NOW_SAMPLE,
    FakeBackend,
    answer,
    error_of,
    report_state_directive,
)


def connectivity(message: dict[str, Any]) -> str:
    """Return the connectivity value of a StateReport, checking its shape."""
    event = message["event"]
    assert (event["header"]["namespace"], event["header"]["name"]) == ("Alexa", "StateReport")
    assert event["endpoint"] == {"endpointId": FRONT_DOOR.endpoint_id}
    assert event["payload"] == {}
    (prop,) = message["context"]["properties"]
    assert prop["namespace"] == "Alexa.EndpointHealth"
    assert prop["name"] == "connectivity"
    assert prop["timeOfSample"] == NOW_SAMPLE
    assert prop["uncertaintyInMilliseconds"] == 0
    value: str = prop["value"]["value"]
    return value


async def test_reachable() -> None:
    """An available camera whose stream is reachable reports OK."""
    message = await answer(report_state_directive(), FakeBackend())
    assert connectivity(message) == "OK"
    assert message["event"]["header"]["correlationToken"] == CORRELATION_TOKEN


async def test_unavailable_entity() -> None:
    """An unavailable entity reports UNREACHABLE without probing the stream."""
    backend = FakeBackend()
    backend.unavailable.add(FRONT_DOOR.endpoint_id)
    assert connectivity(await answer(report_state_directive(), backend)) == "UNREACHABLE"
    assert backend.info_calls == []


async def test_unreachable_stream() -> None:
    """An available entity whose stream is unreachable reports UNREACHABLE."""
    backend = FakeBackend()
    backend.infos[FRONT_DOOR.endpoint_id] = StreamInfo(1920, 1080, reachable=False)
    assert connectivity(await answer(report_state_directive(), backend)) == "UNREACHABLE"


@pytest.mark.parametrize("endpoint_id", ["camera#gone", "camera.front_door", "x" * 300])
async def test_unknown_endpoint(endpoint_id: str) -> None:
    """An endpoint that is not exposed is NO_SUCH_ENDPOINT; a valid id is echoed."""
    message = await answer(report_state_directive(endpoint_id), FakeBackend())
    namespace, error_type, text = error_of(message)
    assert (namespace, error_type) == ("Alexa", "NO_SUCH_ENDPOINT")
    assert "is exposed" in text
    if endpoint_id == "camera#gone":
        assert message["event"]["endpoint"] == {"endpointId": endpoint_id}
    else:
        # Not an endpointId Alexa accepts, so it cannot be echoed.
        assert "endpoint" not in message["event"]


async def test_backend_alexa_error() -> None:
    """An AlexaError from stream_info is the answer."""
    backend = FakeBackend()
    backend.info_errors[FRONT_DOOR.endpoint_id] = EndpointUnreachableError("Camera offline")
    message = await answer(report_state_directive(), backend)
    assert error_of(message) == ("Alexa", "ENDPOINT_UNREACHABLE", "Camera offline")
    assert message["event"]["endpoint"] == {"endpointId": FRONT_DOOR.endpoint_id}
