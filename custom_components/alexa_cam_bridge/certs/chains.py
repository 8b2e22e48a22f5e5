"""Preferred-chain choice among the default and alternate chains an ACME server offers.

A chain is chosen when its topmost certificate is issued by the preferred name (the
Common Name, e.g. "ISRG Root X1"), or *is* that self-signed root. The served chain is
leaf + intermediates: a self-signed root at the end is dropped (clients have it).
"""

from __future__ import annotations

from dataclasses import dataclass

from cryptography import x509

from .material import chain_pem, common_name, split_chain

DEFAULT_PREFERRED_CHAIN = "ISRG Root X1"


@dataclass(frozen=True, slots=True)
class ChainChoice:
    """The chain to serve and how it was chosen."""

    chain_pem: bytes
    top_issuer: str
    matched: bool


def _self_signed(cert: x509.Certificate) -> bool:
    return cert.issuer == cert.subject


def served_chain(certs: list[x509.Certificate]) -> list[x509.Certificate]:
    """Leaf + intermediates: drop a trailing self-signed root (never the leaf)."""
    out = list(certs)
    while len(out) > 1 and _self_signed(out[-1]):
        out.pop()
    return out


def top_issuer(certs: list[x509.Certificate]) -> str:
    """CN of the issuer of the topmost non-root certificate: the root the chain ends in."""
    return common_name(served_chain(certs)[-1].issuer)


def choose_chain(
    default: str | bytes, alternatives: list[str], preferred: str | None
) -> ChainChoice:
    """Pick the chain ending in ``preferred``; fall back to ``default`` (matched=False).

    With no preference the default chain is used and counts as matched.
    """
    chains = [split_chain(default), *(split_chain(alt) for alt in alternatives)]
    wanted = (preferred or "").strip().casefold()
    if wanted:
        for certs in chains:
            if top_issuer(certs).casefold() == wanted:
                served = served_chain(certs)
                return ChainChoice(chain_pem(served), top_issuer(certs), True)
    served = served_chain(chains[0])
    return ChainChoice(chain_pem(served), top_issuer(chains[0]), not wanted)
