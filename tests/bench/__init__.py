"""Smoke tests of the benchmark code (its numbers are never asserted)."""
