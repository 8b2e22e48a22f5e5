"""Preferred-chain choice: the chain ending in the configured root, leaf + intermediates."""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from custom_components.alexa_cam_bridge.certs.chains import (
    DEFAULT_PREFERRED_CHAIN,
    choose_chain,
    served_chain,
)
from custom_components.alexa_cam_bridge.certs.material import split_chain

NOW = dt.datetime.now(dt.UTC)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _cert(
    subject: str,
    key: ec.EllipticCurvePrivateKey,
    issuer: str,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    ca: bool,
) -> x509.Certificate:
    return (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(_name(issuer))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(issuer_key, hashes.SHA256())
    )


def _pem(*certs: x509.Certificate) -> str:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs).decode()


class Pki:
    """Let's Encrypt's 2021 shape: R3 under ISRG Root X1, X1 cross-signed by DST."""

    def __init__(self) -> None:
        k_dst, k_x1, k_r3, k_leaf = (ec.generate_private_key(ec.SECP256R1()) for _ in range(4))
        self.x1_self = _cert("ISRG Root X1", k_x1, "ISRG Root X1", k_x1, ca=True)
        self.x1_cross = _cert("ISRG Root X1", k_x1, "DST Root CA X3", k_dst, ca=True)
        self.r3 = _cert("R3", k_r3, "ISRG Root X1", k_x1, ca=True)
        self.leaf = _cert("cam.example.com", k_leaf, "R3", k_r3, ca=False)


def test_picks_alternate_chain_by_root_name() -> None:
    """Default chain ends in DST Root CA X3; the preferred ISRG Root X1 chain wins."""
    pki = Pki()
    default = _pem(pki.leaf, pki.r3, pki.x1_cross)
    alternate = _pem(pki.leaf, pki.r3)
    choice = choose_chain(default, [alternate], DEFAULT_PREFERRED_CHAIN)
    assert choice.matched
    assert choice.top_issuer == "ISRG Root X1"
    assert [c.subject for c in split_chain(choice.chain_pem)] == [
        pki.leaf.subject,
        pki.r3.subject,
    ]


def test_default_chain_can_match_and_match_is_case_insensitive() -> None:
    """The default chain is used when it already ends in the preferred root."""
    pki = Pki()
    choice = choose_chain(
        _pem(pki.leaf, pki.r3), [_pem(pki.leaf, pki.r3, pki.x1_cross)], "isrg root x1"
    )
    assert choice.matched
    assert len(split_chain(choice.chain_pem)) == 2


def test_fallback_to_default_chain() -> None:
    """No chain ends in the preferred name: the default chain, matched=False."""
    pki = Pki()
    default = _pem(pki.leaf, pki.r3, pki.x1_cross)
    choice = choose_chain(default, [_pem(pki.leaf, pki.r3)], "Some Other Root")
    assert not choice.matched
    assert choice.top_issuer == "DST Root CA X3"
    assert len(split_chain(choice.chain_pem)) == 3
    unpreferred = choose_chain(default, [], None)
    assert unpreferred.matched
    assert unpreferred.top_issuer == "DST Root CA X3"


def test_root_is_never_served() -> None:
    """A chain that includes the self-signed root is served without it."""
    pki = Pki()
    choice = choose_chain(_pem(pki.leaf, pki.r3, pki.x1_self), [], "ISRG Root X1")
    assert choice.matched
    assert [c.subject for c in split_chain(choice.chain_pem)] == [
        pki.leaf.subject,
        pki.r3.subject,
    ]
    assert served_chain([pki.x1_self]) == [pki.x1_self]  # a lone certificate stays
