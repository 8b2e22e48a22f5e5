"""script/develop: a real Home Assistant with the demo camera answers Discover."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.alexa_schema import validate_message
from tests.peers.process import free_port

ROOT = Path(__file__).parents[2]


def test_develop_check(tmp_path: Path) -> None:
    """`script/develop --check` onboards HA, runs the real config flow, gets schema-valid
    Discover (the demo camera with its probed stream) and InitializeCameraStreams answers,
    and the returned URI plays in the Echo-like client with the certificate verified."""
    env = {**os.environ, "ACB_DEV_DIR": str(tmp_path / "develop")}
    env["PATH"] = f"{Path(sys.executable).parent}:{env['PATH']}"
    args = [
        str(ROOT / "script" / "develop"), "--check",
        "--ha-port", str(free_port()), "--stream-port", str(free_port()),
        "--camera-port", str(free_port()),
    ]  # fmt: skip
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=180, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    answer = result["discover"]
    validate_message(answer)
    validate_message(result["initialize"])
    assert result["initialize"]["event"]["header"]["name"] == "Response"
    assert result["can_show"] is not None, result["errors"]
    (endpoint,) = answer["event"]["payload"]["endpoints"]
    assert endpoint["endpointId"] == "camera#front_door"
    stream = next(
        c for c in endpoint["capabilities"] if c["interface"] == "Alexa.CameraStreamController"
    )
    config = stream["cameraStreamConfigurations"][0]
    assert config["resolutions"] == [{"width": 1280, "height": 720}]
    assert config["audioCodecs"] == ["AAC"]
    assert (tmp_path / "develop" / "token").exists()
