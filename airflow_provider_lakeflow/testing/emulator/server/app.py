"""The aiohttp application: Databricks REST routes over a ``Workspace`` (``handlers``), behind ``middleware``.

Handlers are thin: parse the request, call one ``Workspace.api_*`` method, serialize. The middleware does the
cross-cutting work (faults, rate limit, auth, the request log).
"""

from __future__ import annotations

from aiohttp import web

from airflow_provider_lakeflow.testing.emulator.server import handlers as h
from airflow_provider_lakeflow.testing.emulator.server.context import CONTROL_PREFIX, WORKSPACE_KEY
from airflow_provider_lakeflow.testing.emulator.server.middleware import emulator_middleware
from airflow_provider_lakeflow.testing.emulator.workspace import Workspace

__all__ = ["CONTROL_PREFIX", "EmulatorServer", "build_app"]

_PIPELINE = "/api/2.0/pipelines/{pipeline_id}"
_STATEMENTS = "/api/2.0/sql/statements"
# path -> {method: handler}; every Databricks route the emulator answers, and its control route.
ROUTES: dict[str, dict[str, h.Handler]] = {
    "/.well-known/databricks-config": {"GET": h.well_known},
    "/oidc/.well-known/oauth-authorization-server": {"GET": h.oidc_discovery},
    "/oidc/v1/token": {"POST": h.token},
    "/api/2.0/preview/scim/v2/Me": {"GET": h.me},
    "/api/2.0/pipelines": {"POST": h.create_pipeline, "GET": h.list_pipelines},
    _PIPELINE: {"GET": h.get_pipeline, "PUT": h.edit_pipeline, "DELETE": h.delete_pipeline},
    _PIPELINE + "/updates": {"POST": h.start_update, "GET": h.list_updates},
    _PIPELINE + "/updates/{update_id}": {"GET": h.get_update},
    _PIPELINE + "/stop": {"POST": h.stop_pipeline},
    _PIPELINE + "/events": {"GET": h.list_events},
    "/api/2.1/unity-catalog/connections": {"POST": h.create_connection, "GET": h.list_connections},
    "/api/2.1/unity-catalog/connections/{name}": {
        "GET": h.get_connection,
        "PATCH": h.update_connection,
        "DELETE": h.delete_connection,
    },
    _STATEMENTS: {"POST": h.execute_statement},
    _STATEMENTS + "/": {"POST": h.execute_statement},
    _STATEMENTS + "/{statement_id}": {"GET": h.get_statement},
    _STATEMENTS + "/{statement_id}/result/chunks/{chunk_index}": {"GET": h.get_statement_chunk},
    _STATEMENTS + "/{statement_id}/cancel": {"POST": h.cancel_statement},
    "/api/2.1/jobs/runs/get": {"GET": h.get_job_run},
    "/api/2.2/jobs/runs/get": {"GET": h.get_job_run},
    CONTROL_PREFIX + "{op}": {"POST": h.control},
}


def build_app(workspace: Workspace) -> web.Application:
    app = web.Application(middlewares=[emulator_middleware])
    app[WORKSPACE_KEY] = workspace
    for path, methods in ROUTES.items():
        for method, handler in methods.items():
            if method == "GET":
                app.router.add_get(path, handler)  # also answers HEAD, as the route table always did
            else:
                app.router.add_route(method, path, handler)
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
