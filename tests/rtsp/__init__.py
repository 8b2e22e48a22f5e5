"""Tests for the RTSP package."""
