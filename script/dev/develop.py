"""script/develop: a real Home Assistant with this integration and a demo RTSP camera.

Everything runs on this machine with no internet and no Alexa account:
- a fake RTSP camera (gst-rtsp-server: H.264 720p + AAC test pattern),
- a development CA and a certificate for the stream host (default ``cam.localhost``),
- Home Assistant (``.develop/config``) with the integration and a demo camera entity,
  onboarded with the user ``dev`` / ``dev-password``, the bridge configured through its
  real config flow.
Then it prints what to open and the commands that send Alexa directives to HA.
``--check`` sends Discover, validates the answer against Amazon's schema and stops.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parents[2]
DEV = Path(os.environ.get("ACB_DEV_DIR", ROOT / ".develop"))
CONFIG = DEV / "config"
USER, PASSWORD = "dev", "dev-password"
DOMAIN = "alexa_cam_bridge"


def log(message: str) -> None:
    """Progress on stderr; the summary goes to stdout."""
    print(f"==> {message}", file=sys.stderr, flush=True)


# -------------------------------------------------------------------------- certificates


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def make_dev_pki(host: str) -> tuple[Path, Path, Path]:
    """A development CA and a server chain for ``host`` (kept across runs)."""
    pki = DEV / "pki"
    ca_path, chain_path, key_path = pki / "ca.pem", pki / "fullchain.pem", pki / "privkey.pem"
    marker = pki / "host"
    if chain_path.exists() and marker.exists() and marker.read_text() == host:
        return ca_path, chain_path, key_path
    pki.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("alexa_cam_bridge development CA"))
        .issuer_name(_name("alexa_cam_bridge development CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(host))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    chain_path.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    marker.write_text(host)
    return ca_path, chain_path, key_path


# -------------------------------------------------------------------------- processes


def start_camera(port: int) -> tuple[subprocess.Popen[str], str]:
    """The fake camera (system Python with GStreamer's GI bindings)."""
    proc = subprocess.Popen(
        ["/usr/bin/python3", str(ROOT / "tests/peers/fake_camera.py"), "--port", str(port),
         "--path", "/demo", "--audio", "aac"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if not line.startswith("READY "):
        proc.kill()
        _, err = proc.communicate()
        raise SystemExit(f"fake camera did not start: {line} {err}")
    return proc, line.split(" ", 1)[1]


def write_config(ha_port: int, camera_url: str) -> None:
    """configuration.yaml and the custom_components links."""
    components = CONFIG / "custom_components"
    components.mkdir(parents=True, exist_ok=True)
    for name, target in (
        (DOMAIN, ROOT / "custom_components" / DOMAIN),
        ("acb_demo_camera", ROOT / "script" / "dev" / "acb_demo_camera"),
    ):
        link = components / name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(target)
    (CONFIG / "configuration.yaml").write_text(
        f"""# written by script/develop
homeassistant:
  name: Alexa Camera Bridge (development)
  time_zone: UTC
  unit_system: metric
  country: US
  currency: USD
  latitude: 0
  longitude: 0
  elevation: 0
http:
  server_host: 127.0.0.1
  server_port: {ha_port}
frontend:
config:
logger:
  default: warning
  logs:
    custom_components.{DOMAIN}: debug
camera:
  - platform: acb_demo_camera
    name: Front door
    stream_source: {camera_url}
"""
    )


# -------------------------------------------------------------------------- HA set-up


async def wait_for_ha(
    session: aiohttp.ClientSession, base: str, proc: subprocess.Popen[str]
) -> None:
    """Until HA's HTTP server answers."""
    for _ in range(240):
        if proc.poll() is not None:
            raise SystemExit(f"Home Assistant exited ({proc.returncode}); see {DEV}/ha.log")
        with contextlib.suppress(aiohttp.ClientError):
            async with session.get(f"{base}/api/onboarding") as resp:
                if resp.status in (200, 401, 404):
                    return
        await asyncio.sleep(0.5)
    raise SystemExit("Home Assistant did not start in 2 minutes")


async def onboard(session: aiohttp.ClientSession, base: str) -> str:
    """Create the owner through HA's onboarding API; return a long-lived access token."""
    token_file = DEV / "token"
    if token_file.exists():
        return token_file.read_text().strip()
    client_id = f"{base}/"
    async with session.post(
        f"{base}/api/onboarding/users",
        json={"client_id": client_id, "name": "Developer", "username": USER,
              "password": PASSWORD, "language": "en"},
    ) as resp:  # fmt: skip
        if resp.status != 200:
            raise SystemExit(f"onboarding failed ({resp.status}): remove {DEV} and retry")
        code = (await resp.json())["auth_code"]
    async with session.post(
        f"{base}/auth/token",
        data={"grant_type": "authorization_code", "code": code, "client_id": client_id},
    ) as resp:
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
                            "client_name": "script/develop", "lifespan": 3650})  # fmt: skip
        token = str((await ws.receive_json())["result"])
    token_file.write_text(token)
    token_file.chmod(0o600)
    return token


async def configure_bridge(
    session: aiohttp.ClientSession, base: str, token: str, stream: dict[str, Any]
) -> None:
    """Run the integration's real config flow through HA's REST API."""
    auth = {"Authorization": f"Bearer {token}"}
    async with session.post(
        f"{base}/api/config/config_entries/flow", json={"handler": DOMAIN}, headers=auth
    ) as resp:
        result = await resp.json()
    steps: list[dict[str, Any]] = [
        {"host": stream["host"], "port": stream["port"], "scheme": "rtsp", "cert_mode": "files"},
        {"cert_file": stream["cert_file"], "key_file": stream["key_file"]},
        {"cameras": ["camera.front_door"]},
        {"camera.front_door": "front door"},
    ]
    for data in steps:
        if result.get("type") != "form":
            break
        async with session.post(
            f"{base}/api/config/config_entries/flow/{result['flow_id']}", json=data, headers=auth
        ) as resp:
            result = await resp.json()
        if result.get("errors"):
            raise SystemExit(f"config flow step {result.get('step_id')}: {result['errors']}")
    if result.get("type") == "abort" and result.get("reason") == "already_configured":
        log("the bridge was configured on an earlier run")
    elif result.get("type") != "create_entry":
        raise SystemExit(f"config flow ended unexpectedly: {result}")


def discover_directive() -> dict[str, Any]:
    """The directive Alexa sends for "Alexa, discover devices"."""
    return {
        "directive": {
            "header": {"namespace": "Alexa.Discovery", "name": "Discover",
                       "payloadVersion": "3", "messageId": "develop-1"},
            "payload": {"scope": {"type": "BearerToken", "token": "linked-account-token"}},
        }
    }  # fmt: skip


async def send(
    session: aiohttp.ClientSession, base: str, token: str, body: dict[str, Any]
) -> dict[str, Any]:
    """POST a directive to the integration's endpoint, as the Lambda does."""
    async with session.post(
        f"{base}/api/{DOMAIN}/smart_home", json=body,
        headers={"Authorization": f"Bearer {token}"},
    ) as resp:  # fmt: skip
        result: dict[str, Any] = await resp.json()
        return result


def summary(base: str, token: str, host: str, port: int, ca: Path) -> str:
    """What to open and what to run next."""
    api = f"{base}/api/{DOMAIN}/smart_home"
    curl = f"curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json'"
    init = json.dumps({"directive": {
        "header": {"namespace": "Alexa.CameraStreamController", "name": "InitializeCameraStreams",
                   "payloadVersion": "3", "messageId": "m2", "correlationToken": "c2"},
        "endpoint": {"endpointId": "camera.front_door",
                     "scope": {"type": "BearerToken", "token": "t"}},
        "payload": {"cameraStreams": [{"protocol": "RTSP",
                                       "resolution": {"width": 1280, "height": 720},
                                       "authorizationType": "BASIC", "videoCodec": "H264",
                                       "audioCodec": "AAC"}]}}})  # fmt: skip
    return f"""
Home Assistant is running: {base}   (log in as {USER} / {PASSWORD};
  Settings > Devices & services > Alexa Camera Bridge)
Stream port: {port} (TLS, certificate for {host} from the development CA {ca})

Send Alexa directives as the Lambda would:
  {curl} -d '{json.dumps(discover_directive())}' {api}
  {curl} -d '{init}' {api}

Play the returned URI like an Echo (the name {host} may not resolve here: use 127.0.0.1 and
rtsps:// for ffprobe, which speaks TLS only for rtsps):
  .venv/bin/python -m tests.peers.echo_client 'rtsps://USER:PASS@127.0.0.1:{port}/STREAM' --insecure
  ffprobe -rtsp_transport tcp 'rtsps://USER:PASS@127.0.0.1:{port}/STREAM'
Access token for the API: {DEV}/token.  Stop with Ctrl-C.
"""


async def main() -> int:
    """Start everything; with --check, verify Discover and stop."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="verify Discover, then stop")
    parser.add_argument("--host", default=os.environ.get("ACB_DEV_HOST", "cam.localhost"))
    parser.add_argument(
        "--ha-port", type=int, default=int(os.environ.get("ACB_DEV_HA_PORT", "8123"))
    )
    parser.add_argument(
        "--stream-port", type=int, default=int(os.environ.get("ACB_DEV_STREAM_PORT", "8443"))
    )
    parser.add_argument(
        "--camera-port", type=int, default=int(os.environ.get("ACB_DEV_CAMERA_PORT", "8554"))
    )
    args = parser.parse_args()
    DEV.mkdir(parents=True, exist_ok=True)
    ca, chain, key = make_dev_pki(args.host)
    log("starting the demo camera (gst-rtsp-server)")
    camera, camera_url = start_camera(args.camera_port)
    write_config(args.ha_port, camera_url)
    log(f"starting Home Assistant ({CONFIG}, log {DEV}/ha.log)")
    with (DEV / "ha.log").open("w") as ha_log:
        hass = subprocess.Popen(
            [str(Path(sys.executable).with_name("hass")), "-c", str(CONFIG), "--skip-pip"],
            stdout=ha_log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{args.ha_port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_for_ha(session, base, hass)
            token = await onboard(session, base)
            stream = {
                "host": args.host,
                "port": args.stream_port,
                "cert_file": str(chain),
                "key_file": str(key),
            }
            await configure_bridge(session, base, token, stream)
            answer = await send(session, base, token, discover_directive())
            endpoints = answer.get("event", {}).get("payload", {}).get("endpoints", [])
            log(f"Discover answered with {len(endpoints)} camera(s)")
            if args.check:
                sys.path.insert(0, str(ROOT))
                from tests.alexa_schema import validate_message

                validate_message(answer)
                print(json.dumps(answer, indent=2))
                return 0 if endpoints else 1
            print(summary(base, token, args.host, args.stream_port, ca))
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, stop.set)
            while not stop.is_set() and hass.poll() is None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1)
            return 0
    finally:
        for proc in (hass, camera):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(30)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    if shutil.which("ffmpeg") is None:
        raise SystemExit("ffmpeg is missing: run script/setup")
    sys.exit(asyncio.run(main()))
