"""The workspace API of Unity Catalog connections: create, get, list, update and delete."""

from __future__ import annotations

from typing import Any

from airflow_provider_lakeflow.testing.emulator.api.listing import decode_token, encode_token
from airflow_provider_lakeflow.testing.emulator.errors import already_exists, invalid
from airflow_provider_lakeflow.testing.emulator.model import (
    CONNECTION_TYPES,
    UI_ONLY_CONNECTION_TYPES,
    Connection,
    WorkspaceState,
    now_ms,
)

_CONNECTIONS_PAGE = 50


def _credential_type(options: dict[str, str]) -> str:
    keys = {k.lower() for k in options}
    if "pem_private_key" in keys or "private_key" in keys:
        return "PEM_PRIVATE_KEY"
    if {"client_id", "client_secret"} <= keys:
        return "OAUTH_M2M"
    if keys & {"bearer_token", "token", "access_token", "personal_access_token"}:
        return "BEARER_TOKEN"
    if "password" in keys:
        return "USERNAME_PASSWORD"
    return "ANY_STATIC_CREDENTIAL"


class ConnectionsApi(WorkspaceState):
    def _new_connection(self, body: dict[str, Any], user: str, credential_type: str | None) -> Connection:
        name = body.get("name")
        if not name or not isinstance(name, str):
            raise invalid("name: is required.")
        ctype = body.get("connection_type")
        if ctype not in CONNECTION_TYPES and not (credential_type == "OAUTH_U2M" and ctype in UI_ONLY_CONNECTION_TYPES):
            raise invalid(f"connection_type: unknown value {ctype!r}.")
        options = body.get("options")
        if not isinstance(options, dict):
            raise invalid("options: is required (a map of option name to string value).")
        if name.lower() in self._connections:
            raise already_exists(f"Connection '{name}' already exists.")
        now = self.now()
        c = Connection(
            name=name,
            connection_type=ctype,
            options={str(k): str(v) for k, v in options.items()},
            owner=user,
            created_by=user,
            created_at=now_ms(now),
            credential_type=credential_type or _credential_type(options),
            comment=body.get("comment"),
            properties=body.get("properties"),
            read_only=body.get("read_only"),
            environment_settings=body.get("environment_settings"),
        )
        self._connections[name.lower()] = c
        return c

    def api_create_connection(self, body: dict[str, Any], user: str) -> dict[str, Any]:
        with self._lock:
            c = self._new_connection(body, user, None)
            seconds, final, message = self._connection_script
            c.provisioning_until, c.final_state, c.message = c.created_at / 1000 + seconds, final, message
            return c.info(self.now())

    def api_get_connection(self, name: str) -> dict[str, Any]:
        with self._lock:
            return self._connection(name).info(self.now())

    def api_list_connections(self, max_results: int | None, page_token: str | None) -> dict[str, Any]:
        if max_results is not None and max_results < 0:
            raise invalid(f"max_results: must not be negative, got {max_results}.")
        with self._lock:
            now = self.now()
            items = sorted(self._connections.values(), key=lambda c: c.name.lower())
            infos = [c.info(now) for c in items]
        if max_results is None:
            return {"connections": infos}
        size = _CONNECTIONS_PAGE if max_results == 0 else min(max_results, _CONNECTIONS_PAGE)
        offset = int(decode_token(page_token).get("n", 0)) if page_token else 0
        out: dict[str, Any] = {"connections": infos[offset : offset + size]}
        if offset + size < len(infos):
            out["next_page_token"] = encode_token({"n": offset + size})
        return out

    def api_update_connection(self, name: str, body: dict[str, Any], user: str) -> dict[str, Any]:
        with self._lock:
            c = self._connection(name)
            if "options" in body:
                if not isinstance(body["options"], dict):
                    raise invalid("options: expected a map of option name to string value.")
                c.options = {str(k): str(v) for k, v in body["options"].items()}
            new_name = body.get("new_name")
            if new_name and new_name.lower() != c.name.lower():
                if new_name.lower() in self._connections:
                    raise already_exists(f"Connection '{new_name}' already exists.")
                del self._connections[c.name.lower()]
                self._connections[new_name.lower()] = c
            if new_name:
                c.name = new_name
            for key in ("owner", "comment", "properties", "environment_settings", "read_only"):
                if key in body:
                    setattr(c, key, body[key])
            c.updated_at, c.updated_by = now_ms(self.now()), user
            return c.info(self.now())

    def api_delete_connection(self, name: str) -> dict[str, Any]:
        with self._lock:
            c = self._connection(name)
            del self._connections[c.name.lower()]
            return {}
