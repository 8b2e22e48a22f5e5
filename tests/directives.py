"""Alexa directives as the Lambda forwards them (shapes from Amazon's samples)."""

from __future__ import annotations

import uuid
from typing import Any

TOKEN = "access-token-from-skill"


def directive(
    namespace: str,
    name: str,
    *,
    endpoint_id: str | None = None,
    payload: dict[str, Any] | None = None,
    correlation: bool = True,
) -> dict[str, Any]:
    """A v3 directive; Discover carries its scope in the payload, others on the endpoint."""
    header: dict[str, Any] = {
        "namespace": namespace,
        "name": name,
        "payloadVersion": "3",
        "messageId": str(uuid.uuid4()),
    }
    if correlation:
        header["correlationToken"] = "dFMb0z+PgpgdDmluhJ1LddFvSqZ/jCc8ptlAKulUj90jSqg=="
    body: dict[str, Any] = {"header": header, "payload": payload or {}}
    if endpoint_id is not None:
        body["endpoint"] = {
            "scope": {"type": "BearerToken", "token": TOKEN},
            "endpointId": endpoint_id,
            "cookie": {},
        }
    return {"directive": body}


def discover() -> dict[str, Any]:
    """Alexa.Discovery.Discover."""
    return directive(
        "Alexa.Discovery",
        "Discover",
        payload={"scope": {"type": "BearerToken", "token": TOKEN}},
        correlation=False,
    )


def report_state(endpoint_id: str) -> dict[str, Any]:
    """Alexa.ReportState."""
    return directive("Alexa", "ReportState", endpoint_id=endpoint_id)


def initialize_streams(endpoint_id: str, auth: str = "BASIC") -> dict[str, Any]:
    """Alexa.CameraStreamController.InitializeCameraStreams with the usual preferences."""
    return directive(
        "Alexa.CameraStreamController",
        "InitializeCameraStreams",
        endpoint_id=endpoint_id,
        payload={
            "cameraStreams": [
                {
                    "protocol": "RTSP",
                    "resolution": {"width": 1280, "height": 720},
                    "authorizationType": auth,
                    "videoCodec": "H264",
                    "audioCodec": "AAC",
                }
            ]
        },
    )


def accept_grant(code: str = "grant-code-123") -> dict[str, Any]:
    """Alexa.Authorization.AcceptGrant."""
    return directive(
        "Alexa.Authorization",
        "AcceptGrant",
        payload={
            "grant": {"type": "OAuth2.AuthorizationCode", "code": code},
            "grantee": {"type": "BearerToken", "token": TOKEN},
        },
        correlation=False,
    )
