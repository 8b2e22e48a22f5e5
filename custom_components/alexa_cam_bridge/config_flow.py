"""Config, options and reconfigure flows for Alexa Camera Bridge."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import voluptuous as vol
from cryptography import x509
from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import selector

from .certfiles import CertificateError, load_and_validate
from .certificates import parse_dns_servers
from .certs.chains import DEFAULT_PREFERRED_CHAIN
from .certs.material import KEY_EC_P256, KEY_TYPES
from .const import (
    CERT_MODE_ACME_DNS_DUCKDNS,
    CERT_MODE_ACME_TLS_ALPN,
    CERT_MODE_FILES,
    CONF_AGREE_TOS,
    CONF_CA_BUNDLE,
    CONF_CAMERAS,
    CONF_CERT_FILE,
    CONF_CERT_MODE,
    CONF_DIRECTORY_URL,
    CONF_DNS_SERVERS,
    CONF_DOORBELL_KEEP_WARM,
    CONF_DOORBELLS,
    CONF_DUCKDNS_TOKEN,
    CONF_DUCKDNS_UPDATE_URL,
    CONF_EMAIL,
    CONF_EVENT_GATEWAY_URL,
    CONF_EVENTS_REGION,
    CONF_GRACE_SECONDS,
    CONF_HOST,
    CONF_KEEP_WARM,
    CONF_KEY_FILE,
    CONF_KEY_TYPE,
    CONF_LWA_CLIENT_ID,
    CONF_LWA_CLIENT_SECRET,
    CONF_LWA_TOKEN_URL,
    CONF_NAME,
    CONF_PORT,
    CONF_PREFERRED_CHAIN,
    CONF_PROPAGATION_SECONDS,
    CONF_SCHEME,
    CONF_STAGING,
    CONF_VIDEO_ONLY,
    DEFAULT_CERT_FILE,
    DEFAULT_CERT_MODE,
    DEFAULT_GRACE_SECONDS,
    DEFAULT_KEY_FILE,
    DEFAULT_PORT,
    DEFAULT_PROPAGATION_SECONDS,
    DEFAULT_SCHEME,
    DOMAIN,
    EVENTS_REGION_AUTO,
    SCHEME_RTSP,
    SCHEME_RTSPS,
)
from .gateway import Region
from .hostnames import host_error, normalize_host

PORT_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(min=1, max=65535, step=1, mode=selector.NumberSelectorMode.BOX)
)
SCHEME_SELECTOR = selector.SelectSelector(
    selector.SelectSelectorConfig(options=[SCHEME_RTSP, SCHEME_RTSPS], translation_key=CONF_SCHEME)
)
CERT_MODE_SELECTOR = selector.SelectSelector(
    selector.SelectSelectorConfig(
        options=[CERT_MODE_ACME_TLS_ALPN, CERT_MODE_ACME_DNS_DUCKDNS, CERT_MODE_FILES],
        translation_key=CONF_CERT_MODE,
    )
)
KEY_TYPE_SELECTOR = selector.SelectSelector(
    selector.SelectSelectorConfig(options=list(KEY_TYPES), translation_key=CONF_KEY_TYPE)
)
EMAIL = selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.EMAIL))
URL = selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.URL))
SECRET = selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD))
BOOLEAN = selector.BooleanSelector()
SECONDS = selector.NumberSelector(
    selector.NumberSelectorConfig(
        min=0, max=3600, step=1, mode=selector.NumberSelectorMode.BOX, unit_of_measurement="s"
    )
)
_EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
CAMERAS_SELECTOR = selector.EntitySelector(
    selector.EntitySelectorConfig(domain="camera", multiple=True)
)
TEXT = selector.TextSelector()


def _server_schema(defaults: dict[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(CONF_HOST, default=defaults.get(CONF_HOST, vol.UNDEFINED)): TEXT,
            vol.Required(CONF_PORT, default=defaults.get(CONF_PORT, DEFAULT_PORT)): PORT_SELECTOR,
            vol.Required(
                CONF_SCHEME, default=defaults.get(CONF_SCHEME, DEFAULT_SCHEME)
            ): SCHEME_SELECTOR,
        }
    )


def _files_schema(defaults: dict[str, Any]) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(
                CONF_CERT_FILE, default=defaults.get(CONF_CERT_FILE, DEFAULT_CERT_FILE)
            ): TEXT,
            vol.Required(
                CONF_KEY_FILE, default=defaults.get(CONF_KEY_FILE, DEFAULT_KEY_FILE)
            ): TEXT,
        }
    )


def _acme_schema(defaults: dict[str, Any], advanced: bool) -> vol.Schema:
    schema: dict[Any, Any] = {
        vol.Required(CONF_EMAIL, default=defaults.get(CONF_EMAIL, vol.UNDEFINED)): EMAIL,
        vol.Required(CONF_AGREE_TOS, default=bool(defaults.get(CONF_AGREE_TOS))): BOOLEAN,
        vol.Required(CONF_STAGING, default=bool(defaults.get(CONF_STAGING))): BOOLEAN,
    }
    if advanced:
        schema.update(
            {
                vol.Optional(
                    CONF_DIRECTORY_URL,
                    description={"suggested_value": defaults.get(CONF_DIRECTORY_URL)},
                ): URL,
                vol.Optional(
                    CONF_CA_BUNDLE,
                    description={"suggested_value": defaults.get(CONF_CA_BUNDLE)},
                ): TEXT,
                vol.Required(
                    CONF_KEY_TYPE, default=defaults.get(CONF_KEY_TYPE, KEY_EC_P256)
                ): KEY_TYPE_SELECTOR,
                vol.Required(
                    CONF_PREFERRED_CHAIN,
                    default=defaults.get(CONF_PREFERRED_CHAIN, DEFAULT_PREFERRED_CHAIN),
                ): TEXT,
            }
        )
    return vol.Schema(schema)


def _ca_bundle_error(path: str) -> str | None:
    """None when ``path`` is a readable PEM file with at least one certificate."""
    try:
        data = Path(path).read_bytes()
        x509.load_pem_x509_certificates(data)
    except (OSError, ValueError):
        return "ca_bundle_invalid"
    return None


def _acme_errors(user_input: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not _EMAIL_RE.match(str(user_input.get(CONF_EMAIL, "")).strip()):
        errors[CONF_EMAIL] = "invalid_email"
    if not user_input.get(CONF_AGREE_TOS):
        errors[CONF_AGREE_TOS] = "must_agree_tos"
    url = str(user_input.get(CONF_DIRECTORY_URL) or "").strip()
    if url and not url.startswith("https://"):
        errors[CONF_DIRECTORY_URL] = "invalid_directory_url"
    return errors


def _clean_acme(user_input: dict[str, Any]) -> dict[str, Any]:
    return {
        CONF_EMAIL: str(user_input[CONF_EMAIL]).strip(),
        CONF_AGREE_TOS: True,
        CONF_STAGING: bool(user_input.get(CONF_STAGING)),
        CONF_DIRECTORY_URL: str(user_input.get(CONF_DIRECTORY_URL) or "").strip(),
        CONF_CA_BUNDLE: str(user_input.get(CONF_CA_BUNDLE) or "").strip(),
        CONF_KEY_TYPE: user_input.get(CONF_KEY_TYPE, KEY_EC_P256),
        CONF_PREFERRED_CHAIN: str(
            user_input.get(CONF_PREFERRED_CHAIN, DEFAULT_PREFERRED_CHAIN)
        ).strip(),
    }


def _duckdns_schema(defaults: dict[str, Any], advanced: bool) -> vol.Schema:
    schema: dict[Any, Any] = {
        vol.Required(
            CONF_DUCKDNS_TOKEN, default=defaults.get(CONF_DUCKDNS_TOKEN, vol.UNDEFINED)
        ): SECRET,
    }
    if advanced:
        schema.update(
            {
                vol.Optional(
                    CONF_DUCKDNS_UPDATE_URL,
                    description={"suggested_value": defaults.get(CONF_DUCKDNS_UPDATE_URL)},
                ): URL,
                vol.Optional(
                    CONF_DNS_SERVERS,
                    description={"suggested_value": defaults.get(CONF_DNS_SERVERS)},
                ): TEXT,
                vol.Required(
                    CONF_PROPAGATION_SECONDS,
                    default=defaults.get(CONF_PROPAGATION_SECONDS, DEFAULT_PROPAGATION_SECONDS),
                ): SECONDS,
            }
        )
    return vol.Schema(schema)


def _duckdns_errors(host: str, user_input: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if not host.endswith(".duckdns.org"):
        errors["base"] = "not_duckdns_host"
    if not str(user_input.get(CONF_DUCKDNS_TOKEN, "")).strip():
        errors[CONF_DUCKDNS_TOKEN] = "invalid_token"
    url = str(user_input.get(CONF_DUCKDNS_UPDATE_URL) or "").strip()
    if url and not url.startswith(("https://", "http://")):
        errors[CONF_DUCKDNS_UPDATE_URL] = "invalid_url"
    servers = str(user_input.get(CONF_DNS_SERVERS) or "")
    try:
        parse_dns_servers(servers)
    except ValueError:
        errors[CONF_DNS_SERVERS] = "invalid_dns_servers"
    return errors


def _clean_duckdns(user_input: dict[str, Any]) -> dict[str, Any]:
    return {
        CONF_DUCKDNS_TOKEN: str(user_input[CONF_DUCKDNS_TOKEN]).strip(),
        CONF_DUCKDNS_UPDATE_URL: str(user_input.get(CONF_DUCKDNS_UPDATE_URL) or "").strip(),
        CONF_DNS_SERVERS: str(user_input.get(CONF_DNS_SERVERS) or "").strip(),
        CONF_PROPAGATION_SECONDS: int(
            user_input.get(CONF_PROPAGATION_SECONDS, DEFAULT_PROPAGATION_SECONDS)
        ),
    }


def _server_errors(user_input: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    if (err := host_error(str(user_input[CONF_HOST]))) is not None:
        errors[CONF_HOST] = err
    return errors


def _clean_server(user_input: dict[str, Any]) -> dict[str, Any]:
    return {
        CONF_HOST: normalize_host(str(user_input[CONF_HOST])),
        CONF_PORT: int(user_input[CONF_PORT]),
        CONF_SCHEME: user_input[CONF_SCHEME],
    }


async def _certificate_errors(
    hass: HomeAssistant, cert_file: str, key_file: str, host: str
) -> tuple[dict[str, str], dict[str, str]]:
    """Validate certificate files in the executor: (errors, description placeholders)."""
    try:
        await hass.async_add_executor_job(lambda: load_and_validate(cert_file, key_file, host=host))
    except CertificateError as err:
        field = CONF_KEY_FILE if err.reason.startswith("key_") else CONF_CERT_FILE
        return {field: err.reason}, {"detail": err.detail}
    return {}, {"detail": ""}


def _camera_name(hass: HomeAssistant, entity_id: str) -> str:
    state = hass.states.get(entity_id)
    if state is not None and (name := state.attributes.get("friendly_name")):
        return str(name)
    return entity_id.split(".", 1)[-1].replace("_", " ").title()


def _names_schema(
    hass: HomeAssistant, entity_ids: list[str], current: dict[str, dict[str, Any]]
) -> vol.Schema:
    return vol.Schema(
        {
            vol.Required(
                entity_id,
                default=current.get(entity_id, {}).get(CONF_NAME) or _camera_name(hass, entity_id),
            ): TEXT
            for entity_id in entity_ids
        }
    )


def _names_errors(user_input: dict[str, Any]) -> dict[str, str]:
    errors: dict[str, str] = {}
    seen: set[str] = set()
    for entity_id, name in user_input.items():
        key = " ".join(str(name).split()).casefold()
        if not key:
            errors[entity_id] = "empty_name"
        elif key in seen:
            errors[entity_id] = "duplicate_name"
        seen.add(key)
    return errors


def _cameras_option(
    names: dict[str, Any],
    video_only: list[str],
    keep_warm: list[str],
) -> dict[str, dict[str, Any]]:
    return {
        entity_id: {
            CONF_NAME: " ".join(str(name).split()),
            CONF_VIDEO_ONLY: entity_id in video_only,
            CONF_KEEP_WARM: entity_id in keep_warm,
        }
        for entity_id, name in names.items()
    }


class AlexaCamBridgeConfigFlow(ConfigFlow, domain=DOMAIN):
    """Set up the bridge: stream host, certificate, cameras."""

    VERSION = 1

    def __init__(self) -> None:
        """Start with nothing collected."""
        self._data: dict[str, Any] = {}
        self._cameras: list[str] = []
        self._reconfiguring = False

    @staticmethod
    @callback
    def async_get_options_flow(config_entry: ConfigEntry) -> OptionsFlow:
        """Return the options flow."""
        return AlexaCamBridgeOptionsFlow()

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Stream host, port, URI scheme and certificate mode."""
        await self.async_set_unique_id(DOMAIN)
        self._abort_if_unique_id_configured()
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _server_errors(user_input)
            if not errors:
                self._data = {
                    **_clean_server(user_input),
                    CONF_CERT_MODE: user_input[CONF_CERT_MODE],
                }
                return await self._async_step_certificate_mode()
        schema = _server_schema(user_input or {}).extend(
            {vol.Required(CONF_CERT_MODE, default=DEFAULT_CERT_MODE): CERT_MODE_SELECTOR}
        )
        return self.async_show_form(step_id="user", data_schema=schema, errors=errors)

    async def _async_step_certificate_mode(self) -> ConfigFlowResult:
        """The step that asks the details of the chosen certificate mode."""
        if self._data[CONF_CERT_MODE] == CERT_MODE_FILES:
            return await self.async_step_certificate_files()
        return await self.async_step_acme()

    async def _async_certificate_done(self) -> ConfigFlowResult:
        """Certificate settings complete: on to the cameras, or save (reconfigure)."""
        if self._reconfiguring:
            return self.async_update_reload_and_abort(
                self._get_reconfigure_entry(), title=self._data[CONF_HOST], data=self._data
            )
        return await self.async_step_cameras()

    async def async_step_acme(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """ACME account: e-mail, terms of service, staging; advanced: directory and keys.

        The certificate itself is ordered after the entry is set up.
        """
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _acme_errors(user_input)
            bundle = str(user_input.get(CONF_CA_BUNDLE) or "").strip()
            if bundle and (err := await self.hass.async_add_executor_job(_ca_bundle_error, bundle)):
                errors[CONF_CA_BUNDLE] = err
            if not errors:
                self._data.update(_clean_acme(user_input))
                if self._data[CONF_CERT_MODE] == CERT_MODE_ACME_DNS_DUCKDNS:
                    return await self.async_step_duckdns()
                return await self._async_certificate_done()
        return self.async_show_form(
            step_id="acme",
            data_schema=_acme_schema(user_input or self._data, self.show_advanced_options),
            errors=errors,
            description_placeholders={"host": self._data[CONF_HOST]},
        )

    async def async_step_duckdns(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """DuckDNS token for DNS-01 (LAN-only set-ups: nothing needs forwarding)."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _duckdns_errors(self._data[CONF_HOST], user_input)
            if not errors:
                self._data.update(_clean_duckdns(user_input))
                return await self._async_certificate_done()
        return self.async_show_form(
            step_id="duckdns",
            data_schema=_duckdns_schema(user_input or self._data, self.show_advanced_options),
            errors=errors,
            description_placeholders={"host": self._data[CONF_HOST]},
        )

    async def async_step_certificate_files(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Paths of the certificate chain and its private key."""
        errors: dict[str, str] = {}
        placeholders = {"detail": "", "host": self._data[CONF_HOST]}
        if user_input is not None:
            cert_file = str(user_input[CONF_CERT_FILE]).strip()
            key_file = str(user_input[CONF_KEY_FILE]).strip()
            errors, detail = await _certificate_errors(
                self.hass, cert_file, key_file, self._data[CONF_HOST]
            )
            placeholders.update(detail)
            if not errors:
                self._data[CONF_CERT_FILE] = cert_file
                self._data[CONF_KEY_FILE] = key_file
                return await self._async_certificate_done()
        return self.async_show_form(
            step_id="certificate_files",
            data_schema=_files_schema(user_input or {}),
            errors=errors,
            description_placeholders=placeholders,
        )

    async def async_step_cameras(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Which cameras Alexa may show."""
        errors: dict[str, str] = {}
        if user_input is not None:
            self._cameras = list(user_input.get(CONF_CAMERAS, []))
            if self._cameras:
                return await self.async_step_names()
            errors[CONF_CAMERAS] = "no_cameras"
        return self.async_show_form(
            step_id="cameras",
            data_schema=vol.Schema({vol.Required(CONF_CAMERAS): CAMERAS_SELECTOR}),
            errors=errors,
        )

    async def async_step_names(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The name Alexa hears for each camera."""
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _names_errors(user_input)
            if not errors:
                return self.async_create_entry(
                    title=self._data[CONF_HOST],
                    data=self._data,
                    options={
                        CONF_CAMERAS: _cameras_option(user_input, [], []),
                        CONF_GRACE_SECONDS: DEFAULT_GRACE_SECONDS,
                    },
                )
        return self.async_show_form(
            step_id="names",
            data_schema=_names_schema(self.hass, self._cameras, {}),
            errors=errors,
        )

    async def async_step_reconfigure(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Change host, port, scheme, certificate mode or certificate files.

        The files are on this form while the entry uses them; another mode continues with
        that mode's step.
        """
        entry = self._get_reconfigure_entry()
        current = entry.data.get(CONF_CERT_MODE, CERT_MODE_FILES)
        errors: dict[str, str] = {}
        placeholders = {"detail": ""}
        if user_input is not None:
            errors = _server_errors(user_input)
            mode = user_input.get(CONF_CERT_MODE, current)
            if not errors and not (mode == CERT_MODE_FILES == current):
                self._reconfiguring = True
                self._data = {**entry.data, **_clean_server(user_input), CONF_CERT_MODE: mode}
                return await self._async_step_certificate_mode()
            if not errors:
                server = _clean_server(user_input)
                cert_file = str(user_input[CONF_CERT_FILE]).strip()
                key_file = str(user_input[CONF_KEY_FILE]).strip()
                errors, detail = await _certificate_errors(
                    self.hass, cert_file, key_file, server[CONF_HOST]
                )
                placeholders.update(detail)
                if not errors:
                    return self.async_update_reload_and_abort(
                        entry,
                        title=server[CONF_HOST],
                        data_updates={
                            **server,
                            CONF_CERT_FILE: cert_file,
                            CONF_KEY_FILE: key_file,
                        },
                    )
        defaults = user_input or dict(entry.data)
        schema = _server_schema(defaults).extend(
            {vol.Required(CONF_CERT_MODE, default=current): CERT_MODE_SELECTOR}
        )
        if current == CERT_MODE_FILES:
            schema = schema.extend(_files_schema(defaults).schema)
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=schema,
            errors=errors,
            description_placeholders=placeholders,
        )


# -- options: Alexa events ------------------------------------------------------------------

#: Options-flow field (not stored): go on to the Alexa events step after the names.
CONF_CONFIGURE_EVENTS = "configure_events"
_EVENT_OPTION_KEYS = (
    CONF_LWA_CLIENT_ID,
    CONF_LWA_CLIENT_SECRET,
    CONF_EVENTS_REGION,
    CONF_EVENT_GATEWAY_URL,
    CONF_LWA_TOKEN_URL,
    CONF_DOORBELLS,
    CONF_DOORBELL_KEEP_WARM,
)
EVENTS_REGION_SELECTOR = selector.SelectSelector(
    selector.SelectSelectorConfig(
        options=[EVENTS_REGION_AUTO, *(region.value for region in Region)],
        translation_key=CONF_EVENTS_REGION,
    )
)
DOORBELL_SELECTOR = selector.EntitySelector(
    selector.EntitySelectorConfig(domain=["binary_sensor", "event"])
)
SECRET = selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.PASSWORD))
URL = selector.TextSelector(selector.TextSelectorConfig(type=selector.TextSelectorType.URL))
_URL_RE = re.compile(r"https?://[^\s/]+(/\S*)?")


def _suggested(value: Any) -> dict[str, Any]:
    return {"suggested_value": value} if value else {}


def _events_schema(options: Mapping[str, Any], cameras: list[str], advanced: bool) -> vol.Schema:
    """LWA credentials (the secret is never sent back), region, doorbell per camera."""
    links: Mapping[str, Any] = options.get(CONF_DOORBELLS) or {}
    fields: dict[Any, Any] = {
        vol.Optional(
            CONF_LWA_CLIENT_ID, description=_suggested(options.get(CONF_LWA_CLIENT_ID))
        ): TEXT,
        vol.Optional(CONF_LWA_CLIENT_SECRET): SECRET,
        vol.Required(
            CONF_EVENTS_REGION, default=options.get(CONF_EVENTS_REGION, EVENTS_REGION_AUTO)
        ): EVENTS_REGION_SELECTOR,
    }
    for camera in cameras:
        fields[vol.Optional(camera, description=_suggested(links.get(camera)))] = DOORBELL_SELECTOR
    fields[
        vol.Required(
            CONF_DOORBELL_KEEP_WARM, default=bool(options.get(CONF_DOORBELL_KEEP_WARM, False))
        )
    ] = selector.BooleanSelector()
    if advanced:
        for key in (CONF_EVENT_GATEWAY_URL, CONF_LWA_TOKEN_URL):
            fields[vol.Optional(key, description=_suggested(options.get(key)))] = URL
    return vol.Schema(fields)


def _events_options(
    user_input: Mapping[str, Any],
    current: Mapping[str, Any],
    cameras: list[str],
    advanced: bool,
) -> tuple[dict[str, Any], dict[str, str]]:
    """The Alexa events options from the form, and its errors.

    An empty secret keeps the saved one; an empty client id turns events off (both
    credentials are dropped). The URL overrides are only editable in advanced mode.
    """
    errors: dict[str, str] = {}
    result: dict[str, Any] = {
        CONF_EVENTS_REGION: user_input.get(CONF_EVENTS_REGION, EVENTS_REGION_AUTO),
        CONF_DOORBELLS: {c: str(user_input[c]) for c in cameras if user_input.get(c)},
        CONF_DOORBELL_KEEP_WARM: bool(user_input.get(CONF_DOORBELL_KEEP_WARM, False)),
    }
    client_id = str(user_input.get(CONF_LWA_CLIENT_ID) or "").strip()
    secret = str(user_input.get(CONF_LWA_CLIENT_SECRET) or "").strip()
    if client_id:
        secret = secret or str(current.get(CONF_LWA_CLIENT_SECRET) or "")
        if not secret:
            errors[CONF_LWA_CLIENT_SECRET] = "secret_required"
        result[CONF_LWA_CLIENT_ID] = client_id
        result[CONF_LWA_CLIENT_SECRET] = secret
    elif secret:
        errors[CONF_LWA_CLIENT_ID] = "client_id_required"
    for key in (CONF_EVENT_GATEWAY_URL, CONF_LWA_TOKEN_URL):
        url = str((user_input if advanced else current).get(key) or "").strip()
        if url and not _URL_RE.fullmatch(url):
            errors[key] = "invalid_url"
        elif url:
            result[key] = url
    return result, errors


class AlexaCamBridgeOptionsFlow(OptionsFlow):
    """Change the exposed cameras, their names and streaming options, and Alexa events."""

    def __init__(self) -> None:
        """Start with nothing collected."""
        self._selection: dict[str, Any] = {}
        self._cameras_option: dict[str, dict[str, Any]] = {}

    async def async_step_init(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Cameras and per-camera options."""
        current: dict[str, dict[str, Any]] = self.config_entry.options.get(CONF_CAMERAS, {})
        errors: dict[str, str] = {}
        if user_input is not None:
            if user_input.get(CONF_CAMERAS):
                self._selection = user_input
                return await self.async_step_names()
            errors[CONF_CAMERAS] = "no_cameras"
        defaults = user_input or {
            CONF_CAMERAS: list(current),
            CONF_VIDEO_ONLY: [e for e, c in current.items() if c.get(CONF_VIDEO_ONLY)],
            CONF_KEEP_WARM: [e for e, c in current.items() if c.get(CONF_KEEP_WARM)],
            CONF_GRACE_SECONDS: self.config_entry.options.get(
                CONF_GRACE_SECONDS, DEFAULT_GRACE_SECONDS
            ),
        }
        schema = vol.Schema(
            {
                vol.Required(CONF_CAMERAS, default=defaults[CONF_CAMERAS]): CAMERAS_SELECTOR,
                vol.Optional(CONF_VIDEO_ONLY, default=defaults[CONF_VIDEO_ONLY]): CAMERAS_SELECTOR,
                vol.Optional(CONF_KEEP_WARM, default=defaults[CONF_KEEP_WARM]): CAMERAS_SELECTOR,
                vol.Required(
                    CONF_GRACE_SECONDS, default=defaults[CONF_GRACE_SECONDS]
                ): selector.NumberSelector(
                    selector.NumberSelectorConfig(
                        min=0,
                        max=3600,
                        step=1,
                        mode=selector.NumberSelectorMode.BOX,
                        unit_of_measurement="s",
                    )
                ),
                vol.Required(CONF_CONFIGURE_EVENTS, default=False): selector.BooleanSelector(),
            }
        )
        return self.async_show_form(step_id="init", data_schema=schema, errors=errors)

    async def async_step_names(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """The name Alexa hears for each camera."""
        cameras: list[str] = list(self._selection[CONF_CAMERAS])
        errors: dict[str, str] = {}
        if user_input is not None:
            errors = _names_errors(user_input)
            if not errors:
                self._cameras_option = _cameras_option(
                    user_input,
                    list(self._selection.get(CONF_VIDEO_ONLY, [])),
                    list(self._selection.get(CONF_KEEP_WARM, [])),
                )
                if self._selection.get(CONF_CONFIGURE_EVENTS):
                    return await self.async_step_events()
                # the Alexa events settings are kept as they are
                return self.async_create_entry(data=self._new_options({}))
        return self.async_show_form(
            step_id="names",
            data_schema=_names_schema(
                self.hass, cameras, self.config_entry.options.get(CONF_CAMERAS, {})
            ),
            errors=errors,
        )

    async def async_step_events(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Alexa events: the skill's messaging credentials, region and doorbells."""
        cameras = list(self._cameras_option)
        errors: dict[str, str] = {}
        if user_input is not None:
            events, errors = _events_options(
                user_input, self.config_entry.options, cameras, self.show_advanced_options
            )
            if not errors:
                return self.async_create_entry(data=self._new_options(events))
        return self.async_show_form(
            step_id="events",
            data_schema=_events_schema(
                user_input or self.config_entry.options, cameras, self.show_advanced_options
            ),
            errors=errors,
        )

    def _new_options(self, events: dict[str, Any] | None) -> dict[str, Any]:
        """The cameras collected so far, with ``events`` replacing the events settings
        (``{}`` keeps the current ones); other options are kept."""
        current = dict(self.config_entry.options)
        if events:
            current = {k: v for k, v in current.items() if k not in _EVENT_OPTION_KEYS}
        return {
            **current,
            CONF_CAMERAS: self._cameras_option,
            CONF_GRACE_SECONDS: int(self._selection[CONF_GRACE_SECONDS]),
            **(events or {}),
        }
