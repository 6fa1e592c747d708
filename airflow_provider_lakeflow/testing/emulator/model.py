"""The workspace's data: pipelines, UC connections and job runs, and the lookups every part of the workspace shares.

``WorkspaceState`` declares the attributes ``Workspace`` holds (its REST parts, in ``api/pipelines``,
``api/updates`` and ``api/connections``, are mixins over it), so each part type-checks on its own.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from airflow_provider_lakeflow.connection_options import CONNECTION_TYPES as CLIENT_CONNECTION_TYPES
from airflow_provider_lakeflow.testing.emulator.errors import invalid, not_found
from airflow_provider_lakeflow.testing.emulator.faults import FaultRegistry, RequestLog
from airflow_provider_lakeflow.testing.emulator.lifecycle.conditions import ScriptedCondition
from airflow_provider_lakeflow.testing.emulator.lifecycle.script import Script
from airflow_provider_lakeflow.testing.emulator.lifecycle.update import Update

PAT_USER = "emulator-user@example.com"
UI_USER = "ui-user@example.com"
WORKSPACE_ID = "1234567890123456"
METASTORE_ID = "00000000-0000-4000-8000-00000000e1a0"
# The server knows the same types as the client-side checks (which track databricks-sdk's ConnectionType enum).
CONNECTION_TYPES = CLIENT_CONNECTION_TYPES | {"UNKNOWN_CONNECTION_TYPE"}
#: Sign-in sources that databricks-sdk's IngestionSourceType lists and its ConnectionType does not (yet): a connection
#: "made in Catalog Explorer" (create_connection_as_ui) may have these types.
UI_ONLY_CONNECTION_TYPES = ("GOOGLE_DRIVE", "JIRA", "ONEDRIVE", "SHAREPOINT")
PROVISIONING_STATES = ("ACTIVE", "DEGRADED", "DELETING", "FAILED", "PROVISIONING", "UPDATING")
_SECRET_WORDS = ("password", "secret", "private_key", "privatekey", "api_key", "apikey", "passphrase", "credential")
_SECRET_KEYS = ("token", "bearer_token", "access_token", "refresh_token", "personal_access_token", "pem_private_key")


def is_secret_option(key: str) -> bool:
    """Option keys whose values UC never returns (passwords, client secrets, tokens, private and API keys)."""
    k = key.lower()
    if k.endswith(("_endpoint", "_url", "_uri", "_expiration_epoch_sec", "_scope", "_scopes")):
        return False
    return k in _SECRET_KEYS or k.endswith("_token") or any(w in k for w in _SECRET_WORDS)


def now_ms(now: float) -> int:
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
    conditions: list[ScriptedCondition] = field(default_factory=list)

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
            "start_time": now_ms(self.created),
            "run_page_url": f"{host}/#job/{self.job_id}/run/{self.run_id}",
            "tasks": [],
        }
        if elapsed >= self.duration:
            out["end_time"] = now_ms(self.created + self.duration)
            out["run_duration"] = int(self.duration * 1000)
        return out


class WorkspaceState:
    """What one emulated workspace holds (set by ``Workspace.__init__``), and the lookups by id or name."""

    now: Callable[[], float]
    host: str
    faults: FaultRegistry
    request_log: RequestLog
    token_ttl: float
    _lock: threading.RLock
    _pats: frozenset[str]
    _clients: dict[str, str]
    _update_seconds: float
    _pipelines: dict[str, Pipeline]
    _names: dict[str, set[str]]
    _connections: dict[str, Connection]
    _runs: dict[int, JobRun]
    _oauth: dict[str, tuple[str, float]]
    _default_script: Script
    _connection_script: tuple[float, str, str | None]

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

    def _connection(self, name: str) -> Connection:
        c = self._connections.get(name.lower())
        if c is None:
            raise not_found(f"Connection '{name}' does not exist.")
        return c
