"""The plugin's registration: views on Airflow 3.1+, and on 2.11/3.0 nothing exposed and no web code imported.

Runs in both CI environments (``make test-ui`` runs it under Airflow 3.3 and 2.11). Each check runs in a fresh
interpreter, because what a process imports is the thing measured.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
ENTRY_POINT = "airflow_provider_lakeflow.ui.plugin:LakeflowUIPlugin"


def _airflow_version() -> Version:
    from airflow import __version__

    return Version(Version(__version__).base_version)


def _env() -> dict[str, str]:
    home = tempfile.mkdtemp(prefix="lakeflow-ui-plugin-")
    return {
        **os.environ,
        "AIRFLOW_HOME": home,
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "PYTHONPATH": str(ROOT),
    }


def _load_entry_point() -> dict:
    """What Airflow's plugin loader does with our ``airflow.plugins`` entry point, and what that imported."""
    code = f"""
import importlib, json, sys
module, _, attr = {ENTRY_POINT!r}.partition(":")
plugin = getattr(importlib.import_module(module), attr)
print(json.dumps({{
    "name": plugin.name,
    "fastapi_apps": len(getattr(plugin, "fastapi_apps", []) or []),
    "react_apps": [a["name"] for a in getattr(plugin, "react_apps", []) or []],
    "external_views": len(getattr(plugin, "external_views", []) or []),
    "imported_web_app": "airflow_provider_lakeflow.ui.app" in sys.modules,
    "imported_fastapi": "fastapi" in sys.modules,
    "imported_api_security": "airflow.api_fastapi.core_api.security" in sys.modules,
}}))
"""
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_entry_point_exposes_views_only_where_airflow_has_plugin_uis():
    loaded = _load_entry_point()
    assert loaded["name"] == "lakeflow"
    # Loading the plugin (as the scheduler, triggerer and workers do) never builds or imports the web app.
    assert loaded["imported_web_app"] is False
    assert loaded["imported_api_security"] is False
    if _airflow_version() >= Version("3.1"):
        assert loaded["fastapi_apps"] == 1
        assert loaded["react_apps"] == ["Lakeflow", "Lakeflow pipelines"]
    else:
        assert loaded == {**loaded, "fastapi_apps": 0, "react_apps": [], "external_views": 0, "imported_fastapi": False}


def test_provider_info_names_the_plugin_and_airflow_finds_it():
    from airflow_provider_lakeflow import get_provider_info

    assert get_provider_info()["plugins"] == [{"name": "lakeflow", "plugin-class": ENTRY_POINT.replace(":", ".")}]
    code = (
        "import json; from airflow.providers_manager import ProvidersManager; "
        "print(json.dumps([p._asdict() for p in ProvidersManager().plugins]))"
    )
    done = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    listed = json.loads(done.stdout.strip().splitlines()[-1])
    ours = [p for p in listed if p["name"] == "lakeflow"]
    plugin_class = ENTRY_POINT.replace(":", ".")
    assert ours == [{"name": "lakeflow", "plugin_class": plugin_class, "provider_name": "airflow-provider-lakeflow"}]
