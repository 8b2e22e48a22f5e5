"""script/develop: a real Home Assistant with this integration and a demo RTSP camera.

Everything runs on this machine with no internet and no Alexa account:
- a fake RTSP camera (gst-rtsp-server: H.264 720p + AAC test pattern),
- a development CA and a certificate for the stream host (default ``cam.localhost``),
- Home Assistant (``.develop/config``) with the integration and a demo camera entity,
  onboarded with the user ``dev`` / ``dev-password``, the bridge configured through its
  real config flow.
Then it prints what to open and the commands that send Alexa directives to HA.
``--check`` sends Discover and InitializeCameraStreams, validates both against Amazon's
schema, plays the returned URI with the Echo-like client (TLS verified against the
development CA) and stops.
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
import ssl
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from script.dev.ha import (
    DOMAIN,
    PASSWORD,
    USER,
    camera_entities,
    configure_bridge,
    onboard,
    wait_for_http,
    write_config,
)

ROOT = Path(__file__).resolve().parents[2]
DEV = Path(os.environ.get("ACB_DEV_DIR", ROOT / ".develop"))
CONFIG = DEV / "config"


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


# -------------------------------------------------------------------------- HA set-up


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


def initialize_directive(endpoint_id: str) -> dict[str, Any]:
    """The directive Alexa sends for "Alexa, show the front door"."""
    return {"directive": {
        "header": {"namespace": "Alexa.CameraStreamController", "name": "InitializeCameraStreams",
                   "payloadVersion": "3", "messageId": "develop-2", "correlationToken": "c2"},
        "endpoint": {"endpointId": endpoint_id,
                     "scope": {"type": "BearerToken", "token": "linked-account-token"}},
        "payload": {"cameraStreams": [{"protocol": "RTSP",
                                       "resolution": {"width": 1280, "height": 720},
                                       "authorizationType": "BASIC", "videoCodec": "H264",
                                       "audioCodec": "AAC"}]}}}  # fmt: skip


async def check(
    session: aiohttp.ClientSession, base: str, token: str, discover: dict[str, Any], ca: Path,
    host: str,
) -> int:  # fmt: skip
    """--check: both answers schema-valid, and the returned URI plays like an Echo."""
    from tests.alexa_schema import validate_message
    from tests.peers.echo_client import run_echo_client

    validate_message(discover)
    endpoint_id = discover["event"]["payload"]["endpoints"][0]["endpointId"]
    stream = await send(session, base, token, initialize_directive(endpoint_id))
    validate_message(stream)
    uri = stream["event"]["payload"]["cameraStreams"][0]["uri"]
    played = await run_echo_client(
        uri.replace(f"@{host}:", "@127.0.0.1:", 1),
        ssl_context=ssl.create_default_context(cafile=str(ca)),
        server_hostname=host,
    )
    print(json.dumps({"discover": discover, "initialize": stream,
                      "can_show": played.can_show, "errors": played.errors}, indent=2))  # fmt: skip
    return 0 if played.can_show is not None else 1


def summary(base: str, token: str, host: str, port: int, ca: Path) -> str:
    """What to open and what to run next."""
    api = f"{base}/api/{DOMAIN}/smart_home"
    curl = f"curl -s -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json'"
    init = json.dumps(initialize_directive("camera#front_door"))
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
    write_config(CONFIG, args.ha_port, [("Front door", camera_url)], debug=True)
    log(f"starting Home Assistant ({CONFIG}, log {DEV}/ha.log)")
    with (DEV / "ha.log").open("w") as ha_log:
        hass = subprocess.Popen(
            [str(Path(sys.executable).with_name("hass")), "-c", str(CONFIG), "--skip-pip"],
            stdout=ha_log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{args.ha_port}"
    try:
        async with aiohttp.ClientSession() as session:
            await wait_for_http(session, base, lambda: hass.poll() is not None, 120)
            token_file = DEV / "token"
            if token_file.exists():
                token = token_file.read_text().strip()
            else:
                token = await onboard(
                    session, base, client_name="script/develop", lifespan_days=3650
                )
                token_file.write_text(token)
                token_file.chmod(0o600)
            cameras = await camera_entities(session, base, token, 1, 60)
            answers: dict[str, dict[str, Any]] = {
                "user": {"host": args.host, "port": args.stream_port, "cert_mode": "files"},
                "certificate_files": {"cert_file": str(chain), "key_file": str(key)},
                "cameras": {"cameras": cameras},
                "names": {cameras[0]: "front door"},
            }
            if not await configure_bridge(session, base, token, answers):
                log("the bridge was configured on an earlier run")
            answer = await send(session, base, token, discover_directive())
            endpoints = answer.get("event", {}).get("payload", {}).get("endpoints", [])
            log(f"Discover answered with {len(endpoints)} camera(s)")
            if args.check:
                return await check(session, base, token, answer, ca, args.host)
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
