"""Tests for alexa_cam_bridge."""
