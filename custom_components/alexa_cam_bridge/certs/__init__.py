"""Certificates for the stream port: ACME client, challenges, chain choice, renewal math.

Everything in this package is pure (no Home Assistant import); blocking calls are meant
to run in an executor. ``certificates.py`` one level up is the Home Assistant glue.
"""
