"""Config, options and reconfigure flows for Alexa Camera Bridge."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigEntry, ConfigFlow, ConfigFlowResult, OptionsFlow
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import selector

from .certfiles import CertificateError, load_and_validate
from .const import (
    CERT_MODE_FILES,
    CONF_CAMERAS,
    CONF_CERT_FILE,
    CONF_CERT_MODE,
    CONF_GRACE_SECONDS,
    CONF_HOST,
    CONF_KEEP_WARM,
    CONF_KEY_FILE,
    CONF_NAME,
    CONF_PORT,
    CONF_SCHEME,
    CONF_VIDEO_ONLY,
    DEFAULT_CERT_FILE,
    DEFAULT_GRACE_SECONDS,
    DEFAULT_KEY_FILE,
    DEFAULT_PORT,
    DEFAULT_SCHEME,
    DOMAIN,
    SCHEME_RTSP,
    SCHEME_RTSPS,
)
from .hostnames import host_error, normalize_host

PORT_SELECTOR = selector.NumberSelector(
    selector.NumberSelectorConfig(min=1, max=65535, step=1, mode=selector.NumberSelectorMode.BOX)
)
SCHEME_SELECTOR = selector.SelectSelector(
    selector.SelectSelectorConfig(options=[SCHEME_RTSP, SCHEME_RTSPS], translation_key=CONF_SCHEME)
)
CERT_MODE_SELECTOR = selector.SelectSelector(
    selector.SelectSelectorConfig(options=[CERT_MODE_FILES], translation_key=CONF_CERT_MODE)
)
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
                return await self.async_step_certificate_files()
        schema = _server_schema(user_input or {}).extend(
            {vol.Required(CONF_CERT_MODE, default=CERT_MODE_FILES): CERT_MODE_SELECTOR}
        )
        return self.async_show_form(step_id="user", data_schema=schema, errors=errors)

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
                return await self.async_step_cameras()
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
        """Change host, port, scheme or certificate files."""
        entry = self._get_reconfigure_entry()
        errors: dict[str, str] = {}
        placeholders = {"detail": ""}
        if user_input is not None:
            errors = _server_errors(user_input)
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
        return self.async_show_form(
            step_id="reconfigure",
            data_schema=_server_schema(defaults).extend(_files_schema(defaults).schema),
            errors=errors,
            description_placeholders=placeholders,
        )


class AlexaCamBridgeOptionsFlow(OptionsFlow):
    """Change the exposed cameras, their names and streaming options."""

    def __init__(self) -> None:
        """Start with nothing collected."""
        self._selection: dict[str, Any] = {}

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
                return self.async_create_entry(
                    data={
                        CONF_CAMERAS: _cameras_option(
                            user_input,
                            list(self._selection.get(CONF_VIDEO_ONLY, [])),
                            list(self._selection.get(CONF_KEEP_WARM, [])),
                        ),
                        CONF_GRACE_SECONDS: int(self._selection[CONF_GRACE_SECONDS]),
                    }
                )
        return self.async_show_form(
            step_id="names",
            data_schema=_names_schema(
                self.hass, cameras, self.config_entry.options.get(CONF_CAMERAS, {})
            ),
            errors=errors,
        )
