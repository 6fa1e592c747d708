"""The layout holds (docs/architecture.md): read from the package's own source by ``layout_scan``, so a change that
closes an import circle, hides an import in a function without saying why, or grows a module or a function past
its bound fails here, with the places named."""

from __future__ import annotations

import subprocess
import sys

import pytest
from layout_scan import PACKAGE_DIR, import_circles, scan

#: Generated from databricks-sdk (spec/generate_field_table.py); its length is the SDK's, not ours.
GENERATED = {"airflow_provider_lakeflow.spec.field_table"}
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80
MAX_ROOT_MODULES = 8


@pytest.fixture(scope="module")
def modules():
    return scan()


def test_no_import_circle(modules):
    """Every kind of import counts: at the top, inside a function, or only for type checking."""
    assert import_circles(modules) == []


def test_a_module_imports_the_package_at_the_top_unless_it_says_why(modules):
    unexplained = [
        f"{m.name}:{i.line} imports {i.target} inside a function"
        for m in modules.values()
        for i in m.imports
        if i.where == "function" and not i.reason
    ]
    assert unexplained == []


def test_the_root_holds_the_airflow_facing_modules_only(modules):
    root = sorted(m.path.name for m in modules.values() if m.path.parent == PACKAGE_DIR)
    assert len(root) <= MAX_ROOT_MODULES, root


def test_modules_and_functions_stay_short(modules):
    long_modules = [
        f"{m.name}: {m.lines} lines" for m in modules.values() if m.lines > MAX_MODULE_LINES and m.name not in GENERATED
    ]
    long_functions = [
        f"{m.name}:{line} {name}: {length} lines"
        for m in modules.values()
        for name, line, length in m.functions
        if length > MAX_FUNCTION_LINES
    ]
    assert long_modules == []
    assert long_functions == []


def test_each_logger_is_named_after_its_own_module(modules):
    named_otherwise = [f"{m.name}: getLogger({n})" for m in modules.values() for n in m.logger_names if n != "__name__"]
    assert named_otherwise == []


def test_the_scan_sees_a_circle_and_an_unexplained_import(tmp_path, monkeypatch):
    """The checks above can fail: a package with a circle closed inside a function is reported."""
    import layout_scan

    package = tmp_path / "airflow_provider_lakeflow"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from airflow_provider_lakeflow import b\n")
    (package / "b.py").write_text("def f():\n    from airflow_provider_lakeflow.a import x\n")
    monkeypatch.setattr(layout_scan, "PACKAGE_DIR", package)
    found = layout_scan.scan()
    assert import_circles(found) == [["airflow_provider_lakeflow.a", "airflow_provider_lakeflow.b"]]
    assert [(i.target, i.where, i.reason) for i in found["airflow_provider_lakeflow.b"].imports] == [
        ("airflow_provider_lakeflow.a", "function", "")
    ]


def test_moved_module_names_still_resolve_with_a_warning():
    """``hooks.api`` and ``hooks.operations`` (0.1 and 0.2 names) are ``workspace.operations``."""
    code = (
        "import warnings\n"
        "warnings.simplefilter('error')\n"
        "from airflow_provider_lakeflow.workspace import operations\n"
        "try:\n"
        "    from airflow_provider_lakeflow.hooks import api\n"
        "except DeprecationWarning as w:\n"
        "    print('warned:', w)\n"
        "warnings.simplefilter('ignore')\n"
        "from airflow_provider_lakeflow.hooks import api, operations as old\n"
        "assert api is operations and old is operations\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "warned: airflow_provider_lakeflow.hooks.api is now airflow_provider_lakeflow.workspace.operations" in out
