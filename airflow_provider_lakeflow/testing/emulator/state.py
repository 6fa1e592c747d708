"""The in-memory Databricks workspace: pipelines, updates, events, UC connections, tokens, job runs.

No HTTP here. ``api_*`` methods are the REST surface (the server maps routes onto them one to one); the other public
methods are the control operations, shared by the in-process ``LakeflowEmulator`` and the ``/__emulator__/`` routes.
Everything is guarded by one lock: calls are short, so the event loop and control threads never wait long.
"""

from __future__ import annotations

import copy
import re
import secrets
import threading
import time
import uuid
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow.connection_options import CONNECTION_TYPES as CLIENT_CONNECTION_TYPES
from airflow_provider_lakeflow.testing.emulator.errors import ApiError, already_exists, conflict, invalid, not_found
from airflow_provider_lakeflow.testing.emulator.faults import FaultRegistry, RecordedRequest, RequestLog
from airflow_provider_lakeflow.testing.emulator.query import (
    decode_token,
    encode_token,
    event_filter,
    pipeline_filter,
)
from airflow_provider_lakeflow.testing.emulator.schedules import SCHEDULE_OPS, ScheduleControls
from airflow_provider_lakeflow.testing.emulator.updates import (
    TERMINAL,
    Flow,
    Script,
    Update,
    match_flow,
    pipeline_flows,
)
from airflow_provider_lakeflow.testing.emulator.validation import validate_pipeline_spec

if TYPE_CHECKING:
    from airflow_provider_lakeflow.testing.emulator.sql import SqlEngine

PAT_USER = "emulator-user@example.com"
UI_USER = "ui-user@example.com"
WORKSPACE_ID = "1234567890123456"
METASTORE_ID = "00000000-0000-4000-8000-00000000e1a0"
# Not part of PipelineSpec: write-only request fields.
_NOT_IN_SPEC = ("allow_duplicate_names", "dry_run", "parameters", "run_as", "expected_last_modified", "pipeline_id")
_UPDATE_REQUEST_FIELDS = (
    "full_refresh_selection",
    "refresh_selection",
    "full_refresh_selection_by_path",
    "refresh_selection_by_path",
    "parameters",
)
CAUSES = (
    "API_CALL",
    "INFRASTRUCTURE_MAINTENANCE",
    "JOB_TASK",
    "RETRY_ON_FAILURE",
    "SCHEMA_CHANGE",
    "SERVICE_UPGRADE",
    "USER_ACTION",
)
# The server knows the same types as the client-side checks (which track databricks-sdk's ConnectionType enum).
CONNECTION_TYPES = CLIENT_CONNECTION_TYPES | {"UNKNOWN_CONNECTION_TYPE"}
PROVISIONING_STATES = ("ACTIVE", "DEGRADED", "DELETING", "FAILED", "PROVISIONING", "UPDATING")
# Connection type -> IngestionSourceType, echoed (output only) in ingestion_definition.source_type.
_SOURCE_TYPES = {
    t: t
    for t in (
        "BIGQUERY",
        "CONFLUENCE",
        "DYNAMICS365",
        "GA4_RAW_DATA",
        "META_MARKETING",
        "MYSQL",
        "NETSUITE",
        "ORACLE",
        "POSTGRESQL",
        "SALESFORCE",
        "SERVICENOW",
        "SMARTSHEET",
        "SQLSERVER",
        "TERADATA",
        "TIKTOK_ADS",
        "WORKDAY_RAAS",
        "ZENDESK",
    )
}
_SECRET_WORDS = ("password", "secret", "private_key", "privatekey", "api_key", "apikey", "passphrase", "credential")
_SECRET_KEYS = ("token", "bearer_token", "access_token", "refresh_token", "personal_access_token", "pem_private_key")
_PIPELINES_PAGE_MAX = 100
_CONNECTIONS_PAGE = 50


# The control operations, shared by LakeflowEmulator, EmulatorClient and the /__emulator__/<op> routes.
CONTROL_OPS = (
    "script_pipeline",
    "set_default_script",
    "start_update_externally",
    *SCHEDULE_OPS,
    "inject_fault",
    "clear_faults",
    "requests",
    "clear_requests",
    "expire_tokens",
    "set_token_ttl",
    "script_connections",
    "set_connection_state",
    "create_connection_as_ui",
    "create_job_run",
    "reset",
    "pipeline",
    "pipelines",
    "update",
    "updates",
    "events",
    "connection",
    "job_run",
    # SQL warehouses (sql.py)
    "set_sql_warehouses",
    "set_sql_chunk_rows",
    "script_statement",
    "clear_statement_scripts",
    "statements",
    "query_sql",
)


def is_secret_option(key: str) -> bool:
    """Option keys whose values UC never returns (passwords, client secrets, tokens, private and API keys)."""
    k = key.lower()
    if k.endswith(("_endpoint", "_url", "_uri", "_expiration_epoch_sec", "_scope", "_scopes")):
        return False
    return k in _SECRET_KEYS or k.endswith("_token") or any(w in k for w in _SECRET_WORDS)


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


def _now_ms(now: float) -> int:
    return int(now * 1000)


@dataclass
class Pipeline:
    pipeline_id: str
    spec: dict[str, Any]
    run_as: dict[str, Any] | None
    parameters: dict[str, Any] | None
    creator: str
    last_modified: int
    updates: list[Update] = field(default_factory=list)
    by_update_id: dict[str, Update] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)
    script: Script | None = None

    @property
    def name(self) -> str:
        return str(self.spec.get("name") or "")

    @property
    def continuous(self) -> bool:
        return self.spec.get("continuous") is True or self.spec.get("gateway_definition") is not None


@dataclass
class Connection:
    name: str
    connection_type: str
    options: dict[str, str]
    owner: str
    created_by: str
    created_at: int
    credential_type: str
    connection_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    comment: str | None = None
    properties: dict[str, str] | None = None
    read_only: bool | None = None
    environment_settings: dict[str, Any] | None = None
    updated_at: int | None = None
    updated_by: str | None = None
    provisioning_until: float = 0.0
    final_state: str = "ACTIVE"
    fixed_state: str | None = None
    message: str | None = None

    def state(self, now: float) -> str:
        if self.fixed_state:
            return self.fixed_state
        return "PROVISIONING" if now < self.provisioning_until else self.final_state

    def info(self, now: float) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "full_name": self.name,
            "connection_id": self.connection_id,
            "connection_type": self.connection_type,
            "credential_type": self.credential_type,
            "owner": self.owner,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "updated_at": self.updated_at or self.created_at,
            "updated_by": self.updated_by or self.created_by,
            "metastore_id": METASTORE_ID,
            "securable_type": "CONNECTION",
            "provisioning_info": {"state": self.state(now)},
        }
        public = {k: v for k, v in self.options.items() if not is_secret_option(k)}
        if public:
            out["options"] = public
        for key in ("comment", "properties", "read_only", "environment_settings"):
            if getattr(self, key) is not None:
                out[key] = getattr(self, key)
        return out


@dataclass
class JobRun:
    run_id: int
    job_id: int
    created: float
    duration: float

    def info(self, now: float, host: str) -> dict[str, Any]:
        """What DatabricksExecutionTrigger reads: PENDING for the first 20%, RUNNING, then TERMINATED/SUCCESS."""
        elapsed = now - self.created
        state: dict[str, Any]
        if elapsed >= self.duration:
            state = {"life_cycle_state": "TERMINATED", "result_state": "SUCCESS", "state_message": ""}
            status = {
                "state": "TERMINATED",
                "termination_details": {"code": "SUCCESS", "type": "SUCCESS", "message": ""},
            }
        elif elapsed >= 0.2 * self.duration:
            state = {"life_cycle_state": "RUNNING", "state_message": "In run"}
            status = {"state": "RUNNING"}
        else:
            state = {"life_cycle_state": "PENDING", "state_message": "Waiting for cluster"}
            status = {"state": "PENDING"}
        out = {
            "job_id": self.job_id,
            "run_id": self.run_id,
            "number_in_job": self.run_id,
            "run_name": f"emulated-run-{self.run_id}",
            "run_type": "JOB_RUN",
            "state": state,
            "status": status,
            "start_time": _now_ms(self.created),
            "run_page_url": f"{host}/#job/{self.job_id}/run/{self.run_id}",
            "tasks": [],
        }
        if elapsed >= self.duration:
            out["end_time"] = _now_ms(self.created + self.duration)
            out["run_duration"] = int(self.duration * 1000)
        return out


class Workspace(ScheduleControls):
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

    # ================================================================ pipelines: REST
    def _pipeline(self, pipeline_id: str) -> Pipeline:
        p = self._pipelines.get(pipeline_id)
        if p is None:
            raise not_found(f"Pipeline {pipeline_id} does not exist.")
        return p

    def _resolve(self, pipeline_id_or_name: str) -> Pipeline:
        p = self._pipelines.get(pipeline_id_or_name)
        if p is not None:
            return p
        ids = self._names.get(pipeline_id_or_name) or set()
        if len(ids) == 1:
            return self._pipelines[next(iter(ids))]
        if ids:
            raise invalid(f"Several pipelines are named {pipeline_id_or_name!r}: {sorted(ids)}; use an id.")
        raise not_found(f"Pipeline {pipeline_id_or_name} does not exist.")

    def _spec(self, body: dict[str, Any], pipeline_id: str | None) -> dict[str, Any]:
        spec = {k: copy.deepcopy(v) for k, v in body.items() if k not in _NOT_IN_SPEC}
        if pipeline_id:
            spec["id"] = pipeline_id
        spec.setdefault("channel", "CURRENT")
        d = spec.get("ingestion_definition")
        if isinstance(d, dict):
            d.pop("source_type", None)
            conn = self._connections.get(str(d.get("connection_name") or "").lower())
            if conn and conn.connection_type in _SOURCE_TYPES:
                d["source_type"] = _SOURCE_TYPES[conn.connection_type]
        return spec

    def _check_name(self, name: str, allow_duplicates: bool, exclude: str | None = None) -> None:
        others = (self._names.get(name) or set()) - {exclude}
        if name and others and not allow_duplicates:
            raise already_exists(
                f"A pipeline with name '{name}' already exists (pipeline_id {', '.join(sorted(others))}). "
                "Choose a different name or set allow_duplicate_names to true."
            )

    def _index(self, p: Pipeline, add: bool) -> None:
        ids = self._names.setdefault(p.name, set())
        if add:
            ids.add(p.pipeline_id)
        else:
            ids.discard(p.pipeline_id)
            if not ids:
                del self._names[p.name]

    def api_create_pipeline(self, body: dict[str, Any], user: str) -> dict[str, Any]:
        validate_pipeline_spec(body)
        with self._lock:
            name = body.get("name") or ""
            self._check_name(name, body.get("allow_duplicate_names") is True)
            if body.get("dry_run") is True:
                return {"effective_settings": self._spec(body, None)}
            pid = str(uuid.uuid4())
            now = self.now()
            p = Pipeline(
                pid,
                self._spec(body, pid),
                copy.deepcopy(body.get("run_as")),
                copy.deepcopy(body.get("parameters")),
                user,
                _now_ms(now),
            )
            self._pipelines[pid] = p
            self._index(p, True)
            if p.continuous:
                self._start(p, {}, "API_CALL")
            return {"pipeline_id": pid}

    def api_get_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        with self._lock:
            p = self._pipeline(pipeline_id)
            now = self.now()
            out = self._state_info(p, now)
            out["spec"] = p.spec
            out["last_modified"] = p.last_modified
            out["effective_publishing_mode"] = "DEFAULT_PUBLISHING_MODE"
            for key in ("run_as", "parameters"):
                if getattr(p, key) is not None:
                    out[key] = getattr(p, key)
            if p.spec.get("budget_policy_id"):
                out["effective_budget_policy_id"] = p.spec["budget_policy_id"]
            latest = p.updates[-1] if p.updates else None
            if latest is not None and latest.state(now) == "FAILED":
                out["cause"] = latest.fail_message or latest.script.error_message or "The latest update failed."
            return out

    def _state_info(self, p: Pipeline, now: float) -> dict[str, Any]:
        """PipelineStateInfo: the list endpoint's item and the base of GetPipelineResponse."""
        latest = p.updates[-1] if p.updates else None
        latest_state = latest.state(now) if latest else None
        if latest_state is None or latest_state in TERMINAL:
            state = "IDLE"
        elif latest_state == "STOPPING":
            state = "STOPPING"
        else:
            state = "RUNNING"
        run_as = p.run_as or {}
        out: dict[str, Any] = {
            "pipeline_id": p.pipeline_id,
            "name": p.name,
            "state": state,
            "health": "UNHEALTHY" if latest_state == "FAILED" else "HEALTHY",
            "creator_user_name": p.creator,
            "run_as_user_name": run_as.get("user_name") or run_as.get("service_principal_name") or p.creator,
        }
        if p.updates:
            out["latest_updates"] = [u.state_info(now) for u in reversed(p.updates[-5:])]
        return out

    def api_edit_pipeline(self, pipeline_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            p = self._pipeline(pipeline_id)
            if body.get("id") not in (None, pipeline_id):
                raise invalid(f"id: {body['id']!r} does not match the pipeline being edited ({pipeline_id}).")
            expected = body.get("expected_last_modified")
            if expected is not None and int(expected) != p.last_modified:
                raise conflict(
                    f"Pipeline {pipeline_id} was modified at {p.last_modified}, after expected_last_modified "
                    f"{expected}; read it again and retry."
                )
            validate_pipeline_spec(body)
            old_gw = (p.spec.get("gateway_definition") or {}).get("connection_name")
            new_gw = (body.get("gateway_definition") or {}).get("connection_name")
            if old_gw and new_gw and old_gw != new_gw:
                raise invalid("gateway_definition.connection_name: is immutable; create a new gateway instead.")
            name = body.get("name") or ""
            self._check_name(name, body.get("allow_duplicate_names") is True, exclude=pipeline_id)
            self._index(p, False)
            p.spec = self._spec(body, pipeline_id)
            self._index(p, True)
            if "run_as" in body:
                p.run_as = copy.deepcopy(body["run_as"])
            p.parameters = copy.deepcopy(body.get("parameters"))
            p.last_modified = max(_now_ms(self.now()), p.last_modified + 1)
            return {}

    def api_delete_pipeline(self, pipeline_id: str) -> dict[str, Any]:
        with self._lock:
            p = self._pipeline(pipeline_id)
            now = self.now()
            for u in p.updates:
                u.stop(now, immediately=True)
            self._index(p, False)
            del self._pipelines[pipeline_id]
            return {}

    def api_list_pipelines(
        self, filter_: str | None, max_results: int | None, order_by: list[str], page_token: str | None
    ) -> dict[str, Any]:
        size = 25 if max_results is None else max_results
        if size > _PIPELINES_PAGE_MAX or size < 1:
            raise invalid(f"max_results: must be between 1 and {_PIPELINES_PAGE_MAX}, got {size}.")
        if page_token:
            tok = decode_token(page_token)
            filter_, order = tok.get("f"), str(tok.get("o", "id asc"))
            offset = int(tok.get("n", 0))
        else:
            order = (order_by[0] if order_by else "id asc").strip().lower()
            offset = 0
        m = re.fullmatch(r"(id|name)(?:\s+(asc|desc))?", order)
        if not m:
            raise invalid(f"order_by: unsupported value {order!r}; use 'id asc', 'id desc', 'name asc' or 'name desc'.")
        pred = pipeline_filter(filter_)
        with self._lock:
            now = self.now()
            items = [p for p in self._pipelines.values() if pred(p.spec)]
            key = m.group(1)
            items.sort(
                key=(lambda p: p.pipeline_id) if key == "id" else (lambda p: (p.name, p.pipeline_id)),
                reverse=m.group(2) == "desc",
            )
            page = items[offset : offset + size]
            out: dict[str, Any] = {"statuses": [self._state_info(p, now) for p in page]}
        if offset + size < len(items):
            out["next_page_token"] = encode_token({"f": filter_, "o": order, "n": offset + size})
        return out

    # ---- updates
    def _active(self, p: Pipeline, now: float) -> Update | None:
        u = p.updates[-1] if p.updates else None
        return u if u is not None and u.is_active(now) else None

    def _start(self, p: Pipeline, body: dict[str, Any], cause: str) -> Update:
        now = self.now()
        active = self._active(p, now)
        if active is not None:
            raise conflict(
                f"Cannot start a new update for pipeline {p.pipeline_id}: update {active.update_id} is still "
                f"active ({active.state(now)}). Stop it or wait for it to finish."
            )
        if cause not in CAUSES:
            raise invalid(f"cause: unknown value {cause!r}; expected one of {', '.join(CAUSES)}.")
        refresh = list(body.get("refresh_selection") or [])
        full = list(body.get("full_refresh_selection") or [])
        if (refresh or full) and body.get("full_refresh") is True:
            raise invalid("full_refresh: cannot be true together with refresh_selection or full_refresh_selection.")
        both = {n.lower() for n in refresh} & {n.lower() for n in full}
        if both:
            raise invalid(f"refresh_selection: {sorted(both)} also in full_refresh_selection; name each table once.")
        script = p.script or self._default_script
        flows = pipeline_flows(p.spec, script)
        if refresh or full:
            if flows:
                chosen: list[Flow] = []
                for field_name, names in (("refresh_selection", refresh), ("full_refresh_selection", full)):
                    for n in names:
                        f = match_flow(flows, n)
                        if f is None:
                            raise invalid(
                                f"{field_name}: table '{n}' is not defined in pipeline {p.pipeline_id}; its tables "
                                f"are {', '.join(x.name for x in flows)}."
                            )
                        chosen.append(f)
                flows = [f for f in flows if f in chosen]
            else:
                flows = [Flow(n) for n in refresh + full]
        d = p.spec.get("ingestion_definition") or {}
        request: dict[str, Any] = {
            "full_refresh": body.get("full_refresh") is True,
            "validate_only": body.get("validate_only") is True,
        }
        request.update({k: copy.deepcopy(body[k]) for k in _UPDATE_REQUEST_FIELDS if body.get(k)})
        u = Update(
            update_id=str(uuid.uuid4()),
            pipeline_id=p.pipeline_id,
            ordinal=len(p.updates),
            created=now,
            cause=cause,
            config=p.spec,
            request=request,
            flows=flows,
            script=script,
            continuous=p.continuous,
            fail_message=self._gateway_problem(d.get("ingestion_gateway_id"), now),
            connection_name=d.get("connection_name"),
        )
        self._materialize(p, now)  # earlier updates' events keep their order before this one's
        p.updates.append(u)
        p.by_update_id[u.update_id] = u
        return u

    def _gateway_problem(self, gateway_id: str | None, now: float) -> str | None:
        """Why an ingestion pipeline's update cannot read its gateway, or None. Checked when the update starts."""
        if not gateway_id:
            return None
        gw = self._pipelines.get(gateway_id)
        if gw is None:
            return f"Ingestion gateway pipeline {gateway_id} does not exist; create it (gateway_definition) first."
        active = self._active(gw, now)
        if active is None or active.state(now) == "STOPPING":
            return (
                f"Ingestion gateway pipeline {gateway_id} ('{gw.name}') has no running update; start the gateway "
                "and wait for it to run before starting this pipeline."
            )
        return None

    def api_start_update(self, pipeline_id: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            p = self._pipeline(pipeline_id)
            return {"update_id": self._start(p, body, body.get("cause") or "API_CALL").update_id}

    def _update(self, pipeline_id: str, update_id: str) -> Update:
        u = self._pipeline(pipeline_id).by_update_id.get(update_id)
        if u is None:
            raise not_found(f"Update {update_id} does not exist in pipeline {pipeline_id}.")
        return u

    def api_get_update(self, pipeline_id: str, update_id: str) -> dict[str, Any]:
        with self._lock:
            return {"update": self._update(pipeline_id, update_id).info(self.now(), detail=True)}

    def api_list_updates(
        self, pipeline_id: str, max_results: int | None, page_token: str | None, until_update_id: str | None
    ) -> dict[str, Any]:
        size = min(max(1, max_results or 25), 100)
        with self._lock:
            p = self._pipeline(pipeline_id)
            now = self.now()
            newest_first = list(reversed(p.updates))
            if until_update_id:
                stop = p.by_update_id.get(until_update_id)
                if stop is None:
                    raise not_found(f"Update {until_update_id} does not exist in pipeline {pipeline_id}.")
                newest_first = [u for u in newest_first if u.ordinal >= stop.ordinal]
            if page_token:
                tok = decode_token(page_token)
                k = int(tok.get("k", 0))
                if tok.get("d") == "p":
                    newer = [u for u in newest_first if u.ordinal > k]
                    page = newer[-size:]
                else:
                    page = [u for u in newest_first if u.ordinal < k][:size]
            else:
                page = newest_first[:size]
            out: dict[str, Any] = {"updates": [u.info(now, detail=False) for u in page]}
            if page:
                if page[-1].ordinal > newest_first[-1].ordinal:
                    out["next_page_token"] = encode_token({"k": page[-1].ordinal, "d": "n"})
                if page[0].ordinal < newest_first[0].ordinal:
                    out["prev_page_token"] = encode_token({"k": page[0].ordinal, "d": "p"})
            return out

    def api_stop(self, pipeline_id: str) -> dict[str, Any]:
        with self._lock:
            p = self._pipeline(pipeline_id)
            now = self.now()
            active = self._active(p, now)
            if active is not None and active.state(now) != "STOPPING":
                self._materialize(p, now)
                active.stop(now)
            return {}

    # ---- events
    def _materialize(self, p: Pipeline, now: float) -> None:
        for u in p.updates:
            if u.emitted < len(u.plan()):
                p.events.extend(u.materialize(now, p.name, len(p.events) + 1))

    def events_since(self, seen: dict[str, int]) -> list[tuple[str, list[dict[str, Any]]]]:
        """Every pipeline's events not yet seen (``seen``: pipeline id -> count already returned; updated)."""
        out: list[tuple[str, list[dict[str, Any]]]] = []
        with self._lock:
            now = self.now()
            for p in self._pipelines.values():
                self._materialize(p, now)
                done = seen.get(p.pipeline_id, 0)
                if len(p.events) > done:
                    out.append((p.pipeline_id, list(p.events[done:])))
                    seen[p.pipeline_id] = len(p.events)
        return out

    def api_list_events(
        self,
        pipeline_id: str,
        filter_: str | None,
        max_results: int | None,
        order_by: list[str],
        page_token: str | None,
    ) -> dict[str, Any]:
        size = 25 if max_results is None else max_results
        if size < 1 or size > 250:
            raise invalid(f"max_results: must be between 1 and 250, got {size}.")
        if page_token:
            tok = decode_token(page_token)
            filter_, asc, key, direction = tok.get("f"), bool(tok.get("a")), int(tok["k"]), tok.get("d", "n")
        else:
            order = (order_by[0] if order_by else "timestamp desc").strip().lower()
            m = re.fullmatch(r"timestamp(?:\s+(asc|desc))?", order)
            if not m:
                raise invalid(f"order_by: unsupported value {order!r}; use 'timestamp asc' or 'timestamp desc'.")
            asc, key, direction = m.group(1) != "desc", -1, "n"
        pred = event_filter(filter_)
        with self._lock:
            p = self._pipeline(pipeline_id)
            self._materialize(p, self.now())
            events = [e for e in p.events if pred(e)]  # ascending by sequence == by timestamp
        if not asc:
            events.reverse()
        seq = [e["sequence"]["control_plane_seq_no"] for e in events]
        if key < 0:
            start = 0
        elif direction == "n":
            start = next((i for i, s in enumerate(seq) if (s > key if asc else s < key)), len(seq))
        else:
            end = next((i for i, s in enumerate(seq) if (s >= key if asc else s <= key)), len(seq))
            start = max(0, end - size)
        page = events[start : start + size]
        out: dict[str, Any] = {"events": [{k: v for k, v in e.items() if k != "_ms"} for e in page]}
        if start + size < len(events):
            out["next_page_token"] = encode_token({"f": filter_, "a": asc, "k": seq[start + size - 1], "d": "n"})
        if start > 0 and page:
            out["prev_page_token"] = encode_token({"f": filter_, "a": asc, "k": seq[start], "d": "p"})
        return out

    # ================================================================ connections: REST
    def _connection(self, name: str) -> Connection:
        c = self._connections.get(name.lower())
        if c is None:
            raise not_found(f"Connection '{name}' does not exist.")
        return c

    def _new_connection(self, body: dict[str, Any], user: str, credential_type: str | None) -> Connection:
        name = body.get("name")
        if not name or not isinstance(name, str):
            raise invalid("name: is required.")
        ctype = body.get("connection_type")
        if ctype not in CONNECTION_TYPES:
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
            created_at=_now_ms(now),
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
            c.updated_at, c.updated_by = _now_ms(self.now()), user
            return c.info(self.now())

    def api_delete_connection(self, name: str) -> dict[str, Any]:
        with self._lock:
            c = self._connection(name)
            del self._connections[c.name.lower()]
            return {}

    # ================================================================ jobs (benchmark only)
    def api_get_job_run(self, run_id: int | None) -> dict[str, Any]:
        with self._lock:
            run = self._runs.get(run_id or -1)
            if run is None:
                raise ApiError(400, "INVALID_PARAMETER_VALUE", f"Run {run_id} does not exist.")
            return run.info(self.now(), self.host)

    # ================================================================ control operations
    def script_pipeline(
        self,
        pipeline_id_or_name: str,
        *,
        phase_seconds: float | dict[str, float] | None = None,
        outcome: str = "COMPLETED",
        error_message: str | None = None,
        rows: int | dict[str, int] | None = None,
        tables: list[str] | None = None,
        data_quality: dict[str, Any] | None = None,
        table_seconds: dict[str, float] | None = None,
    ) -> None:
        """Script the next updates of one pipeline, on top of the default script."""
        with self._lock:
            p = self._resolve(pipeline_id_or_name)
            p.script = self._default_script.with_overrides(
                phase_seconds=phase_seconds,
                outcome=outcome,
                error_message=error_message,
                rows=rows,
                tables=tables,
                data_quality=data_quality,
                table_seconds=table_seconds,
            )

    def set_default_script(
        self,
        *,
        phase_seconds: float | dict[str, float] | None = None,
        outcome: str = "COMPLETED",
        error_message: str | None = None,
        rows: int | dict[str, int] | None = None,
        tables: list[str] | None = None,
        data_quality: dict[str, Any] | None = None,
        update_seconds: float | None = None,
        table_seconds: dict[str, float] | None = None,
    ) -> None:
        """Replace the script of every pipeline without its own; ``update_seconds`` rescales the default phases."""
        with self._lock:
            base = Script.default(update_seconds if update_seconds is not None else self._update_seconds)
            self._default_script = base.with_overrides(
                phase_seconds=phase_seconds,
                outcome=outcome,
                error_message=error_message,
                rows=rows,
                tables=tables,
                data_quality=data_quality,
                table_seconds=table_seconds,
            )

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

    def inject_fault(
        self,
        path_regex: str,
        *,
        method: str | None = None,
        kind: str = "status",
        status: int = 429,
        retry_after: int | float | None = None,
        count: int | None = 1,
        delay: float = 0.0,
        when: str = "before",
    ) -> None:
        self.faults.add(
            path_regex,
            method=method,
            kind=kind,
            status=status,
            retry_after=retry_after,
            count=count,
            delay=delay,
            when=when,
        )

    def clear_faults(self) -> None:
        self.faults.clear()

    def requests(self, path_regex: str | None = None, method: str | None = None) -> list[RecordedRequest]:
        return self.request_log.select(path_regex, method)

    def clear_requests(self) -> None:
        self.request_log.clear()

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
        self.unschedule_updates()
        with self._lock:
            self._init_state()
            self.faults.clear()
            self.request_log.clear()

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

    # ================================================================ SQL warehouses (the engine lives in sql.py)
    @property
    def sql_engine(self) -> SqlEngine:
        with self._lock:
            if self._sql is None:
                from airflow_provider_lakeflow.testing.emulator.sql import SqlEngine

                self._sql = SqlEngine(self)
            return self._sql

    def set_sql_warehouses(self, warehouse_ids: list[str]) -> None:
        """The SQL warehouse ids statements may name (default: ``emulator-warehouse``); others get 404."""
        self.sql_engine.warehouses = {str(w) for w in warehouse_ids}

    def set_sql_chunk_rows(self, rows: int) -> None:
        """Rows per result chunk (default 10,000)."""
        if int(rows) < 1:
            raise ValueError("rows must be at least 1")
        self.sql_engine.chunk_rows = int(rows)

    def script_statement(
        self,
        pattern: str,
        *,
        delay: float = 0.0,
        error_message: str | None = None,
        error_code: str = "BAD_REQUEST",
        sql_state: str | None = None,
        count: int | None = None,
    ) -> None:
        """Statements matching ``pattern`` (regex) run ``delay`` seconds longer and/or fail with ``error_message``."""
        self.sql_engine.script_statement(
            pattern, delay=delay, error_message=error_message, error_code=error_code, sql_state=sql_state, count=count
        )

    def clear_statement_scripts(self) -> None:
        self.sql_engine.rules.clear()

    def statements(self) -> list[dict[str, Any]]:
        """Every SQL statement received so far (text, parameters, state), oldest first."""
        return self.sql_engine.statements()

    def query_sql(self, statement: str, parameters: dict[str, Any] | None = None) -> list[list[Any]]:
        """Query the emulator's DuckDB directly (landed tables, ``event_log(...)``), for assertions."""
        return self.sql_engine.query(statement, parameters)


def to_jsonable(value: Any) -> Any:
    """Control results over HTTP: RecordedRequest -> dict; everything else is JSON already."""
    if isinstance(value, list):
        return [to_jsonable(v) for v in value]
    if isinstance(value, RecordedRequest):
        return value.to_dict()
    return value
