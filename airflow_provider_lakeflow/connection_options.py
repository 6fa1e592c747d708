"""Checking Unity Catalog connection arguments before any request, per connection type.

Each rule raises :class:`ConnectionOptionsError` naming the field (``name``, ``connection_type``, ``options`` or
``options.<key>``) and how to fix it. Connection types whose credential needs a browser sign-in (OAuth U2M) are
rejected with the one-time Catalog Explorer walk-through: no API call can perform that sign-in.

Nothing here imports databricks-sdk or Airflow, so operators can check literal arguments at DAG parse time.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

#: Every ``ConnectionType`` of databricks-sdk 0.162.0 except UNKNOWN_CONNECTION_TYPE.
CONNECTION_TYPES = frozenset(
    {
        "AWS_SECRETS_MANAGER",
        "AZURE_KEY_VAULT",
        "BIGQUERY",
        "CONFLUENCE",
        "DATABRICKS",
        "DYNAMICS365",
        "GA4_RAW_DATA",
        "GITHUB",
        "GLUE",
        "HIVE_METASTORE",
        "HTTP",
        "HUBSPOT",
        "JDBC",
        "META_MARKETING",
        "MYSQL",
        "NETSUITE",
        "ORACLE",
        "OUTLOOK",
        "POSTGRESQL",
        "POWER_BI",
        "REDSHIFT",
        "SALESFORCE",
        "SALESFORCE_DATA_CLOUD",
        "SERVICENOW",
        "SMARTSHEET",
        "SNOWFLAKE",
        "SQLDW",
        "SQLSERVER",
        "TERADATA",
        "TIKTOK_ADS",
        "WORKDAY_RAAS",
        "ZENDESK",
    }
)

#: Database sources (CDC through a gateway, or query-based): a username/password credential to a host and port.
DATABASE_TYPES = ("SQLSERVER", "POSTGRESQL", "MYSQL", "ORACLE", "TERADATA")
DATABASE_REQUIRED_OPTIONS = ("host", "port", "user", "password")

#: Sources whose only documented credential is an OAuth browser sign-in (U2M), or whose non-interactive
#: credentials the Databricks docs describe only as Catalog Explorer fields, not as API option names.
#: The display name is the one Catalog Explorer shows in its "Connection type" list.
UI_ONLY_TYPES: dict[str, str] = {
    "SALESFORCE": "Salesforce",
    "HUBSPOT": "HubSpot",
    "CONFLUENCE": "Confluence",
    "META_MARKETING": "Meta Ads",
    "ZENDESK": "Zendesk Support",
}

#: Sources where the docs recommend the U2M sign-in but also document a non-interactive credential (ServiceNow:
#: OAuth resource-owner password; Google Analytics: a service-account JSON key). Created through the API only
#: when ``options`` carries a secret credential; with none, the only way left is the browser sign-in.
SIGN_IN_UNLESS_CREDENTIAL: dict[str, str] = {
    "SERVICENOW": "ServiceNow",
    "GA4_RAW_DATA": "Google Analytics Raw Data",
}

_SECRET_WORDS = ("password", "secret", "private_key", "privatekey", "api_key", "apikey", "passphrase", "credential")
_URL_UNSAFE = set("/?#%\\")


class ConnectionOptionsError(ValueError):
    """Connection arguments that Unity Catalog would reject, or that this provider cannot create."""

    def __init__(self, field: str, problem: str, fix: str) -> None:
        self.field = field
        super().__init__(f"Connection field '{field}': {problem} Fix: {fix}")


class SignInRequiredError(ConnectionOptionsError):
    """The connection type needs an OAuth browser sign-in (U2M): create it in Catalog Explorer instead."""


def is_literal(value: Any) -> bool:
    """A value known at DAG parse time: plain data with no Jinja template in it (an XComArg is not literal)."""
    if isinstance(value, str):
        return "{{" not in value
    if isinstance(value, Mapping):
        return all(is_literal(k) and is_literal(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return all(is_literal(v) for v in value)
    return isinstance(value, int | float | type(None))


def is_secret_option(key: str) -> bool:
    """Option keys holding credentials (passwords, client secrets, tokens, keys): never echoed back by the server."""
    k = key.lower()
    if k.endswith(("_endpoint", "_url", "_uri", "_scope", "_scopes")):
        return False
    return k == "token" or k.endswith("_token") or any(word in k for word in _SECRET_WORDS)


def check_connection_name(name: Any, field: str = "name") -> str:
    """A Unity Catalog connection name that is safe in the request path (databricks-sdk does not URL-escape it)."""
    if not isinstance(name, str) or not name.strip():
        raise ConnectionOptionsError(
            field,
            f"must be a non-empty string, got {name!r}.",
            "give the Unity Catalog connection's name, e.g. 'sqlserver_erp'.",
        )
    if name != name.strip():
        raise ConnectionOptionsError(
            field, f"{name!r} has leading or trailing spaces.", "remove them; names are matched exactly."
        )
    bad = sorted({c for c in name if c in _URL_UNSAFE or not c.isprintable()})
    if bad:
        raise ConnectionOptionsError(
            field,
            f"{name!r} contains {', '.join(repr(c) for c in bad)}, which Unity Catalog connection names cannot hold.",
            "use letters, digits and underscores.",
        )
    return name


def check_connection_type(connection_type: Any) -> str:
    """The upper-cased connection type, or an error naming the close matches."""
    if not isinstance(connection_type, str) or not connection_type.strip():
        raise ConnectionOptionsError(
            "connection_type",
            f"must be a non-empty string, got {connection_type!r}.",
            f"use one of the database types {', '.join(DATABASE_TYPES)}, or another Unity Catalog connection type.",
        )
    value = connection_type.strip().upper()
    if value not in CONNECTION_TYPES:
        import difflib

        close = difflib.get_close_matches(value, sorted(CONNECTION_TYPES), n=3, cutoff=0.6)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise ConnectionOptionsError(
            "connection_type",
            f"unknown value {connection_type!r}.",
            f"{hint}Database types are {', '.join(DATABASE_TYPES)}; see databricks-sdk's ConnectionType for the rest.",
        )
    return value


def sign_in_walkthrough(connection_type: str, name: str) -> str:
    """The one-time Catalog Explorer steps that create a connection needing a browser sign-in."""
    source = UI_ONLY_TYPES.get(connection_type) or SIGN_IN_UNLESS_CREDENTIAL.get(connection_type) or connection_type
    return (
        f"Create the connection once in the Databricks workspace UI:\n"
        f"  1. Catalog > External Data > Connections > Create connection.\n"
        f"  2. Connection name: '{name}'; connection type: {source} (pick the source).\n"
        f"  3. Choose the OAuth (user-to-machine) auth type, click Next and sign in to {source} in the window "
        f"that opens, allowing Databricks access.\n"
        f"  4. Back in the workspace, click Create connection.\n"
        f"In the DAG, replace this task with LakeflowConnectionReadySensor(task_id=..., connection_name='{name}'), "
        f"which waits until the connection exists and is ready."
    )


def _sign_in_error(connection_type: str, name: str, why: str) -> SignInRequiredError:
    return SignInRequiredError(
        "connection_type",
        f"{connection_type} {why}, and no API call can perform that browser sign-in, so connection '{name}' cannot "
        "be created from Airflow.",
        sign_in_walkthrough(connection_type, name),
    )


def _option_value(key: str, value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ConnectionOptionsError(
            f"options.{key}",
            f"must be a string, got {type(value).__name__}.",
            "give every option value as a string (Unity Catalog stores options as strings).",
        )
    return str(value)


def load_options(options: Any) -> dict[str, str]:
    """Options as a ``{str: str}`` dict: a mapping, or a JSON object string (what a template renders to)."""
    if isinstance(options, str) and options.strip().startswith("{"):
        try:
            options = json.loads(options)
        except ValueError as exc:
            raise ConnectionOptionsError("options", f"is not a valid JSON object ({exc}).", "check the JSON.") from None
    if not isinstance(options, Mapping):
        raise ConnectionOptionsError(
            "options",
            f"must be a mapping of option name to value, got {type(options).__name__}.",
            'pass a dict such as {"host": ..., "port": "1433", "user": ..., "password": ...}.',
        )
    loaded: dict[str, str] = {}
    for key, value in options.items():
        if not isinstance(key, str) or not key.strip():
            raise ConnectionOptionsError("options", f"has an invalid option name {key!r}.", "use non-empty strings.")
        loaded[key] = _option_value(key, value)
    return loaded


def _check_string_map(value: Any, field: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise ConnectionOptionsError(field, "must be a mapping of strings to strings.", 'write it as {"key": "value"}.')
    return dict(value)


def check_database_options(connection_type: str, options: Mapping[str, str]) -> None:
    for key in DATABASE_REQUIRED_OPTIONS:
        if key not in options:
            raise ConnectionOptionsError(
                f"options.{key}",
                f"is missing; a {connection_type} connection needs {', '.join(DATABASE_REQUIRED_OPTIONS)}.",
                f"add '{key}' to options (templated, e.g. from an Airflow connection: "
                "'{{ conn.my_db." + {"user": "login"}.get(key, key) + " }}').",
            )
        if not options[key].strip():
            raise ConnectionOptionsError(
                f"options.{key}", "is empty.", f"give the database's {key} (did a template render to nothing?)."
            )
    port = options["port"].strip()
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise ConnectionOptionsError(
            "options.port", f"must be a port number (1-65535), got {port!r}.", "give the database's TCP port."
        )


def _check_options_for_type(ctype: str, name: str, options: Mapping[str, str]) -> None:
    if ctype in SIGN_IN_UNLESS_CREDENTIAL and not any(is_secret_option(k) and v for k, v in options.items()):
        raise _sign_in_error(
            ctype,
            name,
            "options carry no credential (no password, client secret, token or key), which leaves only the OAuth "
            "browser sign-in (U2M)",
        )
    if ctype in DATABASE_TYPES:
        check_database_options(ctype, options)
    elif not options:
        raise ConnectionOptionsError(
            "options", "is empty.", f"give the options a {ctype} connection needs (see the Databricks docs)."
        )


def validate_connection(
    name: Any,
    connection_type: Any,
    options: Any,
    *,
    comment: Any = None,
    properties: Any = None,
    check_options: bool = True,
) -> dict[str, Any]:
    """The create request body, after every rule for the connection type passed. Raises on the first one broken.

    ``check_options=False`` (options still a template at parse time) checks everything but the options.
    """
    name = check_connection_name(name)
    ctype = check_connection_type(connection_type)
    if ctype in UI_ONLY_TYPES:
        raise _sign_in_error(ctype, name, "connections use an OAuth browser sign-in (U2M)")
    loaded = load_options(options) if check_options else {}
    if check_options:
        _check_options_for_type(ctype, name, loaded)
    if comment is not None and not isinstance(comment, str):
        raise ConnectionOptionsError("comment", f"must be a string, got {type(comment).__name__}.", "pass text.")
    body: dict[str, Any] = {"name": name, "connection_type": ctype, "options": loaded}
    if comment:
        body["comment"] = comment
    props = _check_string_map(properties, "properties")
    if props:
        body["properties"] = props
    return body


def missing_connection_hint(name: str) -> str:
    """What a sensor logs (once per task try) while the connection it waits for does not exist."""
    sources = ", ".join(sorted({*UI_ONLY_TYPES.values(), *SIGN_IN_UNLESS_CREDENTIAL.values()}))
    return (
        f"Unity Catalog connection '{name}' does not exist yet; waiting for it. If it is a source that needs a "
        f"browser sign-in ({sources}), a workspace user with CREATE CONNECTION creates it once:\n"
        f"  1. Catalog > External Data > Connections > Create connection.\n"
        f"  2. Connection name: '{name}'; pick the source as the connection type.\n"
        f"  3. Choose the OAuth auth type, click Next and sign in to the source in the window that opens.\n"
        f"  4. Back in the workspace, click Create connection.\n"
        f"This sensor succeeds as soon as the connection is ready. A database or API-key connection can be created "
        f"by LakeflowCreateConnectionOperator upstream instead."
    )
