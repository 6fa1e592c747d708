"""The one middleware every request passes, in a fixed order: fault "before" -> rate limit and auth (``/api/``
only) -> handler -> fault "after" -> the request log."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from aiohttp import web

from airflow_provider_lakeflow.testing.emulator.errors import ApiError
from airflow_provider_lakeflow.testing.emulator.faults import Fault, RecordedRequest
from airflow_provider_lakeflow.testing.emulator.server.context import (
    CONTROL_PREFIX,
    REQUEST_CONTEXT,
    WORKSPACE_KEY,
    RequestContext,
    error_response,
    json_response,
    request_body,
)
from airflow_provider_lakeflow.testing.emulator.server.handlers import Handler

log = logging.getLogger(__name__)


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
    return json_response(fault.body(), fault.status, headers)


def _wrap(result: Any) -> web.StreamResponse:
    return result if isinstance(result, web.StreamResponse) else json_response(result)


def _client_port(request: web.Request) -> int | None:
    peer = request.transport.get_extra_info("peername") if request.transport is not None else None
    return int(peer[1]) if isinstance(peer, tuple) and len(peer) >= 2 else None


@web.middleware
async def emulator_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    ws = request.app[WORKSPACE_KEY]
    path, method = request.path, request.method
    ctx = RequestContext()
    REQUEST_CONTEXT.set(ctx)
    if path.startswith(CONTROL_PREFIX):
        try:
            return _wrap(await handler(request))
        except ApiError as e:
            return error_response(e)
    fault = ws.faults.take(method, path)
    resp: web.StreamResponse | None = None
    try:
        if fault is not None and fault.when == "before":
            resp = await _apply_fault(request, fault)
        if resp is None:
            if request.body_exists and request.content_type == "application/json":
                with contextlib.suppress(ApiError):  # reported by the handler that needs the body
                    await request_body(request)
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
        resp = error_response(e)
    except web.HTTPException as e:
        code = "ENDPOINT_NOT_FOUND" if e.status == 404 else "BAD_REQUEST" if e.status == 405 else "INTERNAL_ERROR"
        resp = json_response({"error_code": code, "message": f"No API found for '{method} {path}'"}, e.status)
    except Exception as e:  # a bug in the emulator: answer like the real service would, and log it
        log.exception("Lakeflow emulator: unhandled error for %s %s", method, path)
        resp = json_response({"error_code": "INTERNAL_ERROR", "message": f"Emulator error: {e}"}, 500)
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
