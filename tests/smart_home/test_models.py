"""Endpoint id helpers and the error classes."""

from __future__ import annotations

import pytest

from custom_components.alexa_cam_bridge.smart_home import (
    AcceptGrantFailedError,
    AlexaError,
    BridgeUnreachableError,
    EndpointUnreachableError,
    InternalError,
    InvalidDirectiveError,
    InvalidValueError,
    NoSuchEndpointError,
    NotSupportedInCurrentModeError,
    is_valid_endpoint_id,
    make_endpoint_id,
)


@pytest.mark.parametrize(
    ("entity_id", "expected"),
    [
        ("camera.front_door", "camera#front_door"),
        ("camera.cam_2", "camera#cam_2"),
        ("camera.a b/c", "camera#a_b_c"),
        ("camera.gärten", "camera#g_rten"),
        ("camera.x=y:z", "camera#x=y:z"),
    ],
)
def test_make_endpoint_id(entity_id: str, expected: str) -> None:
    """Dots become '#', other characters Alexa rejects become '_'."""
    assert make_endpoint_id(entity_id) == expected
    assert is_valid_endpoint_id(expected)


def test_make_endpoint_id_long() -> None:
    """Over-long ids are cut to 256 characters and stay distinct."""
    first = make_endpoint_id("camera." + "a" * 300)
    second = make_endpoint_id("camera." + "a" * 299 + "b")
    assert len(first) == len(second) == 256
    assert first != second
    assert is_valid_endpoint_id(first)
    assert is_valid_endpoint_id(second)
    assert make_endpoint_id("camera." + "a" * 300) == first


def test_make_endpoint_id_empty() -> None:
    """An empty entity id has no endpoint id."""
    with pytest.raises(ValueError, match="must not be empty"):
        make_endpoint_id("")


@pytest.mark.parametrize(
    ("value", "valid"),
    [
        ("camera#front_door", True),
        ("endpoint-001", True),
        ("a_-=#;:?@&Z9", True),
        ("x" * 256, True),
        ("x" * 257, False),
        ("", False),
        ("camera.front_door", False),
        ("with space", False),
        ("é", False),
        (5, False),
        (None, False),
    ],
)
def test_is_valid_endpoint_id(value: object, valid: bool) -> None:
    """The schema's endpointId pattern: 1..256 of letters, digits and _-=#;:?@&."""
    assert is_valid_endpoint_id(value) is valid


@pytest.mark.parametrize(
    ("error", "error_type", "namespace"),
    [
        (InvalidDirectiveError("m"), "INVALID_DIRECTIVE", "Alexa"),
        (NoSuchEndpointError("m"), "NO_SUCH_ENDPOINT", "Alexa"),
        (EndpointUnreachableError("m"), "ENDPOINT_UNREACHABLE", "Alexa"),
        (InternalError("m"), "INTERNAL_ERROR", "Alexa"),
        (NotSupportedInCurrentModeError("m"), "NOT_SUPPORTED_IN_CURRENT_MODE", "Alexa"),
        (InvalidValueError("m"), "INVALID_VALUE", "Alexa"),
        (BridgeUnreachableError("m"), "BRIDGE_UNREACHABLE", "Alexa"),
        (AcceptGrantFailedError("m"), "ACCEPT_GRANT_FAILED", "Alexa.Authorization"),
    ],
)
def test_error_classes(error: AlexaError, error_type: str, namespace: str) -> None:
    """Each convenience class sets its type and namespace."""
    assert isinstance(error, AlexaError)
    assert (error.error_type, error.namespace, error.message, str(error)) == (
        error_type,
        namespace,
        "m",
        "m",
    )
    assert repr(error) == f"{type(error).__name__}({error_type!r}, 'm')"


def test_not_supported_in_current_mode() -> None:
    """currentDeviceMode defaults to NOT_PROVISIONED and must be a documented mode."""
    assert NotSupportedInCurrentModeError("m").payload_extra == {
        "currentDeviceMode": "NOT_PROVISIONED"
    }
    assert NotSupportedInCurrentModeError("m", "ASLEEP").payload_extra == {
        "currentDeviceMode": "ASLEEP"
    }
    with pytest.raises(ValueError, match="currentDeviceMode"):
        NotSupportedInCurrentModeError("m", "PRIVACY")


@pytest.mark.parametrize(
    ("error", "cls", "message", "extra"),
    [
        (AlexaError.invalid_directive("m"), InvalidDirectiveError, "m", {}),
        (
            AlexaError.no_such_endpoint("camera#x"),
            NoSuchEndpointError,
            "No camera with endpointId camera#x",
            {},
        ),
        (
            AlexaError.no_such_endpoint("camera#x", "removed"),
            NoSuchEndpointError,
            "No camera with endpointId camera#x: removed",
            {},
        ),
        (
            AlexaError.endpoint_unreachable("camera#x"),
            EndpointUnreachableError,
            "Camera camera#x is unreachable",
            {},
        ),
        (
            AlexaError.endpoint_unreachable("camera#x", "port closed"),
            EndpointUnreachableError,
            "Camera camera#x is unreachable: port closed",
            {},
        ),
        (AlexaError.internal_error("m"), InternalError, "m", {}),
        (
            AlexaError.not_supported_in_current_mode("m"),
            NotSupportedInCurrentModeError,
            "m",
            {"currentDeviceMode": "NOT_PROVISIONED"},
        ),
        (
            AlexaError.not_supported_in_current_mode("m", "OTHER"),
            NotSupportedInCurrentModeError,
            "m",
            {"currentDeviceMode": "OTHER"},
        ),
        (AlexaError.invalid_value("m"), InvalidValueError, "m", {}),
        (AlexaError.bridge_unreachable("m"), BridgeUnreachableError, "m", {}),
        (AlexaError.accept_grant_failed("m"), AcceptGrantFailedError, "m", {}),
    ],
)
def test_constructors(
    error: AlexaError, cls: type[AlexaError], message: str, extra: dict[str, str]
) -> None:
    """The AlexaError constructors build the matching subclass."""
    assert type(error) is cls
    assert error.message == message
    assert error.payload_extra == extra
