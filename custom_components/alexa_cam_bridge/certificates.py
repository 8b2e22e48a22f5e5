"""The stream port's certificate in Home Assistant: ACME orders and renewal, own files.

One :class:`CertificateManager` per config entry. In the ACME modes it

- keeps the account key, the certificate key and chain in HA's storage (``private``),
- serves a stored certificate at start-up, or a temporary self-signed one until the first
  order completes (the Echo cannot play until then),
- answers TLS-ALPN-01 through the front door (ALPN handler registered before the first
  order) or DNS-01 through DuckDNS,
- renews when a third of the lifetime remains (earlier if ACME Renewal Info says so),
  retries with backoff, keeps serving the old certificate on failure and raises a
  repair issue when less than 14 days remain (cleared on success),
- swaps new certificates into the front door's ``SSLContext``; live sessions keep theirs.

In the files mode it watches the files (mtime/size every minute) and reloads them when
they change and are valid; invalid files raise a repair issue and the old ones stay.

The blocking work (ACME, key generation, file reads) runs in the executor; the pure
parts live in ``certs/``. Private keys are never logged and never in diagnostics.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import ssl
from dataclasses import dataclass
from typing import Any, Final

import voluptuous as vol
from homeassistant.config_entries import ConfigEntry
from homeassistant.core import CALLBACK_TYPE, HomeAssistant, ServiceCall, callback
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.event import async_track_point_in_utc_time, async_track_time_interval
from homeassistant.helpers.storage import Store
from homeassistant.util import dt as dt_util

from .certfiles import CertificateError, CertificateInfo, load_and_validate, server_context
from .certs.acme_client import (
    LETS_ENCRYPT_PRODUCTION,
    LETS_ENCRYPT_STAGING,
    AcmeClient,
    AcmeError,
    ChallengeSolver,
    IssuedCertificate,
    new_account_key,
)
from .certs.chains import DEFAULT_PREFERRED_CHAIN, top_issuer
from .certs.duckdns import DUCKDNS_UPDATE_URL, DuckDnsSolver
from .certs.material import (
    KEY_EC_P256,
    chain_info,
    context_from_pem,
    generate_key,
    issuer_chain,
    key_matches,
    private_key_pem,
    self_signed,
    split_chain,
)
from .certs.renewal import needs_repair, renewal_time, retry_delay
from .certs.tls_alpn import ACME_TLS_ALPN_PROTOCOL, TlsAlpnResponder, TlsAlpnSolver
from .const import (
    CERT_MODE_ACME_DNS_DUCKDNS,
    CERT_MODE_ACME_TLS_ALPN,
    CERT_MODE_FILES,
    CONF_CA_BUNDLE,
    CONF_CERT_FILE,
    CONF_CERT_MODE,
    CONF_DIRECTORY_URL,
    CONF_DNS_SERVERS,
    CONF_DUCKDNS_TOKEN,
    CONF_DUCKDNS_UPDATE_URL,
    CONF_EMAIL,
    CONF_HOST,
    CONF_KEY_FILE,
    CONF_KEY_TYPE,
    CONF_PREFERRED_CHAIN,
    CONF_PROPAGATION_SECONDS,
    CONF_STAGING,
    DEFAULT_PROPAGATION_SECONDS,
    DOMAIN,
    FILES_POLL_SECONDS,
    ISSUE_CERTIFICATE_INVALID,
    ISSUE_CERTIFICATE_RENEWAL_FAILED,
    SERVICE_RENEW_CERTIFICATE,
)
from .restreamer import Restreamer

_LOGGER = logging.getLogger(__name__)

STORAGE_VERSION: Final = 1
RENEWAL_INFO_RECHECK: Final = dt.timedelta(days=1)

STATUS_PENDING: Final = "pending"  # temporary self-signed certificate, first order running
STATUS_VALID: Final = "valid"
STATUS_RENEWAL_FAILED: Final = "renewal_failed"
STATUS_INVALID: Final = "invalid"  # files mode: the files changed into something unusable

ACME_MODES: Final = (CERT_MODE_ACME_TLS_ALPN, CERT_MODE_ACME_DNS_DUCKDNS)


def directory_url(data: dict[str, Any]) -> str:
    """The ACME directory an entry uses: custom URL, else Let's Encrypt (staging or not)."""
    custom = str(data.get(CONF_DIRECTORY_URL) or "").strip()
    if custom:
        return custom
    return LETS_ENCRYPT_STAGING if data.get(CONF_STAGING) else LETS_ENCRYPT_PRODUCTION


def parse_dns_servers(text: str | None) -> list[tuple[str, int]] | None:
    """``"ns1.example:53, 127.0.0.1:8053"`` → [(host, port)]; empty → None (DuckDNS's)."""
    servers: list[tuple[str, int]] = []
    for item in (text or "").replace(" ", "").split(","):
        if not item:
            continue
        host, sep, port = item.rpartition(":")
        if not sep:
            host, port = item, "53"
        servers.append((host.strip("[]"), int(port)))
    return servers or None


@dataclass(frozen=True, slots=True)
class _Served:
    """The certificate being served."""

    info: CertificateInfo
    real: bool  # False: the temporary self-signed placeholder
    chain_pem: bytes


@callback
def async_raise_certificate_invalid(hass: HomeAssistant, detail: str) -> None:
    """The repair for certificate files that are not usable, with the reason."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        ISSUE_CERTIFICATE_INVALID,
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        translation_key=ISSUE_CERTIFICATE_INVALID,
        translation_placeholders={"detail": detail},
    )


class CertificateManager:
    """Obtains, stores, renews and swaps the stream certificate of one config entry."""

    def __init__(self, hass: HomeAssistant, entry: ConfigEntry[Any]) -> None:
        """Bind to ``entry``; nothing runs before :meth:`async_initial_context`."""
        self.hass = hass
        self.entry = entry
        self._conf: dict[str, Any] = dict(entry.data)
        self.mode: str = self._conf.get(CONF_CERT_MODE, CERT_MODE_FILES)
        self.host: str = self._conf[CONF_HOST]
        self._store: Store[dict[str, Any]] = Store(
            hass, STORAGE_VERSION, _store_key(entry.entry_id), private=True
        )
        self._stored: dict[str, Any] = {}
        self._restreamer: Restreamer | None = None
        self.responder = TlsAlpnResponder()
        self._lock = asyncio.Lock()
        self._listeners: list[CALLBACK_TYPE] = []
        self._cancel_timer: CALLBACK_TYPE | None = None
        self._cancel_watch: CALLBACK_TYPE | None = None
        self._task: asyncio.Task[None] | None = None
        self._served: _Served | None = None
        self._files_signature: tuple[float, int, float, int] | None = None
        self._warned_chain = False
        self._closed = False
        self.status: str = STATUS_PENDING
        self.top_issuer: str | None = None
        self.preferred_matched: bool | None = None
        self.next_renewal: dt.datetime | None = None
        self.last_issued: dt.datetime | None = None
        self.last_error: str | None = None
        self.failures = 0

    # -- what others read ----------------------------------------------------------------

    @property
    def is_acme(self) -> bool:
        """True in the ACME modes."""
        return self.mode in ACME_MODES

    @property
    def served_info(self) -> CertificateInfo:
        """Facts about the certificate being served (the placeholder while pending)."""
        assert self._served is not None
        return self._served.info

    @property
    def closed(self) -> bool:
        """True once the entry is unloading."""
        return self._closed

    @property
    def expires(self) -> dt.datetime | None:
        """Expiry of the real certificate being served; None while only a placeholder."""
        if self._served is None or not self._served.real:
            return None
        return self._served.info.not_after

    @callback
    def async_add_listener(self, update: CALLBACK_TYPE) -> CALLBACK_TYPE:
        """Call ``update`` whenever the state changes; returns the unsubscribe callback."""
        self._listeners.append(update)

        @callback
        def _remove() -> None:
            self._listeners.remove(update)

        return _remove

    @callback
    def _notify(self) -> None:
        for update in list(self._listeners):
            update()

    def diagnostics(self) -> dict[str, Any]:
        """State, expiry and the issuer chain; never keys, never the host name."""
        served = self._served
        return {
            "mode": self.mode,
            "status": self.status,
            "temporary_certificate": served is not None and not served.real,
            "not_after": served.info.not_after.isoformat() if served else None,
            "issuer_chain": issuer_chain(served.chain_pem) if served and served.real else [],
            "top_issuer": self.top_issuer,
            "preferred_chain": self._conf.get(CONF_PREFERRED_CHAIN, DEFAULT_PREFERRED_CHAIN)
            if self.is_acme
            else None,
            "preferred_chain_matched": self.preferred_matched,
            "directory_url": directory_url(self._conf) if self.is_acme else None,
            "next_renewal": self.next_renewal.isoformat() if self.next_renewal else None,
            "last_issued": self.last_issued.isoformat() if self.last_issued else None,
            "consecutive_failures": self.failures,
            "last_error": self.last_error,
        }

    # -- life cycle ----------------------------------------------------------------------

    async def async_initial_context(self) -> ssl.SSLContext:
        """The context to start the front door with.

        Files mode: the validated files (raises :class:`CertificateError`). ACME modes:
        the stored certificate when it is still usable for this host and directory,
        else a temporary self-signed one.
        """
        if not self.is_acme:
            ctx, info, chain = await self.hass.async_add_executor_job(self._load_files)
            self._served = _Served(info, True, chain)
            self.top_issuer = top_issuer(split_chain(chain))
            self._files_signature = await self.hass.async_add_executor_job(self._signature)
            self.status = STATUS_VALID
            return ctx
        self._stored = await self._store.async_load() or {}
        stored = self._usable_stored()
        if stored is not None:
            chain, key = stored["chain"].encode(), stored["key"].encode()
            ctx = await self.hass.async_add_executor_job(context_from_pem, chain, key)
            self._served = _Served(chain_info(chain), True, chain)
            self.top_issuer = stored.get("top_issuer")
            self.preferred_matched = stored.get("preferred_matched")
            self.status = STATUS_VALID
            return ctx
        ctx, chain = await self.hass.async_add_executor_job(self._placeholder)
        self._served = _Served(chain_info(chain), False, chain)
        self.status = STATUS_PENDING
        return ctx

    def attach(self, restreamer: Restreamer) -> None:
        """Remember the restreamer; in TLS-ALPN-01 mode register the challenge handler.

        Called before the port opens, so the handler exists before the first order.
        """
        self._restreamer = restreamer
        if self.mode == CERT_MODE_ACME_TLS_ALPN:
            restreamer.add_alpn_handler(ACME_TLS_ALPN_PROTOCOL, self.responder.handler)

    async def async_start(self) -> None:
        """Start the first order / renewal schedule (ACME) or the file watch (files)."""
        if not self.is_acme:
            self._cancel_watch = async_track_time_interval(
                self.hass,
                self._async_watch_tick,
                dt.timedelta(seconds=FILES_POLL_SECONDS),
                name=f"{DOMAIN} certificate files",
            )
            return
        if self._served is not None and self._served.real:
            self._start_task(self._async_schedule(), "schedule renewal")
        else:
            self._start_task(self._async_order(), "first certificate")

    async def async_stop(self) -> None:
        """Cancel timers and the running order (its executor job finishes on its own)."""
        self._closed = True
        if self._cancel_timer is not None:
            self._cancel_timer()
            self._cancel_timer = None
        if self._cancel_watch is not None:
            self._cancel_watch()
            self._cancel_watch = None
        if self._task is not None and not self._task.done():
            self._task.cancel()
            await asyncio.wait([self._task])
        self._task = None

    def port_opened(self) -> None:
        """The stream port opened after it could not be bound.

        TLS-ALPN-01 validates through that port, so an order waiting on its backoff timer
        for the first certificate starts now instead.
        """
        if self.mode != CERT_MODE_ACME_TLS_ALPN or self._closed:
            return
        if (self._served is not None and self._served.real) or (
            self._task is not None and not self._task.done()
        ):
            return
        if self._cancel_timer is not None:
            self._cancel_timer()
            self._cancel_timer = None
        self._start_task(self._async_order(), "first certificate")

    async def async_renew_now(self) -> None:
        """The ``renew_certificate`` action: order now (ACME) or re-read the files.

        Raises HomeAssistantError when it fails (the old certificate stays in use).
        """
        if not self.is_acme:
            if not await self._async_check_files(force=True):
                raise HomeAssistantError(f"Certificate files not usable: {self.last_error}")
            return
        if not await self._async_order():
            raise HomeAssistantError(f"Certificate renewal failed: {self.last_error}")

    def _start_task(self, coro: Any, what: str) -> None:
        self._task = self.entry.async_create_background_task(
            self.hass, coro, f"{DOMAIN} {what}", eager_start=True
        )

    # -- ACME ----------------------------------------------------------------------------

    def _usable_stored(self) -> dict[str, Any] | None:
        cert = self._stored.get("certificate")
        if not cert or cert.get("host") != self.host:
            return None
        if cert.get("directory") != directory_url(self._conf):
            return None
        try:
            info = chain_info(cert["chain"].encode())
            if not key_matches(cert["chain"].encode(), cert["key"].encode()):
                return None
        except (ValueError, KeyError, TypeError):
            return None
        if info.not_after <= dt_util.utcnow():
            return None
        return dict(cert)

    def _placeholder(self) -> tuple[ssl.SSLContext, bytes]:
        key = generate_key(KEY_EC_P256)
        chain = self_signed(self.host, key)
        return context_from_pem(chain, private_key_pem(key)), chain

    def _solver(self) -> ChallengeSolver:
        if self.mode == CERT_MODE_ACME_DNS_DUCKDNS:
            return DuckDnsSolver(
                str(self._conf[CONF_DUCKDNS_TOKEN]),
                update_url=str(self._conf.get(CONF_DUCKDNS_UPDATE_URL) or "") or DUCKDNS_UPDATE_URL,
                nameservers=parse_dns_servers(self._conf.get(CONF_DNS_SERVERS)),
                propagation_timeout=float(
                    self._conf.get(CONF_PROPAGATION_SECONDS, DEFAULT_PROPAGATION_SECONDS)
                ),
            )
        return TlsAlpnSolver(self.responder)

    def _order_blocking(
        self, account: dict[str, Any] | None, solver: ChallengeSolver
    ) -> tuple[dict[str, Any], IssuedCertificate]:
        """Runs in the executor: account (created if needed) + a new certificate."""
        url = directory_url(self._conf)
        key_type = str(self._conf.get(CONF_KEY_TYPE) or KEY_EC_P256)
        if account is None or account.get("directory") != url:
            account = {"directory": url, "key": new_account_key(key_type).decode(), "uri": None}
        client = AcmeClient(
            url,
            account_key_pem=account["key"].encode(),
            account_uri=account.get("uri"),
            email=self._conf.get(CONF_EMAIL) or None,
            ca_bundle=self._conf.get(CONF_CA_BUNDLE) or None,
        )
        try:
            issued = client.obtain(
                [self.host],
                solver,
                key_type=key_type,
                preferred_chain=self._conf.get(CONF_PREFERRED_CHAIN, DEFAULT_PREFERRED_CHAIN),
            )
        finally:
            account = {**account, "uri": client.account_uri}
        return account, issued

    async def _async_order(self) -> bool:
        """Order a certificate and swap it in; on failure schedule a retry. True on success."""
        async with self._lock:
            if self._closed:
                return False
            if self._cancel_timer is not None:
                self._cancel_timer()
                self._cancel_timer = None
            account = self._stored.get("account")
            solver = self._solver()
            started = dt_util.utcnow()
            try:
                account, issued = await self.hass.async_add_executor_job(
                    self._order_blocking, account, solver
                )
                ctx = await self.hass.async_add_executor_job(
                    context_from_pem, issued.chain_pem, issued.key_pem
                )
            except (AcmeError, OSError, ssl.SSLError, ValueError) as err:
                await self._async_failed(str(err))
                return False
            if self.closed:  # unloaded while the order ran
                return False
            self.top_issuer = issued.top_issuer
            self.preferred_matched = issued.preferred_matched
            self.status = STATUS_VALID
            self.failures = 0
            self.last_error = None
            self.last_issued = dt_util.utcnow()
            info = chain_info(issued.chain_pem)
            # planned at once by the lifetime rule; ARI may move it earlier below
            self._set_timer(renewal_time(info.not_before, info.not_after))
            self._swap(ctx, issued.chain_pem)
            self._stored = {
                "account": account,
                "certificate": {
                    "host": self.host,
                    "directory": directory_url(self._conf),
                    "chain": issued.chain_pem.decode(),
                    "key": issued.key_pem.decode(),
                    "top_issuer": issued.top_issuer,
                    "preferred_matched": issued.preferred_matched,
                },
            }
            await self._store.async_save(self._stored)
            ir.async_delete_issue(self.hass, DOMAIN, ISSUE_CERTIFICATE_RENEWAL_FAILED)
            _LOGGER.info(
                "Stream certificate for %s issued in %.1f s, valid until %s (chain to %s)",
                self.host,
                (dt_util.utcnow() - started).total_seconds(),
                self.served_info.not_after.isoformat(),
                issued.top_issuer,
            )
            if not issued.preferred_matched and not self._warned_chain:
                self._warned_chain = True
                _LOGGER.warning(
                    "The ACME server offers no chain to %r (%d offered); serving the default "
                    "chain to %s",
                    self._conf.get(CONF_PREFERRED_CHAIN, DEFAULT_PREFERRED_CHAIN),
                    issued.chains_offered,
                    issued.top_issuer,
                )
        await self._async_schedule()
        return True

    async def _async_failed(self, error: str) -> None:
        self.failures += 1
        self.last_error = error
        served = self._served
        self.status = STATUS_RENEWAL_FAILED if served and served.real else STATUS_PENDING
        delay = retry_delay(self.failures)
        _LOGGER.warning(
            "Getting the stream certificate for %s failed (attempt %d): %s; retrying in %s",
            self.host,
            self.failures,
            error,
            delay,
        )
        now = dt_util.utcnow()
        if served is None or not served.real or needs_repair(served.info.not_after, now):
            ir.async_create_issue(
                self.hass,
                DOMAIN,
                ISSUE_CERTIFICATE_RENEWAL_FAILED,
                is_fixable=False,
                severity=ir.IssueSeverity.ERROR,
                translation_key=ISSUE_CERTIFICATE_RENEWAL_FAILED
                if served and served.real
                else f"{ISSUE_CERTIFICATE_RENEWAL_FAILED}_first",
                translation_placeholders={
                    "host": self.host,
                    "error": error,
                    "expires": served.info.not_after.isoformat() if served else "",
                },
            )
        self._set_timer(now + delay)
        self._notify()

    async def _async_schedule(self) -> None:
        """Set the renewal timer from the served certificate (and ARI when offered)."""
        served = self._served
        if served is None or not served.real or self._closed:
            return
        ari = await self.hass.async_add_executor_job(self._renewal_info_blocking, served.chain_pem)
        when = renewal_time(served.info.not_before, served.info.not_after, ari_time=ari)
        # Wake up daily before that to ask ARI again (a CA may ask for early renewal).
        self._set_timer(when, wake=min(when, dt_util.utcnow() + RENEWAL_INFO_RECHECK))
        self._notify()

    def _renewal_info_blocking(self, chain: bytes) -> dt.datetime | None:
        account = self._stored.get("account") or {}
        if not account.get("key"):
            return None
        try:
            client = AcmeClient(
                directory_url(self._conf),
                account_key_pem=account["key"].encode(),
                account_uri=account.get("uri"),
                ca_bundle=self._conf.get(CONF_CA_BUNDLE) or None,
                timeout=10,
            )
            return client.renewal_info(chain)
        except Exception:
            return None

    @callback
    def _set_timer(self, when: dt.datetime, *, wake: dt.datetime | None = None) -> None:
        """Order at ``when``; wake up at ``wake`` (earlier) to re-plan instead."""
        if self._cancel_timer is not None:
            self._cancel_timer()
        self.next_renewal = when

        @callback
        def _due(now: dt.datetime) -> None:
            self._cancel_timer = None
            if now < when:
                self._start_task(self._async_schedule(), "check renewal info")
            else:
                self._start_task(self._async_order(), "renew certificate")

        if self._closed:
            return
        self._cancel_timer = async_track_point_in_utc_time(
            self.hass, _due, max(wake or when, dt_util.utcnow())
        )

    @callback
    def _swap(self, ctx: ssl.SSLContext, chain: bytes) -> None:
        """New handshakes get ``ctx``; live sessions keep the context they started with."""
        assert self._restreamer is not None
        self._restreamer.set_ssl_context(ctx)
        self._served = _Served(chain_info(chain), True, chain)
        self._notify()

    # -- files ---------------------------------------------------------------------------

    def _load_files(self) -> tuple[ssl.SSLContext, CertificateInfo, bytes]:
        cert_file, key_file = self._conf[CONF_CERT_FILE], self._conf[CONF_KEY_FILE]
        info = load_and_validate(cert_file, key_file, host=self.host)
        ctx = server_context(cert_file, key_file)
        with open(cert_file, "rb") as handle:
            chain = handle.read()
        return ctx, info, chain

    def _signature(self) -> tuple[float, int, float, int] | None:
        try:
            cert = os.stat(self._conf[CONF_CERT_FILE])
            key = os.stat(self._conf[CONF_KEY_FILE])
        except OSError:
            return None
        return (cert.st_mtime, cert.st_size, key.st_mtime, key.st_size)

    async def _async_watch_tick(self, _now: dt.datetime) -> None:
        await self._async_check_files(force=False)

    async def _async_check_files(self, *, force: bool) -> bool:
        """Reload the files when they changed (or ``force``); True when usable."""
        async with self._lock:
            signature = await self.hass.async_add_executor_job(self._signature)
            if not force and signature == self._files_signature:
                return self.status == STATUS_VALID
            self._files_signature = signature
            try:
                ctx, info, chain = await self.hass.async_add_executor_job(self._load_files)
            except CertificateError as err:
                self.status = STATUS_INVALID
                self.last_error = err.detail
                _LOGGER.warning(
                    "The certificate files changed but are not usable (%s); still serving "
                    "the previous certificate",
                    err.detail,
                )
                async_raise_certificate_invalid(self.hass, err.detail)
                self._notify()
                return False
            self.status = STATUS_VALID
            self.top_issuer = top_issuer(split_chain(chain))
            self.last_error = None
            self.last_issued = dt_util.utcnow()
            self._swap(ctx, chain)
            ir.async_delete_issue(self.hass, DOMAIN, ISSUE_CERTIFICATE_INVALID)
            _LOGGER.info(
                "Reloaded the certificate files; valid until %s", info.not_after.isoformat()
            )
            return True


def _store_key(entry_id: str) -> str:
    return f"{DOMAIN}.{entry_id}.certificates"


async def async_remove_storage(hass: HomeAssistant, entry: ConfigEntry[Any]) -> None:
    """Delete the entry's stored account and certificate keys."""
    await Store[dict[str, Any]](hass, STORAGE_VERSION, _store_key(entry.entry_id)).async_remove()


@callback
def async_setup_services(hass: HomeAssistant) -> None:
    """Register the ``renew_certificate`` action (once, from ``async_setup``)."""

    async def _renew(call: ServiceCall) -> None:
        managers = [
            entry.runtime_data.certificates
            for entry in hass.config_entries.async_loaded_entries(DOMAIN)
        ]
        if not managers:
            raise ServiceValidationError(translation_domain=DOMAIN, translation_key="not_loaded")
        for manager in managers:
            await manager.async_renew_now()

    hass.services.async_register(DOMAIN, SERVICE_RENEW_CERTIFICATE, _renew, schema=vol.Schema({}))
