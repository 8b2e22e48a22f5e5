"""Benchmarks for alexa_cam_bridge."""
