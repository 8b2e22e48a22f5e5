"""Tests of the pure certificate package (custom_components/alexa_cam_bridge/certs)."""
