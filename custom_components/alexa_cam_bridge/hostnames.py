"""Validation of the public stream host name (pure)."""

from __future__ import annotations

import ipaddress
import re

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def is_ip_address(value: str) -> bool:
    """True for IPv4/IPv6 literals (with or without brackets)."""
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True


def normalize_host(value: str) -> str:
    """Lower-case, strip white space and one trailing dot."""
    return value.strip().lower().removesuffix(".")


def host_error(value: str) -> str | None:
    """Return a config-flow error key for a bad stream host name, None when it is usable.

    The Echo needs a public DNS name it can resolve and that a certificate can cover:
    IP literals are refused (``host_is_ip``), and the name must have at least two
    labels of letters, digits and hyphens (``invalid_host``); a one-label name such as
    ``homeassistant`` cannot get a public certificate.
    """
    host = normalize_host(value)
    if is_ip_address(host):
        return "host_is_ip"
    if not host or len(host) > 253 or "." not in host:
        return "invalid_host"
    labels = host.split(".")
    if not all(_LABEL.match(label) for label in labels) or labels[-1].isdigit():
        return "invalid_host"
    return None
