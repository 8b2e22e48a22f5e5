"""Constants for the Alexa Camera Bridge integration."""

from __future__ import annotations

from typing import Final

DOMAIN: Final = "alexa_cam_bridge"
MANUFACTURER: Final = "Alexa Camera Bridge"

# config entry data
CONF_HOST: Final = "host"
CONF_PORT: Final = "port"
CONF_SCHEME: Final = "scheme"
CONF_CERT_MODE: Final = "cert_mode"
CONF_CERT_FILE: Final = "cert_file"
CONF_KEY_FILE: Final = "key_file"

# config entry options
CONF_CAMERAS: Final = "cameras"  # {entity_id: {CONF_NAME, CONF_VIDEO_ONLY, CONF_KEEP_WARM}}
CONF_NAME: Final = "name"
CONF_VIDEO_ONLY: Final = "video_only"
CONF_KEEP_WARM: Final = "keep_warm"
CONF_GRACE_SECONDS: Final = "grace_seconds"
# Alexa events (the Event Gateway): the skill's "Alexa Skill Messaging" credentials, the
# region (auto-detected unless set), URL overrides for private deployments, and doorbells.
CONF_LWA_CLIENT_ID: Final = "lwa_client_id"
CONF_LWA_CLIENT_SECRET: Final = "lwa_client_secret"  # noqa: S105 - a config key
CONF_EVENTS_REGION: Final = "events_region"  # EVENTS_REGION_AUTO or "NA" / "EU" / "FE"
CONF_EVENT_GATEWAY_URL: Final = "event_gateway_url"
CONF_LWA_TOKEN_URL: Final = "lwa_token_url"  # noqa: S105 - a config key
CONF_DOORBELLS: Final = "doorbells"  # {camera entity_id: binary_sensor / event entity_id}
CONF_DOORBELL_KEEP_WARM: Final = "doorbell_keep_warm"
EVENTS_REGION_AUTO: Final = "auto"

SCHEME_RTSP: Final = "rtsp"
SCHEME_RTSPS: Final = "rtsps"
CERT_MODE_FILES: Final = "files"

DEFAULT_PORT: Final = 443
DEFAULT_SCHEME: Final = SCHEME_RTSP
DEFAULT_GRACE_SECONDS: Final = 30
DEFAULT_CERT_FILE: Final = "/ssl/fullchain.pem"
DEFAULT_KEY_FILE: Final = "/ssl/privkey.pem"

# Resolution advertised while a camera has never been probed (it is offline).
DEFAULT_WIDTH: Final = 1280
DEFAULT_HEIGHT: Final = 720

# Stream credentials minted for one InitializeCameraStreams call.
STREAM_TTL_SECONDS: Final = 900
STREAM_IDLE_TIMEOUT_SECONDS: Final = 30
SNAPSHOT_TTL_SECONDS: Final = 300

# How long a probe result is trusted, and how long a Discover waits for a probe.
PROBE_CACHE_SECONDS: Final = 600
PROBE_TIMEOUT_SECONDS: Final = 4.0
# Retry interval for binding the stream port after a failure.
LISTEN_RETRY_SECONDS: Final = 60

API_PATH: Final = "/api/alexa_cam_bridge/smart_home"
MAX_DIRECTIVE_BYTES: Final = 64 * 1024

# Alexa events: a camera's connectivity change is reported once it has settled this long.
CHANGE_REPORT_DEBOUNCE_SECONDS: Final = 10

ISSUE_PORT_UNAVAILABLE: Final = "port_unavailable"
ISSUE_EVENTS_RELINK: Final = "events_relink"
ISSUE_EVENTS_CLIENT_REJECTED: Final = "events_client_rejected"
ISSUE_EVENTS_SKILL_DISABLED: Final = "events_skill_disabled"
ISSUE_CERTIFICATE_INVALID: Final = "certificate_invalid"

# Certificates (ACME and files); see certificates.py and certs/.
CERT_MODE_ACME_TLS_ALPN: Final = "acme_tls_alpn"
CERT_MODE_ACME_DNS_DUCKDNS: Final = "acme_dns_duckdns"
DEFAULT_CERT_MODE: Final = CERT_MODE_ACME_TLS_ALPN
CONF_EMAIL: Final = "email"
CONF_AGREE_TOS: Final = "agree_tos"
CONF_STAGING: Final = "staging"
CONF_DIRECTORY_URL: Final = "directory_url"
CONF_CA_BUNDLE: Final = "ca_bundle"
CONF_KEY_TYPE: Final = "key_type"
CONF_PREFERRED_CHAIN: Final = "preferred_chain"
CONF_DUCKDNS_TOKEN: Final = "duckdns_token"  # noqa: S105 - a config key, not a secret
CONF_DUCKDNS_UPDATE_URL: Final = "duckdns_update_url"
CONF_DNS_SERVERS: Final = "dns_servers"
CONF_PROPAGATION_SECONDS: Final = "propagation_seconds"
DEFAULT_PROPAGATION_SECONDS: Final = 300
# How often certificate files are checked for changes.
FILES_POLL_SECONDS: Final = 60
SERVICE_RENEW_CERTIFICATE: Final = "renew_certificate"
ISSUE_CERTIFICATE_RENEWAL_FAILED: Final = "certificate_renewal_failed"
