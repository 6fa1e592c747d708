"""The workspace API of pipeline updates and their event log: start, get, list and stop updates; list events."""

from __future__ import annotations

import copy
import re
import uuid
from typing import Any

from airflow_provider_lakeflow.testing.emulator.api.listing import decode_token, encode_token, event_filter
from airflow_provider_lakeflow.testing.emulator.errors import conflict, invalid, not_found
from airflow_provider_lakeflow.testing.emulator.lifecycle.conditions import fire as fire_conditions
from airflow_provider_lakeflow.testing.emulator.lifecycle.events import materialize
from airflow_provider_lakeflow.testing.emulator.lifecycle.script import Flow, match_flow, pipeline_flows
from airflow_provider_lakeflow.testing.emulator.lifecycle.update import Update
from airflow_provider_lakeflow.testing.emulator.model import Pipeline, WorkspaceState

_UPDATE_REQUEST_FIELDS = (
    "full_refresh_selection",
    "refresh_selection",
    "full_refresh_selection_by_path",
    "refresh_selection_by_path",
    "parameters",
    "test_only",  # databricks-sdk 0.167+: a test-only update, echoed in UpdateInfo only when true
    "test_options",
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


class UpdatesApi(WorkspaceState):
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
            conditions=tuple(fire_conditions(p.conditions, flows, request, d.get("connection_name"))),
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
                p.events.extend(materialize(u, now, p.name, len(p.events) + 1))

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
