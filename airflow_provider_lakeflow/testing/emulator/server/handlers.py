"""The REST handlers: each parses its request, calls one ``Workspace.api_*`` method (or the SQL engine, or a control
operation) and returns what it returns; ``middleware`` serializes it."""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web

from airflow_provider_lakeflow.testing.emulator.api.listing import bool_param, int_param
from airflow_provider_lakeflow.testing.emulator.control_ops import CONTROL_OPS, to_jsonable
from airflow_provider_lakeflow.testing.emulator.errors import ApiError, invalid
from airflow_provider_lakeflow.testing.emulator.model import WORKSPACE_ID
from airflow_provider_lakeflow.testing.emulator.server.context import (
    REQUEST_CONTEXT,
    WORKSPACE_KEY,
    base_url,
    json_response,
    request_body,
    request_user,
)

Handler = Callable[[web.Request], Awaitable[Any]]


# ------------------------------------------------------------------------------------------------ discovery, OAuth
async def well_known(request: web.Request) -> Any:
    # No "cloud": the SDK would then treat http://127.0.0.1 as that cloud's host. account_id omitted likewise.
    return {"oidc_endpoint": f"{base_url(request)}/oidc", "workspace_id": WORKSPACE_ID}


async def oidc_discovery(request: web.Request) -> Any:
    base = f"{base_url(request)}/oidc"
    return {
        "issuer": base,
        "authorization_endpoint": f"{base}/v1/authorize",
        "token_endpoint": f"{base}/v1/token",
        "grant_types_supported": ["client_credentials"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
    }


async def token(request: web.Request) -> Any:
    form = await request.post()
    client_id, secret = form.get("client_id"), form.get("client_secret")
    header = request.headers.get("Authorization", "")
    if header.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(header[6:]).decode().partition(":")
        except ValueError:
            client_id = secret = None
    grant, scope = form.get("grant_type"), form.get("scope")
    REQUEST_CONTEXT.get().record_body = {"grant_type": grant, "scope": scope, "client_id": client_id}
    ws = request.app[WORKSPACE_KEY]
    try:
        return ws.issue_token(
            str(client_id) if client_id else None,
            str(secret) if secret is not None else None,
            str(grant) if grant else None,
            str(scope) if scope else None,
        )
    except ApiError as e:
        return json_response({"error": e.error_code, "error_description": e.message}, e.status)


async def me(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].me(REQUEST_CONTEXT.get().auth, request_user(request))


# ------------------------------------------------------------------------------------------------ pipelines
async def create_pipeline(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_create_pipeline(await request_body(request), request_user(request))


async def list_pipelines(request: web.Request) -> Any:
    q = request.query
    return request.app[WORKSPACE_KEY].api_list_pipelines(
        q.get("filter"), int_param(q.get("max_results"), "max_results"), q.getall("order_by", []), q.get("page_token")
    )


async def get_pipeline(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_get_pipeline(request.match_info["pipeline_id"])


async def edit_pipeline(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_edit_pipeline(request.match_info["pipeline_id"], await request_body(request))


async def delete_pipeline(request: web.Request) -> Any:
    bool_param(request.query.get("cascade"), "cascade")
    bool_param(request.query.get("force"), "force")
    return request.app[WORKSPACE_KEY].api_delete_pipeline(request.match_info["pipeline_id"])


async def start_update(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_start_update(request.match_info["pipeline_id"], await request_body(request))


async def list_updates(request: web.Request) -> Any:
    q = request.query
    return request.app[WORKSPACE_KEY].api_list_updates(
        request.match_info["pipeline_id"],
        int_param(q.get("max_results"), "max_results"),
        q.get("page_token"),
        q.get("until_update_id"),
    )


async def get_update(request: web.Request) -> Any:
    m = request.match_info
    return request.app[WORKSPACE_KEY].api_get_update(m["pipeline_id"], m["update_id"])


async def stop_pipeline(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_stop(request.match_info["pipeline_id"])


async def list_events(request: web.Request) -> Any:
    q = request.query
    return request.app[WORKSPACE_KEY].api_list_events(
        request.match_info["pipeline_id"],
        q.get("filter"),
        int_param(q.get("max_results"), "max_results"),
        q.getall("order_by", []),
        q.get("page_token"),
    )


# ------------------------------------------------------------------------------------------------ connections
async def create_connection(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_create_connection(await request_body(request), request_user(request))


async def list_connections(request: web.Request) -> Any:
    q = request.query
    return request.app[WORKSPACE_KEY].api_list_connections(
        int_param(q.get("max_results"), "max_results"), q.get("page_token")
    )


async def get_connection(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_get_connection(request.match_info["name"])


async def update_connection(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_update_connection(
        request.match_info["name"], await request_body(request), request_user(request)
    )


async def delete_connection(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_delete_connection(request.match_info["name"])


# ------------------------------------------------------------------------------------------------ SQL statements
async def execute_statement(request: web.Request) -> Any:
    engine = request.app[WORKSPACE_KEY].sql_engine
    statement, wait, on_wait_timeout = engine.submit(await request_body(request))
    await engine.wait(statement, wait)
    if wait > 0 and on_wait_timeout == "CANCEL" and statement.state in ("PENDING", "RUNNING"):
        engine.cancel(statement.statement_id)
    return engine.response(statement)


async def get_statement(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].sql_engine.api_get(request.match_info["statement_id"])


async def get_statement_chunk(request: web.Request) -> Any:
    index = int_param(request.match_info["chunk_index"], "chunk_index")
    return request.app[WORKSPACE_KEY].sql_engine.api_chunk(request.match_info["statement_id"], index or 0)


async def cancel_statement(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].sql_engine.cancel(request.match_info["statement_id"])


# ------------------------------------------------------------------------------------------------ jobs, control
async def get_job_run(request: web.Request) -> Any:
    run_id = request.query.get("run_id")
    if run_id is None and request.body_exists:
        # apache-airflow-providers-databricks sends GET runs/get with a JSON body ({"run_id": ...}), not a query.
        run_id = (await request_body(request)).get("run_id")
    return request.app[WORKSPACE_KEY].api_get_job_run(int_param(run_id, "run_id"))


async def control(request: web.Request) -> Any:
    op = request.match_info["op"]
    if op not in CONTROL_OPS:
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"Unknown control operation {op!r}.")
    kwargs = await request_body(request)
    try:
        result = getattr(request.app[WORKSPACE_KEY], op)(**kwargs)
    except (TypeError, ValueError) as e:
        raise invalid(f"{op}: {e}") from None
    return {"result": to_jsonable(result)}
