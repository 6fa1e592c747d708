"""The in-memory Databricks workspace: its REST parts put together, auth, job runs, and the control operations.

No HTTP here. ``api_*`` methods are the REST surface (the server maps routes onto them one to one): pipelines in
``api/pipelines``, updates and events in ``api/updates``, connections in ``api/connections``, the data in ``model``.
The other public methods are the control operations declared in ``control_ops`` (shared by the in-process
``LakeflowEmulator`` and the ``/__emulator__/`` routes). Everything is guarded by one lock: calls are short, so the
event loop and control threads never wait long.
"""

from __future__ import annotations

import secrets
import threading
import time
import zlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow.testing.emulator.api.connections import ConnectionsApi
from airflow_provider_lakeflow.testing.emulator.api.pipelines import PipelinesApi
from airflow_provider_lakeflow.testing.emulator.control_ops import DELEGATED, ControlMethods
from airflow_provider_lakeflow.testing.emulator.errors import ApiError, not_found
from airflow_provider_lakeflow.testing.emulator.faults import FaultRegistry, RequestLog
from airflow_provider_lakeflow.testing.emulator.lifecycle.conditions import script as scripted_condition
from airflow_provider_lakeflow.testing.emulator.lifecycle.script import Script, ScriptChanges
from airflow_provider_lakeflow.testing.emulator.model import (
    PAT_USER,
    PROVISIONING_STATES,
    UI_USER,
    WORKSPACE_ID,
    Connection,
    JobRun,
    Pipeline,
    is_secret_option,
)
from airflow_provider_lakeflow.testing.emulator.ratelimit import RateLimit
from airflow_provider_lakeflow.testing.emulator.schedules import UpdateScheduler
from airflow_provider_lakeflow.testing.emulator.sql.engine import SqlEngine

if TYPE_CHECKING:
    from typing_extensions import Unpack  # typing.Unpack is Python 3.11+; annotations only


__all__ = ["WORKSPACE_ID", "Workspace"]


class Workspace(PipelinesApi, ConnectionsApi, ControlMethods):
    """One emulated workspace. ``now`` is injectable so the state machine can be tested without sleeping."""

    def __init__(
        self,
        *,
        tokens: tuple[str, ...] | list[str] = ("emulator-token",),
        clients: dict[str, str] | None = None,
        update_seconds: float = 3.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.now = now
        self.host = ""  # set by the server once it knows its URL
        self._lock = threading.RLock()
        self._pats = frozenset(tokens)
        self._clients = dict(clients if clients is not None else {"emulator-client": "emulator-secret"})
        self._update_seconds = float(update_seconds)
        self.faults = FaultRegistry()
        self.request_log = RequestLog()
        self.rate_limit: RateLimit = RateLimit()
        self.scheduler: UpdateScheduler = UpdateScheduler(self)
        self._init_state()

    def _init_state(self) -> None:
        self._pipelines: dict[str, Pipeline] = {}
        self._names: dict[str, set[str]] = {}
        self._connections: dict[str, Connection] = {}
        self._runs: dict[int, JobRun] = {}
        self._oauth: dict[str, tuple[str, float]] = {}
        self.token_ttl = 3600.0
        self._default_script = Script.default(self._update_seconds)
        self._connection_script: tuple[float, str, str | None] = (0.0, "ACTIVE", None)
        old = getattr(self, "_sql", None)
        self._sql: SqlEngine | None = None  # created on the first SQL request (imports DuckDB)
        if old is not None:
            old.close()

    # ================================================================ auth
    def authenticate(self, authorization: str | None) -> tuple[str, str | None]:
        """(kind, user) for an Authorization header; kind is pat, oauth, none or invalid."""
        if not authorization:
            return "none", None
        scheme, _, token = authorization.partition(" ")
        if scheme.lower() != "bearer" or not token:
            return "invalid", None
        if token in self._pats:
            return "pat", PAT_USER
        entry = self._oauth.get(token)
        if entry and entry[1] > self.now():
            return "oauth", entry[0]
        return "invalid", None

    def issue_token(
        self, client_id: str | None, client_secret: str | None, grant_type: str | None, scope: str | None
    ) -> dict[str, Any]:
        """OAuth client-credentials grant; raises ApiError with an OAuth-style error_code on bad input."""
        if grant_type != "client_credentials":
            raise ApiError(400, "unsupported_grant_type", f"grant_type {grant_type!r} is not supported.")
        if not client_id or self._clients.get(client_id) != client_secret:
            raise ApiError(401, "invalid_client", "Client authentication failed.")
        token = "emu-oauth-" + secrets.token_urlsafe(24)
        with self._lock:
            self._oauth[token] = (client_id, self.now() + self.token_ttl)
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(self.token_ttl),
            "scope": scope or "all-apis",
        }

    def me(self, kind: str, user: str) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": str(zlib.crc32(user.encode())),
            "userName": user,
            "displayName": user if kind == "oauth" else "Emulator User",
            "active": True,
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
            "groups": [{"display": "users", "value": "100", "type": "direct"}],
        }
        if kind != "oauth":
            out["emails"] = [{"value": user, "primary": True, "type": "work"}]
        return out

    # ================================================================ jobs (benchmark only)
    def api_get_job_run(self, run_id: int | None) -> dict[str, Any]:
        with self._lock:
            run = self._runs.get(run_id or -1)
            if run is None:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
            return run.info(self.now(), self.host)

    # ================================================================ control operations
    def script_pipeline(self, pipeline_id_or_name: str, **changes: Unpack[ScriptChanges]) -> None:
        """Script the next updates of one pipeline, on top of the default script."""
        with self._lock:
            p = self._resolve(pipeline_id_or_name)
            p.script = self._default_script.with_changes({"outcome": "COMPLETED", **changes})

    def set_default_script(self, *, update_seconds: float | None = None, **changes: Unpack[ScriptChanges]) -> None:
        """Replace the script of every pipeline without its own; ``update_seconds`` rescales the default phases."""
        with self._lock:
            base = Script.default(update_seconds if update_seconds is not None else self._update_seconds)
            self._default_script = base.with_changes({"outcome": "COMPLETED", **changes})

    def script_condition(
        self,
        pipeline_id_or_name: str,
        condition: str,
        *,
        table: str | None = None,
        parameters: dict[str, Any] | None = None,
        updates: int | None = None,
    ) -> None:
        """Fail updates of one pipeline with a documented error condition (``CLASS.SUB``), on one table's flow or,
        without ``table``, on the whole update; see ``lifecycle/conditions.py`` for how long it keeps failing."""
        scripted = scripted_condition(condition, table, parameters, updates)
        with self._lock:
            self._resolve(pipeline_id_or_name).conditions.append(scripted)

    def clear_conditions(self, pipeline_id_or_name: str) -> None:
        with self._lock:
            self._resolve(pipeline_id_or_name).conditions.clear()

    def start_update_externally(
        self,
        pipeline_id: str,
        *,
        cause: str = "USER_ACTION",
        full_refresh: bool = False,
        refresh_selection: list[str] | None = None,
        full_refresh_selection: list[str] | None = None,
    ) -> str:
        """Start an update as someone else would (the UI, another DAG): same rules as start_update."""
        body = {
            "full_refresh": full_refresh,
            "refresh_selection": refresh_selection,
            "full_refresh_selection": full_refresh_selection,
        }
        with self._lock:
            return self._start(self._resolve(pipeline_id), body, cause).update_id

    def expire_tokens(self) -> None:
        """Revoke every OAuth token issued so far (PATs are unaffected); the next call with one gets 401."""
        with self._lock:
            self._oauth.clear()

    def set_token_ttl(self, seconds: float) -> None:
        with self._lock:
            self.token_ttl = float(seconds)

    def script_connections(
        self, *, provisioning_seconds: float = 0.0, final_state: str = "ACTIVE", message: str | None = None
    ) -> None:
        """How connections created through the API from now on provision: PROVISIONING for N s, then final_state."""
        if final_state not in PROVISIONING_STATES:
            raise ValueError(f"final_state must be one of {PROVISIONING_STATES}")
        with self._lock:
            self._connection_script = (float(provisioning_seconds), final_state, message)

    def set_connection_state(self, name: str, state: str, message: str | None = None) -> None:
        if state not in PROVISIONING_STATES:
            raise ValueError(f"state must be one of {PROVISIONING_STATES}")
        with self._lock:
            c = self._connection(name)
            c.fixed_state, c.message = state, message

    def create_connection_as_ui(
        self, name: str, connection_type: str, options: dict[str, str], state: str = "ACTIVE"
    ) -> dict[str, Any]:
        """A connection made in Catalog Explorer (e.g. OAuth U2M for SALESFORCE), which the API cannot create."""
        with self._lock:
            c = self._new_connection(
                {"name": name, "connection_type": connection_type, "options": options}, UI_USER, "OAUTH_U2M"
            )
            c.fixed_state = state
            return c.info(self.now())

    def create_job_run(self, duration_seconds: float) -> int:
        with self._lock:
            run_id = 1000 + len(self._runs) + 1
            self._runs[run_id] = JobRun(run_id, 42, self.now(), float(duration_seconds))
            return run_id

    def reset(self) -> None:
        """Forget everything a test did: pipelines, connections, runs, tokens, scripts, faults, the request log."""
        self.scheduler.unschedule()
        with self._lock:
            self._init_state()
            self.faults.clear()
            self.request_log.clear()
            self.rate_limit.set(None)

    # ---- accessors for assertions (wire-shaped dicts)
    def pipeline(self, pipeline_id_or_name: str) -> dict[str, Any]:
        with self._lock:
            return self.api_get_pipeline(self._resolve(pipeline_id_or_name).pipeline_id)

    def pipelines(self) -> list[dict[str, Any]]:
        with self._lock:
            return [self.api_get_pipeline(pid) for pid in self._pipelines]

    def update(self, pipeline_id: str, update_id: str | None = None) -> dict[str, Any]:
        """One update (the latest when update_id is None) as GetUpdate returns it."""
        with self._lock:
            p = self._resolve(pipeline_id)
            if update_id is None:
                if not p.updates:
                    raise not_found(f"Pipeline {p.pipeline_id} has no updates.")
                update_id = p.updates[-1].update_id
            return self.api_get_update(p.pipeline_id, update_id)["update"]

    def updates(self, pipeline_id: str) -> list[dict[str, Any]]:
        with self._lock:
            p = self._resolve(pipeline_id)
            return [u.info(self.now(), detail=True) for u in reversed(p.updates)]

    def events(self, pipeline_id: str, update_id: str | None = None) -> list[dict[str, Any]]:
        """All events so far, oldest first, with ``details``."""
        with self._lock:
            p = self._resolve(pipeline_id)
            self._materialize(p, self.now())
            return [
                {k: v for k, v in e.items() if k != "_ms"}
                for e in p.events
                if update_id is None or e["origin"].get("update_id") == update_id
            ]

    def connection(self, name: str) -> dict[str, Any]:
        """ConnectionInfo plus what the wire hides: ``secret_options`` and the scripted ``provisioning_message``."""
        with self._lock:
            c = self._connection(name)
            out = c.info(self.now())
            out["secret_options"] = {k: v for k, v in c.options.items() if is_secret_option(k)}
            out["provisioning_message"] = c.message
            return out

    def job_run(self, run_id: int) -> dict[str, Any]:
        return self.api_get_job_run(run_id)

    # ============================================================ SQL warehouses (the engine lives in sql/engine.py)
    @property
    def sql_engine(self) -> SqlEngine:
        with self._lock:
            if self._sql is None:
                self._sql = SqlEngine(self)
            return self._sql

    def _call(self, op: str, **kwargs: Any) -> Any:
        """The control operations ``Workspace`` does not implement itself (see ``control_ops.DELEGATED``)."""
        return DELEGATED[op](self)(**kwargs)
