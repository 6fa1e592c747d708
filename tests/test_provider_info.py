"""The provider metadata Airflow reads: valid against the installed Airflow's schema, importable, discovered."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from airflow_provider_lakeflow import __version__, get_provider_info

REPO = Path(__file__).resolve().parent.parent
PACKAGE = "airflow-provider-lakeflow"


@pytest.fixture(scope="module")
def info() -> dict[str, Any]:
    return get_provider_info()


def test_matches_the_installed_airflow_schema(info: dict[str, Any]) -> None:
    import airflow
    import jsonschema

    schema_path = Path(airflow.__file__).parent / "provider_info.schema.json"
    assert schema_path.is_file(), f"no provider_info.schema.json in Airflow {airflow.__version__}"
    jsonschema.validate(instance=info, schema=json.loads(schema_path.read_text()))


def test_package_name_is_the_distribution_name(info: dict[str, Any]) -> None:
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib  # type: ignore[no-redef]

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    assert info["package-name"] == project["name"] == PACKAGE
    assert info["versions"][0] == __version__


def test_the_entry_point_returns_this_provider_info(info: dict[str, Any]) -> None:
    from importlib.metadata import entry_points

    found = [
        ep for ep in entry_points(group="apache_airflow_provider") if ep.value.startswith("airflow_provider_lakeflow")
    ]
    assert found, "the package is not installed (pip install -e . --no-deps)"
    assert found[0].load()() == info


def _import_class(path: str) -> Any:
    module_name, _, class_name = path.rpartition(".")
    return getattr(importlib.import_module(module_name), class_name)


def _skip_if_module_absent(module_name: str) -> None:
    try:
        spec = importlib.util.find_spec(module_name)
    except ModuleNotFoundError:  # a parent package is missing
        spec = None
    if spec is None:
        pytest.skip(f"{module_name} is named in provider info but does not exist yet (being written)")


def test_hook_class_is_importable(info: dict[str, Any]) -> None:
    from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook

    conn_type = next(c for c in info["connection-types"] if c["connection-type"] == "lakeflow")
    hook = _import_class(conn_type["hook-class-name"])
    assert hook is LakeflowHook
    assert conn_type["connection-type"] == hook.conn_type == "lakeflow"
    assert conn_type["hook-name"] == hook.hook_name


def _extra_links() -> list[str]:
    return get_provider_info().get("extra-links", [])


def _trigger_modules() -> list[str]:
    return [m for t in get_provider_info().get("triggers", []) for m in t["python-modules"]]


@pytest.mark.parametrize("path", _extra_links())
def test_extra_link_is_importable(path: str) -> None:
    module_name = path.rpartition(".")[0]
    _skip_if_module_absent(module_name)
    link = _import_class(path)
    assert isinstance(link, type)
    assert link.name


@pytest.mark.parametrize("module_name", _trigger_modules())
def test_trigger_module_is_importable(module_name: str) -> None:
    from airflow.triggers.base import BaseTrigger

    _skip_if_module_absent(module_name)
    module = importlib.import_module(module_name)
    triggers = [
        v for v in vars(module).values() if isinstance(v, type) and issubclass(v, BaseTrigger) and v is not BaseTrigger
    ]
    assert triggers, f"{module_name} defines no trigger"


def test_lists_are_non_empty(info: dict[str, Any]) -> None:
    assert _extra_links() and _trigger_modules(), "the parametrized import checks above would silently test nothing"


# --- the airflow CLI, in a throwaway AIRFLOW_HOME ------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_cli(tmp_path_factory: pytest.TempPathFactory) -> Any:
    airflow_bin = Path(sys.executable).parent / "airflow"
    if not airflow_bin.exists():
        pytest.fail(f"no airflow executable next to {sys.executable}")
    home = tmp_path_factory.mktemp("airflow_home")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW_") and not k.startswith("AIRFLOW__")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home}/airflow.db",
    )

    def run(*args: str) -> list[dict[str, Any]]:
        result = subprocess.run(
            [str(airflow_bin), *args, "--output", "json"],
            env=env,
            cwd=home,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, f"airflow {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        start = result.stdout.index("[")  # JSON after any banner line
        return json.loads(result.stdout[start:])

    return run


def test_airflow_providers_list_shows_the_provider(airflow_cli: Any) -> None:
    rows = airflow_cli("providers", "list")
    mine = [r for r in rows if r.get("package_name") == PACKAGE]
    assert mine, f"{PACKAGE} not in: {[r.get('package_name') for r in rows]}"
    assert mine[0]["version"] == __version__


def test_airflow_providers_hooks_shows_the_connection_type(airflow_cli: Any) -> None:
    rows = airflow_cli("providers", "hooks")
    mine = {r["connection_type"]: r for r in rows if r.get("package_name") == PACKAGE}
    assert "lakeflow" in mine, rows
    assert mine["lakeflow"]["class"] == "airflow_provider_lakeflow.hooks.lakeflow.LakeflowHook"


def test_the_skip_is_only_for_absent_modules() -> None:
    with pytest.raises(pytest.skip.Exception, match="does not exist yet"):
        _skip_if_module_absent("airflow_provider_lakeflow.no_such_module")
    with pytest.raises(pytest.skip.Exception):
        _skip_if_module_absent("airflow_provider_lakeflow_no_such_package.links")
    _skip_if_module_absent("airflow_provider_lakeflow.hooks.lakeflow")  # present: no skip
