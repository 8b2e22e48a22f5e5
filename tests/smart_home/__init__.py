"""Tests for the pure Alexa Smart Home layer (no Home Assistant needed)."""
