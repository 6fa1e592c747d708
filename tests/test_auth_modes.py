"""Every way an Airflow connection can authenticate, checked against a real databricks-sdk ``Config``.

Nothing here reaches the internet. Modes whose ``Config`` can be built offline are built for real against a local
stub that answers the SDK's host-metadata probe and OIDC discovery instantly (OAuth M2M needs the latter in
databricks-sdk 0.162). Azure and GCP token endpoints are never called: ``Config()`` does not fetch tokens for them,
and where a test calls ``authenticate()`` only the Azure IMDS call is replaced.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_lakeflow import __version__
from airflow_provider_lakeflow._engine import auth
from airflow_provider_lakeflow._engine.auth import (
    DEFAULT_HTTP_TIMEOUT_SECONDS,
    DEFAULT_RETRY_TIMEOUT_SECONDS,
    ConnectionConfigError,
    ConnectionSettings,
    settings_from_connection,
)
from airflow_provider_lakeflow._engine.transport import build_config

CLOSED_PORT_HOST = "http://127.0.0.1:9"
AZURE_RESOURCE_ID = (
    "/subscriptions/00000000-0000-0000-0000-000000000000/resourceGroups/rg/providers/Microsoft.Databricks/workspaces/ws"
)


# --- fixtures ----------------------------------------------------------------------------------------------------


class _MetadataStub(BaseHTTPRequestHandler):
    """Answers only the unauthenticated discovery endpoints the SDK calls while building a ``Config``."""

    def do_GET(self) -> None:
        base = f"http://127.0.0.1:{self.server.server_address[1]}"
        if self.path == "/.well-known/databricks-config":
            body: dict[str, Any] = {"oidc_endpoint": f"{base}/oidc", "workspace_id": "1234567890"}
        elif self.path == "/oidc/.well-known/oauth-authorization-server":
            body = {"authorization_endpoint": f"{base}/oidc/v1/authorize", "token_endpoint": f"{base}/oidc/v1/token"}
        else:
            self.send_response(404)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def workspace() -> Iterator[str]:
    """URL of a local workspace stub (discovery endpoints only)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _MetadataStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(autouse=True)
def _clean_databricks_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No DATABRICKS_*/ARM_*/GOOGLE_* variable or ~/.databrickscfg of the machine running the tests leaks in."""
    import os

    for name in list(os.environ):
        if name.startswith(("DATABRICKS_", "ARM_", "GOOGLE_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("DATABRICKS_CONFIG_FILE", str(tmp_path / "no-such-databrickscfg"))


def settings(
    *, host: str | None = None, login: str | None = None, password: str | None = None, extra: Any = None
) -> ConnectionSettings:
    return settings_from_connection("test_conn", host=host, login=login, password=password, extra=extra)


def secret(label: str) -> str:
    return f"{label}-{uuid.uuid4().hex}"


# --- each mode of API.md, built into a real Config ------------------------------------------------------------------


def test_password_alone_is_a_personal_access_token(workspace: str) -> None:
    s = settings(host=workspace, password="dapi-pat-1")
    assert s.strategy == "pat"
    config = build_config(s)
    assert config.auth_type == "pat"
    assert config.token == "dapi-pat-1"
    assert config.host == workspace
    assert config.authenticate()["Authorization"] == "Bearer dapi-pat-1"


def test_official_token_extra_is_a_personal_access_token(workspace: str) -> None:
    config = build_config(settings(host=workspace, extra={"token": "dapi-from-extra"}))
    assert config.auth_type == "pat"
    assert config.token == "dapi-from-extra"


@pytest.mark.parametrize("extra", [None, {"service_principal_oauth": True}, {"service_principal_oauth": "true"}])
def test_login_and_password_are_oauth_m2m(workspace: str, extra: Any) -> None:
    s = settings(host=workspace, login="sp-client-id", password="sp-secret", extra=extra)
    assert s.strategy == "oauth-m2m"
    config = build_config(s)
    assert config.auth_type == "oauth-m2m"
    assert config.client_id == "sp-client-id"
    assert config.client_secret == "sp-secret"
    # resolved from the stub's host metadata, no token was requested
    assert config.discovery_url == f"{workspace}/oidc/.well-known/oauth-authorization-server"


def test_client_id_and_secret_in_extras_are_oauth_m2m(workspace: str) -> None:
    config = build_config(settings(host=workspace, extra={"client_id": "cid", "client_secret": "csecret"}))
    assert config.auth_type == "oauth-m2m"
    assert (config.client_id, config.client_secret) == ("cid", "csecret")


@pytest.fixture
def stub_is_azure(monkeypatch: pytest.MonkeyPatch) -> None:
    """Treat the local stub as an Azure workspace (the SDK maps *.azuredatabricks.net names to Azure endpoints)."""
    import databricks.sdk.config as sdk_config
    from databricks.sdk.environments import ALL_ENVS

    azure_public = next(env for env in ALL_ENVS if env.dns_zone == ".azuredatabricks.net")
    monkeypatch.setattr(sdk_config, "get_environment_for_hostname", lambda hostname: azure_public)


def test_azure_service_principal(workspace: str, stub_is_azure: None) -> None:
    s = settings(host=workspace, login="azure-app-id", password="azure-secret", extra={"azure_tenant_id": "tenant-1"})
    assert s.strategy == "azure service principal"
    assert s.config_kwargs["auth_type"] == "azure-client-secret"
    assert s.config_kwargs["azure_client_id"] == "azure-app-id"
    assert s.config_kwargs["azure_client_secret"] == "azure-secret"
    assert "client_id" not in s.config_kwargs and "client_secret" not in s.config_kwargs
    # Building the Config calls no Azure endpoint (tenant given, tokens are lazy).
    config = build_config(s)
    assert config.auth_type == "azure-client-secret"
    assert (config.azure_client_id, config.azure_client_secret, config.azure_tenant_id) == (
        "azure-app-id",
        "azure-secret",
        "tenant-1",
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"use_azure_managed_identity": True, "azure_managed_identity_client_id": "mi-client"},
        {"azure_use_msi": "true", "azure_client_id": "mi-client"},
        {"auth_type": "azure-msi", "azure_use_msi": True, "azure_client_id": "mi-client"},
    ],
    ids=["official-extras", "sdk-extras", "explicit-auth-type"],
)
def test_azure_managed_identity(workspace: str, monkeypatch: pytest.MonkeyPatch, extra: dict[str, Any]) -> None:
    s = settings(host=workspace, extra={**extra, "azure_resource_id": AZURE_RESOURCE_ID})
    assert s.config_kwargs["azure_use_msi"] is True
    assert s.config_kwargs["azure_client_id"] == "mi-client"
    assert s.config_kwargs["azure_workspace_resource_id"] == AZURE_RESOURCE_ID
    assert s.config_kwargs["auth_type"] == "azure-msi"

    calls: list[tuple[str, str | None]] = []

    def fake_imds(resource: str, client_id: str | None, timeout: float) -> tuple[str, float]:
        calls.append((resource, client_id))
        return f"msi-token-for-{resource}", time.time() + 3600

    monkeypatch.setattr(auth, "fetch_azure_msi_token", fake_imds)
    config = build_config(s)
    assert config.auth_type == "azure-msi"
    assert config.azure_use_msi is True
    assert config.azure_client_id == "mi-client"
    assert calls == []  # no token before the first request
    headers = config.authenticate()
    assert headers["Authorization"] == f"Bearer msi-token-for-{auth.AZURE_DATABRICKS_APP_ID}"
    assert headers["X-Databricks-Azure-Workspace-Resource-Id"] == AZURE_RESOURCE_ID
    assert headers["X-Databricks-Azure-SP-Management-Token"].startswith("msi-token-for-https://management")
    config.authenticate()
    assert len(calls) == 2, "IMDS tokens are cached"
    assert {client_id for _, client_id in calls} == {"mi-client"}


def test_azure_resource_id_maps_to_workspace_resource_id() -> None:
    s = settings(host="https://adb-1.1.azuredatabricks.net", password="dapi", extra={"azure_resource_id": "/sub/x"})
    assert s.config_kwargs["azure_workspace_resource_id"] == "/sub/x"
    assert "azure_resource_id" not in s.config_kwargs


def _service_account_info() -> dict[str, str]:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    return {
        "type": "service_account",
        "project_id": "p",
        "private_key_id": "k1",
        "private_key": pem,
        "client_email": "sa@p.iam.gserviceaccount.com",
        "client_id": "1",
        "token_uri": "https://oauth2.googleapis.com/token",
    }


def test_gcp_google_credentials(workspace: str) -> None:
    google_credentials = json.dumps(_service_account_info())
    s = settings(host=workspace, extra={"google_credentials": google_credentials})
    assert s.strategy == "extras"
    assert s.config_kwargs["google_credentials"] == google_credentials
    assert google_credentials in s.secrets
    # Parsing the key is local; no Google endpoint is called until authenticate().
    config = build_config(s)
    assert config.auth_type == "google-credentials"


def test_gcp_google_service_account(workspace: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import google.auth
    from google.auth.credentials import AnonymousCredentials

    s = settings(host=workspace, extra={"google_service_account": "sa@p.iam.gserviceaccount.com"})
    assert s.config_kwargs["google_service_account"] == "sa@p.iam.gserviceaccount.com"
    # Application default credentials would look at the machine (metadata server); replace only that call.
    monkeypatch.setattr(google.auth, "default", lambda *a, **k: (AnonymousCredentials(), "p"))
    config = build_config(s)
    assert config.auth_type == "google-id"
    assert config.google_service_account == "sa@p.iam.gserviceaccount.com"


def test_profile_and_config_file(tmp_path: Path, workspace: str) -> None:
    cfg_file = tmp_path / "databrickscfg"
    cfg_file.write_text(
        f"[DEFAULT]\nhost = {CLOSED_PORT_HOST}\ntoken = dapi-default\n\n"
        f"[lakeflow]\nhost = {workspace}/\ntoken = dapi-from-profile\n"
    )
    s = settings(extra={"profile": "lakeflow", "config_file": str(cfg_file)})
    assert s.strategy == "extras"
    config = build_config(s)
    assert config.auth_type == "pat"
    assert config.token == "dapi-from-profile"
    assert config.host == workspace
    assert config.profile == "lakeflow"


def test_explicit_auth_type_reads_login_password_for_that_type(workspace: str) -> None:
    s = settings(host=workspace, login="user", password="pw", extra={"auth_type": "basic"})
    assert s.strategy == "explicit auth_type"
    config = build_config(s)
    assert config.auth_type == "basic"
    assert (config.username, config.password) == ("user", "pw")

    config = build_config(settings(host=workspace, password="tok", extra={"auth_type": "pat"}))
    assert (config.auth_type, config.token) == ("pat", "tok")


def test_explicit_auth_type_that_reads_no_password_rejects_one() -> None:
    with pytest.raises(ConnectionConfigError, match="auth_type 'databricks-cli'"):
        settings(host="https://x.cloud.databricks.com", password="pw", extra={"auth_type": "databricks-cli"})


def test_no_credentials_uses_the_sdk_default_chain(monkeypatch: pytest.MonkeyPatch, workspace: str) -> None:
    monkeypatch.setenv("DATABRICKS_HOST", workspace)
    monkeypatch.setenv("DATABRICKS_TOKEN", "dapi-from-env")
    s = settings()
    assert s.strategy == "default chain"
    assert "host" not in s.config_kwargs and "token" not in s.config_kwargs
    config = build_config(s)
    assert config.auth_type == "pat"
    assert config.token == "dapi-from-env"
    assert config.host == workspace


def test_no_credentials_at_all_fails_naming_the_connection(workspace: str) -> None:
    with pytest.raises(ConnectionConfigError, match="test_conn") as info:
        build_config(settings(host=workspace))
    assert "default chain" in str(info.value)


# --- timeouts -----------------------------------------------------------------------------------------------------


def test_default_timeouts_are_bounded() -> None:
    s = settings(host=CLOSED_PORT_HOST, password="dapi")
    assert DEFAULT_HTTP_TIMEOUT_SECONDS == 30
    assert DEFAULT_RETRY_TIMEOUT_SECONDS == 60
    assert s.config_kwargs["http_timeout_seconds"] == 30
    assert s.config_kwargs["retry_timeout_seconds"] == 60  # not the SDK's 300 s


def test_timeouts_can_be_overridden_in_extras() -> None:
    s = settings(
        host=CLOSED_PORT_HOST, password="dapi", extra={"http_timeout_seconds": "5", "retry_timeout_seconds": 7}
    )
    assert s.config_kwargs["http_timeout_seconds"] == 5
    assert s.config_kwargs["retry_timeout_seconds"] == 7


def test_unreachable_host_does_not_block_config_for_minutes() -> None:
    s = settings(host=CLOSED_PORT_HOST, password="dapi", extra={"retry_timeout_seconds": 1})
    started = time.monotonic()
    config = build_config(s)
    assert time.monotonic() - started < 20  # the SDK's own default would retry the probe for 300 s
    assert (config.auth_type, config.token) == ("pat", "dapi")  # the explicit configuration is still used
    assert config.retry_timeout_seconds == 1
    assert config.http_timeout_seconds == DEFAULT_HTTP_TIMEOUT_SECONDS


# --- errors before any network --------------------------------------------------------------------------------------


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a bad connection must fail before any network call")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


@pytest.mark.parametrize(
    ("key", "suggestion"),
    [("client_secrte", "client_secret"), ("azure_tennant_id", "azure_tenant_id"), ("use_azure_managed_identiy", None)],
)
def test_unknown_extra_names_the_key_and_suggests_the_closest(
    no_network: None, key: str, suggestion: str | None
) -> None:
    with pytest.raises(ConnectionConfigError) as info:
        settings(host="https://x.cloud.databricks.com", login="a", password="b", extra={key: "v"})
    message = str(info.value)
    assert f"'{key}'" in message
    assert f"Did you mean '{suggestion or 'use_azure_managed_identity'}'?" in message


def test_unknown_extra_far_from_any_key_has_no_suggestion(no_network: None) -> None:
    with pytest.raises(ConnectionConfigError, match="'zzzzqqq'") as info:
        settings(host="https://x.cloud.databricks.com", extra={"zzzzqqq": 1})
    assert "Did you mean" not in str(info.value)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ('{"token": "dapi",', "not valid JSON"),
        ('["token"]', "must be a JSON object"),
        ('"token"', "must be a JSON object"),
        ({"use_azure_managed_identity": "maybe"}, "'use_azure_managed_identity' must be true or false"),
        ({"azure_use_msi": 2}, "'azure_use_msi' must be true or false"),
        ({"http_timeout_seconds": -1}, "'http_timeout_seconds' must be positive"),
        ({"retry_timeout_seconds": 0}, "'retry_timeout_seconds' must be positive"),
        ({"http_timeout_seconds": "soon"}, "'http_timeout_seconds' must be a whole number"),
    ],
)
def test_bad_extra_is_rejected(no_network: None, extra: Any, match: str) -> None:
    with pytest.raises(ConnectionConfigError, match=match):
        settings(host="https://x.cloud.databricks.com", password="dapi", extra=extra)


@pytest.mark.parametrize(("login", "password"), [(None, "secret-only"), ("client-only", None), (None, None)])
def test_service_principal_oauth_needs_login_and_password(
    no_network: None, login: str | None, password: str | None
) -> None:
    with pytest.raises(ConnectionConfigError, match="service_principal_oauth") as info:
        settings(
            host="https://x.cloud.databricks.com",
            login=login,
            password=password,
            extra={"service_principal_oauth": True},
        )
    assert "secret-only" not in str(info.value)


@pytest.mark.parametrize("host", ["ftp://x", "ws://workspace.example.com"])
def test_host_with_unsupported_scheme_is_rejected(no_network: None, host: str) -> None:
    with pytest.raises(ConnectionConfigError, match="https://"):
        settings(host=host, password="dapi")


def test_unsupported_scheme_in_extras_host_is_rejected(no_network: None) -> None:
    with pytest.raises(ConnectionConfigError, match="ftp://x"):
        settings(extra={"host": "ftp://x"}, password="dapi")


# --- host normalisation ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("adb-123.4.azuredatabricks.net", "https://adb-123.4.azuredatabricks.net"),
        ("adb-123.4.azuredatabricks.net/", "https://adb-123.4.azuredatabricks.net"),
        ("https://dbc-1.cloud.databricks.com/", "https://dbc-1.cloud.databricks.com"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080"),
        ("  https://x.gcp.databricks.com  ", "https://x.gcp.databricks.com"),
    ],
)
def test_host_normalisation(host: str, expected: str) -> None:
    assert settings(host=host, password="dapi").host == expected


def test_host_from_extras_when_the_field_is_empty() -> None:
    for host in (None, ""):
        s = settings(host=host, password="dapi", extra={"host": "dbc-1.cloud.databricks.com/"})
        assert s.host == "https://dbc-1.cloud.databricks.com"
        assert s.strategy == "pat"


def test_host_field_wins_over_extras_host() -> None:
    s = settings(host="https://field.cloud.databricks.com", password="dapi", extra={"host": "https://extra.example"})
    assert s.host == "https://field.cloud.databricks.com"


def test_normalised_host_reaches_the_config(workspace: str) -> None:
    config = build_config(settings(host=workspace + "/", password="dapi"))
    assert config.host == workspace


# --- User-Agent ------------------------------------------------------------------------------------------------------


def test_user_agent_names_the_provider(workspace: str) -> None:
    config = build_config(settings(host=workspace, password="dapi"))
    assert config.user_agent.startswith(f"airflow-provider-lakeflow/{__version__} ")
    assert "databricks-sdk-py/" in config.user_agent


# --- secrets ----------------------------------------------------------------------------------------------------------


def _redact(value: Any) -> Any:
    from airflow.providers.common.compat.sdk import redact

    return redact(value)


@pytest.fixture(scope="module")
def masker_works() -> None:
    """The redact function really redacts after mask_secret (otherwise the masking checks below prove nothing)."""
    from airflow.providers.common.compat.sdk import mask_secret

    probe = secret("probe")
    assert probe in _redact(f"x {probe} y"), "nothing registered yet, so nothing redacted"
    mask_secret(probe)
    assert probe not in _redact(f"x {probe} y")


def _secret_cases() -> list[tuple[str, dict[str, Any], str]]:
    """(id, connection fields, the secret) for every mode that carries one."""
    cases = []
    s = secret("pat")
    cases.append(("pat", {"password": s}, s))
    s = secret("token-extra")
    cases.append(("token-extra", {"extra": {"token": s}}, s))
    s = secret("m2m")
    cases.append(("oauth-m2m", {"login": "cid", "password": s}, s))
    s = secret("m2m-extras")
    cases.append(("oauth-m2m-extras", {"extra": {"client_id": "cid", "client_secret": s}}, s))
    s = secret("azure-sp")
    cases.append(("azure-sp", {"login": "app", "password": s, "extra": {"azure_tenant_id": "t"}}, s))
    s = secret("azure-extras")
    cases.append(
        ("azure-sp-extras", {"extra": {"azure_client_id": "a", "azure_client_secret": s, "azure_tenant_id": "t"}}, s)
    )
    s = secret("basic")
    cases.append(("basic", {"login": "u", "password": s, "extra": {"auth_type": "basic"}}, s))
    s = json.dumps({"type": "service_account", "private_key": secret("gcp-key")})
    cases.append(("google-credentials", {"extra": {"google_credentials": s}}, s))
    return cases


SECRET_CASES = _secret_cases()


@pytest.mark.parametrize(("fields", "the_secret"), [c[1:] for c in SECRET_CASES], ids=[c[0] for c in SECRET_CASES])
def test_settings_secrets_hold_every_credential(fields: dict[str, Any], the_secret: str) -> None:
    s = settings(host="https://x.cloud.databricks.com", **fields)
    assert the_secret in s.secrets
    assert the_secret not in s.fingerprint()


@pytest.mark.parametrize(("fields", "the_secret"), [c[1:] for c in SECRET_CASES], ids=[c[0] for c in SECRET_CASES])
def test_hook_registers_secrets_with_the_airflow_masker(
    masker_works: None, monkeypatch: pytest.MonkeyPatch, fields: dict[str, Any], the_secret: str
) -> None:
    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook

    conn_id = f"lakeflow_mask_{uuid.uuid4().hex[:8]}"
    conn = {"conn_type": "lakeflow", "host": "https://x.cloud.databricks.com", **fields}
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    # the secret is new: nothing has masked it yet
    assert the_secret in _redact(f"token={the_secret}")
    hook_settings = LakeflowHook(databricks_conn_id=conn_id).settings
    assert the_secret in hook_settings.secrets
    assert the_secret not in _redact(f"token={the_secret}")
    assert the_secret not in str(_redact({"value": the_secret}))


@pytest.mark.parametrize(("fields", "the_secret"), [c[1:] for c in SECRET_CASES], ids=[c[0] for c in SECRET_CASES])
def test_hook_itself_masks_secrets_airflow_would_not(
    masker_works: None, fields: dict[str, Any], the_secret: str
) -> None:
    """Bypass Airflow's Connection (which masks its password on its own): the hook registers every secret."""
    from types import SimpleNamespace

    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook

    fresh = the_secret.replace("-", "-hook-", 1)
    conn_fields = json.loads(json.dumps(fields).replace(the_secret.replace('"', '\\"'), fresh.replace('"', '\\"')))
    conn = SimpleNamespace(
        conn_id="plain",
        host="https://x.cloud.databricks.com",
        login=None,
        password=None,
        extra=None,
        schema=None,
        port=None,
    )
    for key, value in conn_fields.items():
        setattr(conn, key, value)
    assert fresh in _redact(f"> {fresh} <")
    LakeflowHook._settings_from(conn)
    assert fresh not in _redact(f"> {fresh} <")


def test_configuration_error_never_contains_the_secret() -> None:
    password = secret("pw")
    client_secret = secret("cs")
    bad_connections: list[dict[str, Any]] = [
        {"password": password, "extra": {"client_secrte": client_secret}},
        {"password": password, "extra": {"use_azure_managed_identity": "maybe"}},
        {"password": password, "extra": {"http_timeout_seconds": -5}},
        {"password": password, "extra": f'{{"token": "{client_secret}", '},
        {"password": password, "extra": json.dumps([client_secret])},
        {"password": password, "extra": {"service_principal_oauth": True}},
        {"password": password, "extra": {"auth_type": "databricks-cli", "token": client_secret}},
        {"host": "ftp://x", "password": password},
    ]
    for fields in bad_connections:
        fields = {"host": "https://x.cloud.databricks.com", **fields}
        with pytest.raises(ConnectionConfigError) as info:
            settings(**fields)
        text = f"{info.value!s} {info.value!r}"
        assert password not in text, fields
        assert client_secret not in text, fields


def test_sdk_error_wrapped_by_build_config_never_contains_the_secret(workspace: str) -> None:
    """A Config the SDK rejects (here: two credentials, and an auth type that reads neither)."""
    token = secret("tok")
    s = settings(host=workspace, extra={"token": token, "auth_type": "oauth-m2m"})
    with pytest.raises(ConnectionConfigError) as info:
        build_config(s)
    assert "test_conn" in str(info.value)
    assert token not in str(info.value)
