"""Interoperability tests with real peers (cameras, clients, TLS terminators)."""
