"""The aiohttp application: Databricks REST routes over a ``Workspace``, plus auth, faults and the request log.

Handlers are thin: parse the request, call one ``Workspace.api_*`` method, serialize. One middleware does the
cross-cutting work in a fixed order: fault "before" -> auth (``/api/`` only) -> handler -> fault "after" -> record.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from airflow_provider_lakeflow.testing.emulator.api.listing import bool_param, int_param
from airflow_provider_lakeflow.testing.emulator.control_ops import CONTROL_OPS, to_jsonable
from airflow_provider_lakeflow.testing.emulator.errors import ApiError, invalid
from airflow_provider_lakeflow.testing.emulator.faults import Fault, RecordedRequest
from airflow_provider_lakeflow.testing.emulator.workspace import WORKSPACE_ID, Workspace

log = logging.getLogger(__name__)
WORKSPACE_KEY: web.AppKey[Workspace] = web.AppKey("workspace", Workspace)
CONTROL_PREFIX = "/__emulator__/"
_dumps = json.JSONEncoder(separators=(",", ":")).encode

Handler = Callable[[web.Request], Awaitable[Any]]


@dataclass
class _RequestContext:
    """Per-request scratch shared by the middleware and the handler (a ContextVar: they run in the same task)."""

    auth: str = "none"
    user: str | None = None
    parsed: bool = False
    body: Any = None
    record_body: Any = None


_CTX: ContextVar[_RequestContext] = ContextVar("lakeflow_emulator_request")


def _json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_dumps(obj).encode(), status=status, headers=headers, content_type="application/json")


def _error_response(err: ApiError) -> web.Response:
    return _json_response(err.body(), err.status, err.headers or None)


def _base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def _body(request: web.Request) -> dict[str, Any]:
    """The JSON body (parsed once: the middleware reads it first to record it)."""
    ctx = _CTX.get()
    if not ctx.parsed:
        raw = await request.read() if request.body_exists else b""
        try:
            ctx.body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ApiError(400, "MALFORMED_REQUEST", "Could not parse the request body as JSON.") from None
        ctx.parsed = True
    body = ctx.body
    if not isinstance(body, dict):
        raise ApiError(400, "MALFORMED_REQUEST", "The request body must be a JSON object.")
    return body


def _user(request: web.Request) -> str:
    return str(_CTX.get().user or "")


# ------------------------------------------------------------------------------------------------ discovery, OAuth
async def well_known(request: web.Request) -> Any:
    # No "cloud": the SDK would then treat http://127.0.0.1 as that cloud's host. account_id omitted likewise.
    return {"oidc_endpoint": f"{_base_url(request)}/oidc", "workspace_id": WORKSPACE_ID}


async def oidc_discovery(request: web.Request) -> Any:
    base = f"{_base_url(request)}/oidc"
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
    _CTX.get().record_body = {"grant_type": grant, "scope": scope, "client_id": client_id}
    ws = request.app[WORKSPACE_KEY]
    try:
        return ws.issue_token(
            str(client_id) if client_id else None,
            str(secret) if secret is not None else None,
            str(grant) if grant else None,
            str(scope) if scope else None,
        )
    except ApiError as e:
        return _json_response({"error": e.error_code, "error_description": e.message}, e.status)


async def me(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].me(_CTX.get().auth, _user(request))


# ------------------------------------------------------------------------------------------------ pipelines
async def create_pipeline(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_create_pipeline(await _body(request), _user(request))


async def list_pipelines(request: web.Request) -> Any:
    q = request.query
    return request.app[WORKSPACE_KEY].api_list_pipelines(
        q.get("filter"), int_param(q.get("max_results"), "max_results"), q.getall("order_by", []), q.get("page_token")
    )


async def get_pipeline(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_get_pipeline(request.match_info["pipeline_id"])


async def edit_pipeline(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_edit_pipeline(request.match_info["pipeline_id"], await _body(request))


async def delete_pipeline(request: web.Request) -> Any:
    bool_param(request.query.get("cascade"), "cascade")
    bool_param(request.query.get("force"), "force")
    return request.app[WORKSPACE_KEY].api_delete_pipeline(request.match_info["pipeline_id"])


async def start_update(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_start_update(request.match_info["pipeline_id"], await _body(request))


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
    return request.app[WORKSPACE_KEY].api_create_connection(await _body(request), _user(request))


async def list_connections(request: web.Request) -> Any:
    q = request.query
    return request.app[WORKSPACE_KEY].api_list_connections(
        int_param(q.get("max_results"), "max_results"), q.get("page_token")
    )


async def get_connection(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_get_connection(request.match_info["name"])


async def update_connection(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_update_connection(
        request.match_info["name"], await _body(request), _user(request)
    )


async def delete_connection(request: web.Request) -> Any:
    return request.app[WORKSPACE_KEY].api_delete_connection(request.match_info["name"])


# ------------------------------------------------------------------------------------------------ SQL statements
async def execute_statement(request: web.Request) -> Any:
    engine = request.app[WORKSPACE_KEY].sql_engine
    statement, wait, on_wait_timeout = engine.submit(await _body(request))
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
        run_id = (await _body(request)).get("run_id")
    return request.app[WORKSPACE_KEY].api_get_job_run(int_param(run_id, "run_id"))


async def control(request: web.Request) -> Any:
    op = request.match_info["op"]
    if op not in CONTROL_OPS:
        raise ApiError(404, "ENDPOINT_NOT_FOUND", f"Unknown control operation {op!r}.")
    kwargs = await _body(request)
    try:
        result = getattr(request.app[WORKSPACE_KEY], op)(**kwargs)
    except (TypeError, ValueError) as e:
        raise invalid(f"{op}: {e}") from None
    return {"result": to_jsonable(result)}


# ------------------------------------------------------------------------------------------------ middleware
async def _apply_fault(request: web.Request, fault: Fault) -> web.StreamResponse | None:
    """A response that replaces the real one, or None to carry on (slow: after sleeping)."""
    if fault.kind == "slow":
        await asyncio.sleep(fault.delay)
        return None
    if fault.kind == "drop":
        if request.transport is not None:
            request.transport.close()
        return web.Response(status=599)  # never sent: the connection is closed
    headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else None
    return _json_response(fault.body(), fault.status, headers)


def _wrap(result: Any) -> web.StreamResponse:
    return result if isinstance(result, web.StreamResponse) else _json_response(result)


def _client_port(request: web.Request) -> int | None:
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    return int(peer[1]) if isinstance(peer, tuple) and len(peer) >= 2 else None


@web.middleware
async def emulator_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    ws = request.app[WORKSPACE_KEY]
    path, method = request.path, request.method
    ctx = _RequestContext()
    _CTX.set(ctx)
    if path.startswith(CONTROL_PREFIX):
        try:
            return _wrap(await handler(request))
        except ApiError as e:
            return _error_response(e)
    fault = ws.faults.take(method, path)
    resp: web.StreamResponse | None = None
    try:
        if fault is not None and fault.when == "before":
            resp = await _apply_fault(request, fault)
        if resp is None:
            if request.body_exists and request.content_type == "application/json":
                with contextlib.suppress(ApiError):  # reported by the handler that needs the body
                    await _body(request)
            if path.startswith("/api/") and (retry_after := ws.rate_limit.admit()) is not None:
                raise ApiError(
                    429,
                    "REQUEST_LIMIT_EXCEEDED",
                    "The workspace's request rate limit was exceeded; retry after the Retry-After delay.",
                    {"Retry-After": str(retry_after)},
                )
            if path.startswith("/api/"):
                ctx.auth, ctx.user = ws.authenticate(request.headers.get("Authorization"))
                if ctx.user is None:
                    raise ApiError(
                        401,
                        "UNAUTHENTICATED",
                        "Invalid access token." if ctx.auth == "invalid" else "No access token provided.",
                    )
            resp = _wrap(await handler(request))
    except ApiError as e:
        resp = _error_response(e)
    except web.HTTPException as e:
        code = "ENDPOINT_NOT_FOUND" if e.status == 404 else "BAD_REQUEST" if e.status == 405 else "INTERNAL_ERROR"
        resp = _json_response({"error_code": code, "message": f"No API found for '{method} {path}'"}, e.status)
    except Exception as e:  # a bug in the emulator: answer like the real service would, and log it
        log.exception("Lakeflow emulator: unhandled error for %s %s", method, path)
        resp = _json_response({"error_code": "INTERNAL_ERROR", "message": f"Emulator error: {e}"}, 500)
    if fault is not None and fault.when == "after":
        resp = await _apply_fault(request, fault) or resp
    query = request.query
    ws.request_log.add(
        RecordedRequest(
            method=method,
            path=path,
            query={k: (v if len(vs := query.getall(k)) == 1 else vs) for k, v in query.items()},
            body=ctx.record_body if ctx.record_body is not None else ctx.body,
            status=0 if fault is not None and fault.kind == "drop" else resp.status,
            auth=ctx.auth,
            user_agent=request.headers.get("User-Agent"),
            time=time.time(),
            client_port=_client_port(request),
        )
    )
    return resp


def build_app(workspace: Workspace) -> web.Application:
    app = web.Application(middlewares=[emulator_middleware])
    app[WORKSPACE_KEY] = workspace
    r = app.router
    r.add_get("/.well-known/databricks-config", well_known)
    r.add_get("/oidc/.well-known/oauth-authorization-server", oidc_discovery)
    r.add_post("/oidc/v1/token", token)
    r.add_get("/api/2.0/preview/scim/v2/Me", me)
    p = "/api/2.0/pipelines"
    r.add_post(p, create_pipeline)
    r.add_get(p, list_pipelines)
    r.add_get(p + "/{pipeline_id}", get_pipeline)
    r.add_put(p + "/{pipeline_id}", edit_pipeline)
    r.add_delete(p + "/{pipeline_id}", delete_pipeline)
    r.add_post(p + "/{pipeline_id}/updates", start_update)
    r.add_get(p + "/{pipeline_id}/updates", list_updates)
    r.add_get(p + "/{pipeline_id}/updates/{update_id}", get_update)
    r.add_post(p + "/{pipeline_id}/stop", stop_pipeline)
    r.add_get(p + "/{pipeline_id}/events", list_events)
    c = "/api/2.1/unity-catalog/connections"
    r.add_post(c, create_connection)
    r.add_get(c, list_connections)
    r.add_get(c + "/{name}", get_connection)
    r.add_patch(c + "/{name}", update_connection)
    r.add_delete(c + "/{name}", delete_connection)
    q = "/api/2.0/sql/statements"
    r.add_post(q, execute_statement)
    r.add_post(q + "/", execute_statement)
    r.add_get(q + "/{statement_id}", get_statement)
    r.add_get(q + "/{statement_id}/result/chunks/{chunk_index}", get_statement_chunk)
    r.add_post(q + "/{statement_id}/cancel", cancel_statement)
    r.add_get("/api/2.1/jobs/runs/get", get_job_run)
    r.add_get("/api/2.2/jobs/runs/get", get_job_run)
    r.add_post(CONTROL_PREFIX + "{op}", control)
    return app


class EmulatorServer:
    """Runs the app on a port inside the current event loop (the CLI, LakeflowEmulator's thread, or a test's loop)."""

    def __init__(self, workspace: Workspace, host: str = "127.0.0.1", port: int = 0) -> None:
        self.workspace = workspace
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "") else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> str:
        self._runner = web.AppRunner(build_app(self.workspace), access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, reuse_address=True)
        await site.start()
        self.port = int(self._runner.addresses[0][1])
        self.workspace.host = self.url
        return self.url

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
