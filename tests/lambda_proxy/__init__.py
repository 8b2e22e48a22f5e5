"""Tests for the forwarding Lambda, run against real local HTTP(S) servers."""
