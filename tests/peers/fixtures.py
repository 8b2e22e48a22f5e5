"""Pytest plugin with the test peers' fixtures.

Register it once from the root ``tests/conftest.py``::

    pytest_plugins = ["tests.peers.fixtures"]

Fixtures
--------
``fake_camera``
    A running :class:`~tests.peers.camera.FakeCamera` (H.264 Main 1280x720, 25 fps, 2 s
    GOP, AAC audio, no auth), shared by the tests of one module. Treat it as read-only:
    do not stop, kill or restart it (use ``fake_camera_factory`` for that).
``fake_camera_factory``
    A :class:`CameraFactory`: ``fake_camera_factory(audio="none", ...)`` starts a camera
    (blocking), ``await fake_camera_factory.astart(...)`` starts one from async code
    without blocking the event loop. Every camera it made is stopped after the test.
``test_pki``
    Session-wide :class:`~tests.peers.tls.TestPki` (CA, intermediate, server chain).

Module- and session-scoped fixtures run before pytest-socket lets a test open sockets,
so these fixtures use none in the test process (the camera talks through pipes); keep
socket-using peers such as :class:`~tests.peers.stunnel.Stunnel` function-scoped.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.peers.camera import FakeCamera
from tests.peers.tls import TestPki


class CameraFactory:
    """Starts fake cameras for one test and stops all of them afterwards."""

    def __init__(self) -> None:
        """Create an empty factory."""
        self.cameras: list[FakeCamera] = []

    def __call__(self, **kwargs: Any) -> FakeCamera:
        """Start a camera with FakeCamera's keyword arguments (blocks until READY)."""
        camera = FakeCamera(**kwargs)
        self.cameras.append(camera)
        camera.start()
        return camera

    async def astart(self, **kwargs: Any) -> FakeCamera:
        """Like calling the factory, but starts the camera in a worker thread."""
        camera = FakeCamera(**kwargs)
        self.cameras.append(camera)
        await camera.astart()
        return camera

    def stop_all(self) -> None:
        """Stop every camera this factory started (idempotent)."""
        for camera in self.cameras:
            camera.stop()


@pytest.fixture(scope="module", name="fake_camera")
def fake_camera_fixture() -> Iterator[FakeCamera]:
    """A module-wide H.264 720p (2 s GOP) + AAC camera without authentication."""
    camera = FakeCamera()
    camera.start()
    try:
        yield camera
    finally:
        camera.stop()


@pytest.fixture(name="fake_camera_factory")
def fake_camera_factory_fixture() -> Iterator[CameraFactory]:
    """A factory for cameras with custom settings; all are stopped after the test."""
    factory = CameraFactory()
    try:
        yield factory
    finally:
        factory.stop_all()


@pytest.fixture(scope="session", name="test_pki")
def test_pki_fixture() -> TestPki:
    """A session-wide test PKI (root CA, intermediate CA, server certificate)."""
    return TestPki()
