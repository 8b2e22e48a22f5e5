"""A blocking ACME (RFC 8555) client on top of certbot's ``acme`` library.

Every public method does network I/O and sleeps while polling: run it in an executor.
The ``acme`` library has no TLS-ALPN-01 helpers since 5.0; this module answers that
challenge type itself (the response body is empty, the proof is the certificate that
:mod:`.tls_alpn` serves). Challenges are fulfilled by a :class:`ChallengeSolver`.

Private keys never reach a log message or an exception text from here.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import Any, Final, Protocol

from acme import challenges, client, errors, messages
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from josepy.b64 import b64encode
from josepy.jwa import ES256, RS256, JWASignature
from josepy.jwk import JWK, JWKEC, JWKRSA

from .chains import choose_chain
from .material import csr_pem, generate_key, load_key, private_key_pem

_LOGGER = logging.getLogger(__name__)

LETS_ENCRYPT_PRODUCTION: Final = "https://acme-v02.api.letsencrypt.org/directory"
LETS_ENCRYPT_STAGING: Final = "https://acme-staging-v02.api.letsencrypt.org/directory"
CHALLENGE_TLS_ALPN_01: Final = "tls-alpn-01"
CHALLENGE_DNS_01: Final = "dns-01"
USER_AGENT: Final = "alexa_cam_bridge"


class AcmeError(Exception):
    """Getting a certificate failed; the message says why (no secrets)."""


class ChallengeSolver(Protocol):
    """Publishes and withdraws the proof for one challenge type (blocking calls)."""

    @property
    def challenge_type(self) -> str:
        """The ACME challenge type solved, e.g. ``tls-alpn-01``."""
        ...

    def present(self, domain: str, token: str, key_authorization: str) -> None:
        """Make the proof visible to the ACME server; return when it is."""
        ...

    def cleanup(self, domain: str, token: str, key_authorization: str) -> None:
        """Withdraw the proof (best effort)."""
        ...


@dataclass(frozen=True, slots=True)
class IssuedCertificate:
    """A certificate the ACME server issued, chain already chosen (no root)."""

    key_pem: bytes
    chain_pem: bytes
    top_issuer: str
    preferred_matched: bool
    chains_offered: int


class _TlsAlpn01Response(challenges.KeyAuthorizationChallengeResponse):
    """The response that tells the server to validate TLS-ALPN-01.

    It serializes to ``{}`` like every RFC 8555 response; it carries the key
    authorization only so that it is non-empty, because ``acme`` sends an empty object
    as a POST-as-GET (an empty payload), which does not trigger validation.
    """

    typ = CHALLENGE_TLS_ALPN_01


def _jwk(key_pem: bytes) -> tuple[JWK, JWASignature]:
    key = load_key(key_pem)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return JWKEC(key=key), ES256
    if isinstance(key, rsa.RSAPrivateKey):
        return JWKRSA(key=key), RS256
    raise AcmeError("unsupported account key type")


def new_account_key(key_type: str) -> bytes:
    """A fresh account key, PEM."""
    return private_key_pem(generate_key(key_type))


def _challenge_type(challb: messages.ChallengeBody) -> str:
    """The challenge's type, also for types the library does not know (tls-alpn-01)."""
    return str(challb.chall.to_partial_json().get("type", ""))


def _describe(err: BaseException) -> str:
    if isinstance(err, errors.ValidationError):
        details = []
        for authzr in err.failed_authzrs:
            for challb in authzr.body.challenges:
                if challb.error is not None:
                    details.append(f"{authzr.body.identifier.value}: {challb.error}")
        return "validation failed: " + "; ".join(details or ["no detail"])
    if isinstance(err, errors.TimeoutError):
        return "the ACME server did not finish in time"
    if isinstance(err, messages.Error):
        return f"ACME server error: {err}"
    return f"{type(err).__name__}: {err}"


class AcmeClient:
    """One ACME account on one directory; obtains certificates (blocking)."""

    def __init__(
        self,
        directory_url: str,
        *,
        account_key_pem: bytes,
        account_uri: str | None = None,
        email: str | None = None,
        ca_bundle: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        """Remember settings; nothing touches the network before the first call."""
        self.directory_url = directory_url
        self.account_uri = account_uri
        self._email = email
        self._key, self._alg = _jwk(account_key_pem)
        self._verify: Any = ca_bundle or True
        self._timeout = timeout
        self._client: client.ClientV2 | None = None

    def _acme(self) -> client.ClientV2:
        if self._client is None:
            net = client.ClientNetwork(
                self._key,
                alg=self._alg,
                verify_ssl=self._verify,
                user_agent=USER_AGENT,
                timeout=int(self._timeout),
            )
            if self.account_uri:
                net.account = messages.RegistrationResource(
                    body=messages.Registration(), uri=self.account_uri
                )
            directory = client.ClientV2.get_directory(self.directory_url, net)
            self._client = client.ClientV2(directory, net)
        return self._client

    def register(self) -> str:
        """Create (or find) the account, agreeing to the terms of service; return its URL.

        Only call this after the user agreed to the CA's terms in the config flow.
        """
        acme = self._acme()
        reg = messages.NewRegistration.from_data(
            email=self._email or None, terms_of_service_agreed=True
        )
        try:
            regr = acme.new_account(reg)
        except errors.ConflictError as err:  # the key already has an account
            uri = str(err)
            acme.net.account = messages.RegistrationResource(body=messages.Registration(), uri=uri)
            self.account_uri = uri
            return uri
        self.account_uri = regr.uri
        return str(regr.uri)

    def obtain(
        self,
        names: list[str],
        solver: ChallengeSolver,
        *,
        key_type: str,
        preferred_chain: str | None,
        timeout: float = 120.0,
    ) -> IssuedCertificate:
        """Order a certificate for ``names`` with a new key, solving with ``solver``."""
        try:
            return self._obtain(names, solver, key_type, preferred_chain, timeout)
        except AcmeError:
            raise
        except Exception as err:
            raise AcmeError(_describe(err)) from err

    def _new_order(self, csr: bytes) -> messages.OrderResource:
        acme = self._acme()
        if not self.account_uri:
            self.register()
        try:
            return acme.new_order(csr)
        except messages.Error as err:
            if err.code != "accountDoesNotExist":
                raise
        _LOGGER.info("The ACME server forgot the account; registering again")
        self.account_uri = None
        acme.net.account = None
        self.register()
        return acme.new_order(csr)

    def _obtain(
        self,
        names: list[str],
        solver: ChallengeSolver,
        key_type: str,
        preferred_chain: str | None,
        timeout: float,
    ) -> IssuedCertificate:
        key = generate_key(key_type)
        acme = self._acme()
        order = self._new_order(csr_pem(key, names))
        presented: list[tuple[str, str, str]] = []
        try:
            for authzr in order.authorizations:
                if authzr.body.status == messages.STATUS_VALID:
                    continue
                domain = str(authzr.body.identifier.value)
                challb = next(
                    (
                        c
                        for c in authzr.body.challenges
                        if _challenge_type(c) == solver.challenge_type
                    ),
                    None,
                )
                if challb is None:
                    offered = ", ".join(_challenge_type(c) for c in authzr.body.challenges)
                    raise AcmeError(
                        f"the ACME server does not offer {solver.challenge_type} for "
                        f"{domain} (offers: {offered})"
                    )
                token = str(challb.to_partial_json()["token"])
                thumbprint = b64encode(self._key.thumbprint()).decode("ascii")
                key_authorization = f"{token}.{thumbprint}"
                solver.present(domain, token, key_authorization)
                presented.append((domain, token, key_authorization))
                response: challenges.ChallengeResponse
                if isinstance(challb.chall, challenges.KeyAuthorizationChallenge):
                    response = challb.chall.response(self._key)
                else:
                    response = _TlsAlpn01Response(key_authorization=key_authorization)
                # Not ClientV2.answer_challenge: it insists on a Link "up" header that
                # some servers (Debian's Pebble 2.4) omit; the reply is not needed anyway.
                acme.net.post(challb.uri, response, new_nonce_url=acme.directory["newNonce"])
            # counted from here: publishing a DNS record may have taken minutes already;
            # acme's polling compares against naive local time
            deadline = dt.datetime.now() + dt.timedelta(seconds=timeout)
            order = acme.poll_authorizations(order, deadline)
            order = acme.finalize_order(order, deadline, fetch_alternative_chains=True)
        finally:
            for domain, token, key_authorization in presented:
                try:
                    solver.cleanup(domain, token, key_authorization)
                except Exception as err:
                    _LOGGER.warning("Could not withdraw the challenge for %s: %s", domain, err)
        alternatives = list(order.alternative_fullchains_pem or [])
        choice = choose_chain(order.fullchain_pem, alternatives, preferred_chain)
        return IssuedCertificate(
            key_pem=private_key_pem(key),
            chain_pem=choice.chain_pem,
            top_issuer=choice.top_issuer,
            preferred_matched=choice.matched,
            chains_offered=1 + len(alternatives),
        )

    def renewal_info(self, chain_pem: bytes) -> dt.datetime | None:
        """ACME Renewal Info's suggested renewal time, or None when the server has no ARI."""
        try:
            when, _next_check = self._acme().renewal_time(chain_pem)
        except Exception as err:
            _LOGGER.debug("No renewal info: %s", _describe(err))
            return None
        if when is None:
            return None
        return when if when.tzinfo else when.replace(tzinfo=dt.UTC)
