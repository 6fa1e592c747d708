"""Turn an Airflow connection into databricks-sdk ``Config`` arguments.

Each credential strategy is a small named function, tried in order, in the spirit of the SDK's own
``DefaultCredentials``: the first one whose fields are present decides how login/password are read.
Everything here is pure data handling (no network, no SDK import) so that a bad connection fails fast,
with a message naming the field, before any request.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

#: Defaults that keep a task from hanging: the SDK's own defaults retry for 300 s, which blocks
#: ``Config()`` for five minutes on an unreachable host (its metadata probe uses the same budget).
DEFAULT_HTTP_TIMEOUT_SECONDS = 30
DEFAULT_RETRY_TIMEOUT_SECONDS = 60

#: The official apache-airflow-providers-databricks extras, mapped to databricks-sdk ``Config`` names.
OFFICIAL_EXTRA_ALIASES: dict[str, str] = {
    "token": "token",
    "use_azure_managed_identity": "azure_use_msi",
    "azure_managed_identity_client_id": "azure_client_id",
    "azure_resource_id": "azure_workspace_resource_id",
}

#: Extras that this provider (or the official one) reads itself and that are not ``Config`` attributes.
PROVIDER_EXTRAS = frozenset(
    {
        "warehouse_id",  # LakeflowSqlHook
        "service_principal_oauth",  # official provider: login/password are an OAuth M2M service principal
        "retry_limit",  # official provider; accepted and ignored (retries are bounded by time here)
        "retry_delay",
        "http_path",  # official SQL connections; accepted for compatibility
        "max_requests_per_second",  # the workspace's request budget in this process (hooks/_workspace_gate.py)
    }
)

#: Config attributes whose value is a credential and must be masked wherever it could be printed.
SECRET_FIELDS = frozenset(
    {"token", "password", "client_secret", "azure_client_secret", "google_credentials", "metadata_service_url"}
)

_BOOL_FIELDS = frozenset({"azure_use_msi", "service_principal_oauth", "use_azure_managed_identity"})


class ConnectionConfigError(ValueError):
    """The Airflow connection cannot be turned into databricks-sdk settings."""


@dataclass(frozen=True)
class ConnectionSettings:
    """What the hook needs from an Airflow connection, validated and free of Airflow types."""

    conn_id: str
    #: keyword arguments for ``databricks.sdk.config.Config``
    config_kwargs: Mapping[str, Any]
    #: the strategy that read the connection, for logs ("pat", "oauth-m2m", "default chain", ...)
    strategy: str
    #: extras that are not Config attributes (e.g. ``warehouse_id``)
    provider_extras: Mapping[str, Any] = field(default_factory=dict)

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(str(v) for k, v in self.config_kwargs.items() if k in SECRET_FIELDS and v)

    @property
    def host(self) -> str | None:
        return self.config_kwargs.get("host")

    @cached_property
    def _fingerprint(self) -> str:
        import hashlib

        blob = json.dumps(dict(self.config_kwargs), sort_keys=True, default=str).encode()
        return f"{self.conn_id}:{hashlib.sha256(blob).hexdigest()[:32]}"

    def fingerprint(self) -> str:
        """A stable key for per-process caches; secrets are hashed, never kept in the key itself. Computed once
        per settings object (the triggers of a process share one per connection)."""
        return self._fingerprint


def config_attribute_names() -> frozenset[str]:
    from databricks.sdk.config import Config

    return frozenset(a.name for a in Config.attributes()) | {"retry_timeout_seconds", "http_timeout_seconds"}


def parse_extras(raw: Any) -> dict[str, Any]:
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise ConnectionConfigError(
            f"The connection's 'extra' is not valid JSON: {exc}. Fix: write it as a JSON object."
        ) from None
    if not isinstance(value, dict):
        raise ConnectionConfigError('The connection\'s \'extra\' must be a JSON object, e.g. {"auth_type": "pat"}.')
    return value


def _as_bool(key: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "1", "yes"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"false", "0", "no", ""}:
        return False
    raise ConnectionConfigError(f"Connection extra '{key}' must be true or false, got {value!r}.")


def normalize_extras(extras: Mapping[str, Any], known: frozenset[str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split extras into Config kwargs and provider extras; unknown keys are an error naming the closest key."""
    config: dict[str, Any] = {}
    provider: dict[str, Any] = {}
    valid = sorted(known | set(OFFICIAL_EXTRA_ALIASES) | PROVIDER_EXTRAS)
    for key, value in extras.items():
        if key in _BOOL_FIELDS:
            value = _as_bool(key, value)
        if key in PROVIDER_EXTRAS:
            provider[key] = value
        elif key in OFFICIAL_EXTRA_ALIASES:
            config[OFFICIAL_EXTRA_ALIASES[key]] = value
        elif key in known:
            config[key] = value
        else:
            close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
            hint = f" Did you mean '{close[0]}'?" if close else ""
            raise ConnectionConfigError(
                f"Unknown connection extra '{key}'.{hint} Extras take databricks-sdk Config attribute names "
                "(auth_type, client_id, azure_tenant_id, profile, http_timeout_seconds, ...) or the official "
                "Databricks provider's (token, use_azure_managed_identity, azure_resource_id, ...)."
            )
    for key in ("http_timeout_seconds", "retry_timeout_seconds"):
        if key in config:
            try:
                config[key] = int(config[key])
            except (TypeError, ValueError):
                raise ConnectionConfigError(f"Connection extra '{key}' must be a whole number of seconds.") from None
            if config[key] <= 0:
                raise ConnectionConfigError(f"Connection extra '{key}' must be positive, got {config[key]}.")
    if "max_requests_per_second" in provider:
        provider["max_requests_per_second"] = _positive_rate(provider["max_requests_per_second"])
    return config, provider


def _positive_rate(value: Any) -> float:
    try:
        rate = float(value)
    except (TypeError, ValueError):
        rate = float("nan")
    if not (rate > 0 and rate != float("inf")) or isinstance(value, bool):
        raise ConnectionConfigError(
            f"Connection extra 'max_requests_per_second' must be a positive number of requests per second, got "
            f"{value!r}. Fix: e.g. 20, or remove it for the default."
        )
    return rate


#: Azure Instance Metadata Service token endpoint (managed identities) and the AzureDatabricks application id.
AZURE_IMDS_TOKEN_URL = "http://169.254.169.254/metadata/identity/oauth2/token"
AZURE_DATABRICKS_APP_ID = "2ff814a6-3304-4ab8-85cb-cd0e6f879c1d"
AZURE_MANAGEMENT_RESOURCE = "https://management.core.windows.net/"


def fetch_azure_msi_token(resource: str, client_id: str | None, timeout: float) -> tuple[str, float]:
    """One token from the Azure Instance Metadata Service: ``(access_token, expires_on epoch seconds)``."""
    import requests

    params = {"api-version": "2018-02-01", "resource": resource}
    if client_id:
        params["client_id"] = client_id
    response = requests.get(AZURE_IMDS_TOKEN_URL, params=params, headers={"Metadata": "true"}, timeout=timeout)
    response.raise_for_status()
    body = response.json()
    return body["access_token"], float(body["expires_on"])


class AzureManagedIdentity:
    """databricks-sdk ``CredentialsStrategy`` for Azure managed identities (``azure_use_msi``).

    databricks-sdk 0.162 (Python) has no managed-identity strategy: ``auth_type="azure-msi"`` alone ends in
    "cannot configure default credentials". This one asks IMDS for tokens (cached by the SDK's ``Refreshable``) and,
    when ``azure_workspace_resource_id`` is set, adds the workspace and management-token headers as the SDK's Azure
    service principal does. Stateless, so one instance is shared and ``repr`` is stable (cache fingerprints).
    """

    def auth_type(self) -> str:
        return "azure-msi"

    def __repr__(self) -> str:
        return "AzureManagedIdentity()"

    def __call__(self, cfg: Any) -> Callable[[], dict[str, str]]:
        from datetime import datetime

        from databricks.sdk import oauth

        client_id = cfg.azure_client_id
        timeout = float(cfg.http_timeout_seconds or DEFAULT_HTTP_TIMEOUT_SECONDS)

        class _ImdsToken(oauth.Refreshable):
            def __init__(self, resource: str) -> None:
                super().__init__(disable_async=True)
                self._resource = resource

            def refresh(self) -> oauth.Token:
                access_token, expires_on = fetch_azure_msi_token(self._resource, client_id, timeout)
                return oauth.Token(access_token, "Bearer", expiry=datetime.fromtimestamp(expires_on))

        arm = getattr(getattr(cfg, "environment", None), "azure_environment", None)
        workspace = _ImdsToken(getattr(cfg, "effective_azure_login_app_id", None) or AZURE_DATABRICKS_APP_ID)
        management = _ImdsToken(getattr(arm, "service_management_endpoint", None) or AZURE_MANAGEMENT_RESOURCE)

        def headers() -> dict[str, str]:
            out = {"Authorization": f"Bearer {workspace.token().access_token}"}
            if cfg.azure_workspace_resource_id:
                out["X-Databricks-Azure-Workspace-Resource-Id"] = cfg.azure_workspace_resource_id
                out["X-Databricks-Azure-SP-Management-Token"] = management.token().access_token
            return out

        return headers


AZURE_MANAGED_IDENTITY = AzureManagedIdentity()


# --- credential strategies: (login, password, config extras, provider extras) -> kwargs or None ---------------

Strategy = Callable[[str | None, str | None, dict[str, Any], dict[str, Any]], "dict[str, Any] | None"]


def _explicit_auth_type(login: str | None, password: str | None, cfg: dict, provider: dict) -> dict | None:
    """``auth_type`` in extras: login/password mean what that auth type needs."""
    auth_type = cfg.get("auth_type")
    if not auth_type:
        return None
    out = dict(cfg)
    if auth_type == "azure-msi":
        out.setdefault("credentials_strategy", AZURE_MANAGED_IDENTITY)
    if auth_type == "pat" and password:
        out.setdefault("token", password)
    elif auth_type == "oauth-m2m" and password:
        out.setdefault("client_id", login)
        out.setdefault("client_secret", password)
    elif auth_type == "azure-client-secret" and password:
        out.setdefault("azure_client_id", login)
        out.setdefault("azure_client_secret", password)
    elif auth_type == "basic" and password:
        out.setdefault("username", login)
        out.setdefault("password", password)
    elif password:
        raise ConnectionConfigError(
            f"The connection sets auth_type '{auth_type}' and a password, but that auth type does not read one. "
            "Fix: put the credential in the extra field that databricks-sdk expects for it, or clear the password."
        )
    return out


def _azure_service_principal(login: str | None, password: str | None, cfg: dict, provider: dict) -> dict | None:
    if not (cfg.get("azure_tenant_id") and login and password):
        return None
    return {**cfg, "azure_client_id": login, "azure_client_secret": password, "auth_type": "azure-client-secret"}


def _azure_managed_identity(login: str | None, password: str | None, cfg: dict, provider: dict) -> dict | None:
    if not cfg.get("azure_use_msi"):
        return None
    out = {**cfg, "auth_type": "azure-msi", "credentials_strategy": AZURE_MANAGED_IDENTITY}
    if login and "azure_client_id" not in out:
        out["azure_client_id"] = login
    return out


def _oauth_m2m(login: str | None, password: str | None, cfg: dict, provider: dict) -> dict | None:
    if not (login and password):
        return None
    return {**cfg, "client_id": login, "client_secret": password, "auth_type": "oauth-m2m"}


def _personal_access_token(login: str | None, password: str | None, cfg: dict, provider: dict) -> dict | None:
    token = password or cfg.get("token")
    if not token:
        return None
    return {**cfg, "token": token, "auth_type": "pat"}


def _extras_only(login: str | None, password: str | None, cfg: dict, provider: dict) -> dict | None:
    """Credentials given entirely as Config attributes in extras (client_id, google_*, profile, ...)."""
    credential_keys = {k for k in cfg if k not in {"host", "http_timeout_seconds", "retry_timeout_seconds"}}
    return dict(cfg) if credential_keys else None


def _default_chain(login: str | None, password: str | None, cfg: dict, provider: dict) -> dict | None:
    """No credentials on the connection: databricks-sdk's own chain (DATABRICKS_* env, ~/.databrickscfg)."""
    return dict(cfg)


STRATEGIES: tuple[tuple[str, Strategy], ...] = (
    ("explicit auth_type", _explicit_auth_type),
    ("azure service principal", _azure_service_principal),
    ("azure managed identity", _azure_managed_identity),
    ("oauth-m2m", _oauth_m2m),
    ("pat", _personal_access_token),
    ("extras", _extras_only),
    ("default chain", _default_chain),
)


def _first_strategy(login: str | None, password: str | None, cfg: dict, provider: dict) -> tuple[str, dict[str, Any]]:
    for name, strategy in STRATEGIES:
        kwargs = strategy(login, password, cfg, provider)
        if kwargs is not None:
            return name, kwargs
    raise AssertionError("the default chain always applies")  # pragma: no cover


def _normalize_host(host: str | None, schema: str | None, port: int | None) -> str | None:
    if not host:
        return None
    host = host.strip().rstrip("/")
    if "://" not in host:
        host = f"{schema or 'https'}://{host}" if schema in (None, "", "http", "https") else f"https://{host}"
    if port and host.count(":") < 2:
        host = f"{host}:{port}"
    return host


def settings_from_connection(
    conn_id: str,
    *,
    host: str | None,
    login: str | None,
    password: str | None,
    extra: Any,
    schema: str | None = None,
    port: int | None = None,
    known_attributes: frozenset[str] | None = None,
) -> ConnectionSettings:
    extras = parse_extras(extra)
    known = known_attributes if known_attributes is not None else config_attribute_names()
    cfg, provider = normalize_extras(extras, known)
    resolved_host = _normalize_host(host, schema, port) or _normalize_host(cfg.pop("host", None), None, None)
    if resolved_host and not resolved_host.startswith(("https://", "http://")):
        raise ConnectionConfigError(f"Connection host must be an https:// (or http://) URL, got '{resolved_host}'.")
    if provider.get("service_principal_oauth") and not (login and password):
        raise ConnectionConfigError(
            "Connection extra 'service_principal_oauth' is true but login (client id) and password (client secret) "
            "are not both set. Fix: put the service principal's client id in Login and its secret in Password."
        )
    login = login or None
    password = password or None
    name, kwargs = _first_strategy(login, password, cfg, provider)
    kwargs.setdefault("http_timeout_seconds", DEFAULT_HTTP_TIMEOUT_SECONDS)
    kwargs.setdefault("retry_timeout_seconds", DEFAULT_RETRY_TIMEOUT_SECONDS)
    if resolved_host:
        kwargs["host"] = resolved_host
        if kwargs.get("auth_type") == "oauth-m2m":
            # databricks-sdk 0.162 finds the token endpoint only through the host-metadata probe; when the probe
            # fails (a proxy, a blip) M2M dies with "Invalid URL 'None'". The workspace endpoint is well known.
            kwargs.setdefault("discovery_url", f"{resolved_host}/oidc/.well-known/oauth-authorization-server")
    return ConnectionSettings(conn_id=conn_id, config_kwargs=kwargs, strategy=name, provider_extras=provider)
