"""The ``airflow.plugins`` entry point: Lakeflow views in Airflow's UI where Airflow has plugin UIs (3.1+).

Importing this module costs almost nothing in any Airflow process: the FastAPI app is built on its first request
(only the api-server serves requests), and on Airflow before 3.1 the plugin exposes no app and no view at all.
"""

from __future__ import annotations

from typing import Any

from airflow import __version__ as AIRFLOW_VERSION
from airflow.configuration import conf
from airflow.plugins_manager import AirflowPlugin
from packaging.version import Version

#: Where the api-server mounts the app; the bundle and the JSON endpoints are under it.
URL_PREFIX = "/lakeflow"
#: react_apps / fastapi_apps with a UI contract exist from Airflow 3.1 (AIP-68).
UI_PLUGINS_SUPPORTED = Version(Version(AIRFLOW_VERSION).base_version) >= Version("3.1.0")


def _with_base_url(path: str) -> str:
    """``path`` under the api-server's ``[api] base_url`` path, for a deployment served below ``/``."""
    from urllib.parse import urlparse

    base = conf.get("api", "base_url", fallback="/") or "/"
    base_path = urlparse(base).path if base.startswith(("http://", "https://")) else base
    return base_path.rstrip("/") + path


class _AppOnFirstRequest:
    """An ASGI app that builds the real FastAPI app when the first request arrives.

    The scheduler, triggerer and workers load plugins too; they never call this, so they never import FastAPI,
    the api-server's security module or this provider's web code.
    """

    def __init__(self) -> None:
        self._app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self._app is None:
            # FastAPI and the app load on the first request, not when Airflow loads plugins in every process
            from airflow_provider_lakeflow.ui.app import create_app

            self._app = create_app()
        await self._app(scope, receive, send)


def _views() -> dict[str, list[dict[str, Any]]]:
    bundle = _with_base_url(f"{URL_PREFIX}/static/main.umd.cjs")
    icon = _with_base_url(f"{URL_PREFIX}/static/lakeflow.svg")
    icon_dark = _with_base_url(f"{URL_PREFIX}/static/lakeflow-dark.svg")
    return {
        "fastapi_apps": [{"app": _AppOnFirstRequest(), "url_prefix": URL_PREFIX, "name": "Lakeflow"}],
        # Two entries, two bundle URLs: Airflow's UI imports each URL once and reads the global the UMD build sets,
        # so one URL shared by two views would leave the second without its component.
        "react_apps": [
            {
                "name": "Lakeflow",
                "bundle_url": f"{bundle}?view=task",
                "destination": "task_instance",
                "url_route": "lakeflow_update",
                "icon": icon,
                "icon_dark_mode": icon_dark,
            },
            {
                "name": "Lakeflow pipelines",
                "bundle_url": f"{bundle}?view=nav",
                "destination": "nav",
                "url_route": "lakeflow",
                "category": "browse",
                "icon": icon,
                "icon_dark_mode": icon_dark,
            },
        ],
    }


class LakeflowUIPlugin(AirflowPlugin):
    """Lakeflow Connect updates and pipelines inside Airflow's UI (Airflow 3.1+; nothing on earlier versions)."""

    name = "lakeflow"
    if UI_PLUGINS_SUPPORTED:
        _exposed = _views()
        fastapi_apps = _exposed["fastapi_apps"]
        react_apps = _exposed["react_apps"]
