"""A real Home Assistant in a child process, set up through its public APIs only.

Shared by script/develop and the directive benchmark: write a configuration with demo
cameras, wait for HTTP, onboard the owner (long-lived token), run the bridge's real
config flow.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[2]
DOMAIN = "alexa_cam_bridge"
USER, PASSWORD = "dev", "dev-password"


def write_config(
    config: Path, ha_port: int, cameras: Sequence[tuple[str, str]], *, debug: bool = False
) -> None:
    """configuration.yaml with one ``acb_demo_camera`` per (name, RTSP URL), and the
    custom_components links to this checkout."""
    components = config / "custom_components"
    components.mkdir(parents=True, exist_ok=True)
    for name, target in (
        (DOMAIN, ROOT / "custom_components" / DOMAIN),
        ("acb_demo_camera", ROOT / "script" / "dev" / "acb_demo_camera"),
    ):
        link = components / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    entries = "".join(
        f"  - platform: acb_demo_camera\n    name: {name}\n    stream_source: {url}\n"
        for name, url in cameras
    )
    logs = f"  logs:\n    custom_components.{DOMAIN}: debug\n" if debug else ""
    (config / "configuration.yaml").write_text(
        "# written by script/dev/ha.py\n"
        "homeassistant:\n  name: Alexa Camera Bridge (development)\n  time_zone: UTC\n"
        "  unit_system: metric\n  country: US\n  currency: USD\n  latitude: 0\n"
        "  longitude: 0\n  elevation: 0\n"
        f"http:\n  server_host: 127.0.0.1\n  server_port: {ha_port}\n"
        "frontend:\nconfig:\n"
        f"logger:\n  default: warning\n{logs}"
        f"camera:\n{entries}"
    )


async def wait_for_http(
    session: aiohttp.ClientSession, base: str, exited: Callable[[], bool], limit: float
) -> None:
    """Until HA's HTTP server answers (RuntimeError when it exits or after ``limit`` s)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if exited():
            raise RuntimeError("Home Assistant exited; see its log")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/api/onboarding") as resp:
                if resp.status in (200, 401, 404):
                    return
        await asyncio.sleep(0.5)
    raise RuntimeError(f"Home Assistant did not answer in {limit:g} s")


async def onboard(
    session: aiohttp.ClientSession, base: str, *, client_name: str, lifespan_days: int
) -> str:
    """Create the owner (``dev`` / ``dev-password``) through HA's onboarding API and
    finish onboarding; return a long-lived access token."""
    client_id = f"{base}/"
    async with session.post(
        f"{base}/api/onboarding/users",
        json={"client_id": client_id, "name": "Developer", "username": USER,
              "password": PASSWORD, "language": "en"},
    ) as resp:  # fmt: skip
        if resp.status != 200:
            raise RuntimeError(f"onboarding failed ({resp.status}): HA was onboarded before")
        code = (await resp.json())["auth_code"]
    async with session.post(
        f"{base}/auth/token",
        data={"grant_type": "authorization_code", "code": code, "client_id": client_id},
    ) as resp:
        resp.raise_for_status()
        access = (await resp.json())["access_token"]
    auth = {"Authorization": f"Bearer {access}"}
    steps: list[tuple[str, dict[str, str]]] = [
        ("core_config", {}),
        ("analytics", {}),
        ("integration", {"client_id": client_id, "redirect_uri": client_id}),
    ]
    for step, body in steps:
        async with session.post(f"{base}/api/onboarding/{step}", json=body, headers=auth):
            pass
    async with session.ws_connect(f"{base}/api/websocket") as ws:
        await ws.receive_json()
        await ws.send_json({"type": "auth", "access_token": access})
        await ws.receive_json()
        await ws.send_json({"id": 1, "type": "auth/long_lived_access_token",
                            "client_name": client_name, "lifespan": lifespan_days})  # fmt: skip
        return str((await ws.receive_json())["result"])


async def camera_entities(
    session: aiohttp.ClientSession, base: str, token: str, count: int, limit: float
) -> list[str]:
    """The camera entity ids, once ``count`` of them exist (at most ``limit`` s)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        async with session.get(
            f"{base}/api/states", headers={"Authorization": f"Bearer {token}"}
        ) as resp:
            states = await resp.json()
        found = sorted(s["entity_id"] for s in states if s["entity_id"].startswith("camera."))
        if len(found) >= count:
            return found
        await asyncio.sleep(0.5)
    raise RuntimeError(f"Home Assistant has not set up {count} cameras")


async def configure_bridge(
    session: aiohttp.ClientSession, base: str, token: str, answers: dict[str, dict[str, Any]]
) -> bool:
    """Run the bridge's real config flow through HA's REST API.

    Every form is filled from its defaults plus ``answers[step_id]``. True when an entry
    was created, False when the bridge was configured before (``already_configured``).
    """
    auth = {"Authorization": f"Bearer {token}"}
    flows = f"{base}/api/config/config_entries/flow"
    async with session.post(flows, json={"handler": DOMAIN}, headers=auth) as resp:
        result: dict[str, Any] = await resp.json()
    while result.get("type") == "form":
        data = {
            field["name"]: field["default"]
            for field in result.get("data_schema", [])
            if "default" in field
        }
        data.update(answers.get(result["step_id"], {}))
        async with session.post(f"{flows}/{result['flow_id']}", json=data, headers=auth) as resp:
            result = await resp.json()
        if result.get("errors"):
            raise RuntimeError(f"config flow step {result.get('step_id')}: {result['errors']}")
    if result.get("type") == "abort" and result.get("reason") == "already_configured":
        return False
    if result.get("type") != "create_entry":
        raise RuntimeError(f"config flow ended with {result}")
    return True
