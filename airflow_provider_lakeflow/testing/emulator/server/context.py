"""What the middleware and the handlers share about one request: the workspace, the parsed body, who is calling;
and the JSON responses both write."""

from __future__ import annotations

import json
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from airflow_provider_lakeflow.testing.emulator.errors import ApiError
from airflow_provider_lakeflow.testing.emulator.workspace import Workspace

WORKSPACE_KEY: web.AppKey[Workspace] = web.AppKey("workspace", Workspace)
CONTROL_PREFIX = "/__emulator__/"
_dumps = json.JSONEncoder(separators=(",", ":")).encode


@dataclass
class RequestContext:
    """Per-request scratch shared by the middleware and the handler (a ContextVar: they run in the same task)."""

    auth: str = "none"
    user: str | None = None
    parsed: bool = False
    body: Any = None
    record_body: Any = None


REQUEST_CONTEXT: ContextVar[RequestContext] = ContextVar("lakeflow_emulator_request")


def json_response(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(body=_dumps(obj).encode(), status=status, headers=headers, content_type="application/json")


def error_response(err: ApiError) -> web.Response:
    return json_response(err.body(), err.status, err.headers or None)


def base_url(request: web.Request) -> str:
    return f"{request.scheme}://{request.host}"


async def request_body(request: web.Request) -> dict[str, Any]:
    """The JSON body (parsed once: the middleware reads it first to record it)."""
    ctx = REQUEST_CONTEXT.get()
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


def request_user(request: web.Request) -> str:
    return str(REQUEST_CONTEXT.get().user or "")
