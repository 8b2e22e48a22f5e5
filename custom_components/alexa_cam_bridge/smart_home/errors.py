"""Errors that become Alexa ``ErrorResponse`` messages.

A :class:`SmartHomeBackend <.models.SmartHomeBackend>` raises :class:`AlexaError` (or one of
the convenience subclasses below) to make :func:`handle_directive <.handler.handle_directive>`
answer with that error. Anything else a backend raises is answered with ``INTERNAL_ERROR``.

Error types and their extra payload fields are the ones Amazon's message schema accepts;
an error whose type or extras the schema would reject is answered as ``INTERNAL_ERROR``
(see :func:`.messages.error_payload`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

NAMESPACE_ALEXA: Final = "Alexa"
NAMESPACE_AUTHORIZATION: Final = "Alexa.Authorization"

INVALID_DIRECTIVE: Final = "INVALID_DIRECTIVE"
NO_SUCH_ENDPOINT: Final = "NO_SUCH_ENDPOINT"
ENDPOINT_UNREACHABLE: Final = "ENDPOINT_UNREACHABLE"
INTERNAL_ERROR: Final = "INTERNAL_ERROR"
NOT_SUPPORTED_IN_CURRENT_MODE: Final = "NOT_SUPPORTED_IN_CURRENT_MODE"
INVALID_VALUE: Final = "INVALID_VALUE"
BRIDGE_UNREACHABLE: Final = "BRIDGE_UNREACHABLE"
ACCEPT_GRANT_FAILED: Final = "ACCEPT_GRANT_FAILED"

#: ``currentDeviceMode`` values the schema accepts for NOT_SUPPORTED_IN_CURRENT_MODE.
DEVICE_MODES: Final = frozenset({"COLOR", "ASLEEP", "NOT_PROVISIONED", "OTHER"})


class AlexaError(Exception):
    """An error to report to Alexa as an ``ErrorResponse``.

    ``error_type`` is the payload ``type`` (e.g. ``ENDPOINT_UNREACHABLE``), ``message`` a
    human-readable explanation (it goes to Alexa and into logs: never put secrets in it),
    ``payload_extra`` extra payload fields some types take (``currentDeviceMode``,
    ``validRange``, ...), ``namespace`` the ErrorResponse namespace: ``Alexa`` for every
    type except ``ACCEPT_GRANT_FAILED``, which is ``Alexa.Authorization``.
    """

    def __init__(
        self,
        error_type: str,
        message: str,
        *,
        payload_extra: Mapping[str, Any] | None = None,
        namespace: str = NAMESPACE_ALEXA,
    ) -> None:
        """Create an error of ``error_type`` with ``message``."""
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.payload_extra: dict[str, Any] = dict(payload_extra or {})
        self.namespace = namespace

    def __repr__(self) -> str:
        """Show the type and message (never anything else)."""
        return f"{type(self).__name__}({self.error_type!r}, {self.message!r})"

    # Constructors, equivalent to the subclasses below.

    @classmethod
    def invalid_directive(cls, message: str) -> AlexaError:
        """Return an ``INVALID_DIRECTIVE`` error."""
        return InvalidDirectiveError(message)

    @classmethod
    def no_such_endpoint(cls, endpoint_id: str, detail: str | None = None) -> AlexaError:
        """Return a ``NO_SUCH_ENDPOINT`` error about ``endpoint_id``."""
        return NoSuchEndpointError(_about(f"No camera with endpointId {endpoint_id}", detail))

    @classmethod
    def endpoint_unreachable(cls, endpoint_id: str, detail: str | None = None) -> AlexaError:
        """Return an ``ENDPOINT_UNREACHABLE`` error about ``endpoint_id``."""
        return EndpointUnreachableError(_about(f"Camera {endpoint_id} is unreachable", detail))

    @classmethod
    def internal_error(cls, message: str) -> AlexaError:
        """Return an ``INTERNAL_ERROR`` error."""
        return InternalError(message)

    @classmethod
    def not_supported_in_current_mode(
        cls, message: str, current_mode: str = "NOT_PROVISIONED"
    ) -> AlexaError:
        """Return a ``NOT_SUPPORTED_IN_CURRENT_MODE`` error with ``currentDeviceMode``."""
        return NotSupportedInCurrentModeError(message, current_mode)

    @classmethod
    def invalid_value(cls, message: str) -> AlexaError:
        """Return an ``INVALID_VALUE`` error."""
        return InvalidValueError(message)

    @classmethod
    def bridge_unreachable(cls, message: str) -> AlexaError:
        """Return a ``BRIDGE_UNREACHABLE`` error."""
        return BridgeUnreachableError(message)

    @classmethod
    def accept_grant_failed(cls, message: str) -> AlexaError:
        """Return an ``Alexa.Authorization`` ``ACCEPT_GRANT_FAILED`` error."""
        return AcceptGrantFailedError(message)


def _about(subject: str, detail: str | None) -> str:
    return f"{subject}: {detail}" if detail else subject


class InvalidDirectiveError(AlexaError):
    """The directive is malformed or not supported (``INVALID_DIRECTIVE``)."""

    def __init__(self, message: str) -> None:
        """Create the error with ``message`` saying what was wrong."""
        super().__init__(INVALID_DIRECTIVE, message)


class NoSuchEndpointError(AlexaError):
    """The endpoint is not (or no longer) exposed (``NO_SUCH_ENDPOINT``)."""

    def __init__(self, message: str) -> None:
        """Create the error with ``message``."""
        super().__init__(NO_SUCH_ENDPOINT, message)


class EndpointUnreachableError(AlexaError):
    """The camera is offline or unavailable (``ENDPOINT_UNREACHABLE``)."""

    def __init__(self, message: str) -> None:
        """Create the error with ``message``."""
        super().__init__(ENDPOINT_UNREACHABLE, message)


class InternalError(AlexaError):
    """An unexpected failure in the bridge (``INTERNAL_ERROR``)."""

    def __init__(self, message: str) -> None:
        """Create the error with ``message``."""
        super().__init__(INTERNAL_ERROR, message)


class NotSupportedInCurrentModeError(AlexaError):
    """The camera cannot do this in its current mode (``NOT_SUPPORTED_IN_CURRENT_MODE``).

    ``current_mode`` is the payload's ``currentDeviceMode``: one of ``COLOR``, ``ASLEEP``,
    ``NOT_PROVISIONED`` or ``OTHER``.
    """

    def __init__(self, message: str, current_mode: str = "NOT_PROVISIONED") -> None:
        """Create the error with ``message`` and ``currentDeviceMode`` ``current_mode``."""
        if current_mode not in DEVICE_MODES:
            raise ValueError(f"currentDeviceMode must be one of {sorted(DEVICE_MODES)}")
        super().__init__(
            NOT_SUPPORTED_IN_CURRENT_MODE,
            message,
            payload_extra={"currentDeviceMode": current_mode},
        )


class InvalidValueError(AlexaError):
    """A value in the directive is not valid for the endpoint (``INVALID_VALUE``)."""

    def __init__(self, message: str) -> None:
        """Create the error with ``message``."""
        super().__init__(INVALID_VALUE, message)


class BridgeUnreachableError(AlexaError):
    """The bridge itself (HA, the restreamer) cannot be reached (``BRIDGE_UNREACHABLE``)."""

    def __init__(self, message: str) -> None:
        """Create the error with ``message``."""
        super().__init__(BRIDGE_UNREACHABLE, message)


class AcceptGrantFailedError(AlexaError):
    """Handling ``Alexa.Authorization.AcceptGrant`` failed (``ACCEPT_GRANT_FAILED``)."""

    def __init__(self, message: str) -> None:
        """Create the error with ``message``."""
        super().__init__(ACCEPT_GRANT_FAILED, message, namespace=NAMESPACE_AUTHORIZATION)
