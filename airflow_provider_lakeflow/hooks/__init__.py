"""Hooks: ``LakeflowHook`` for the workspace REST API, ``LakeflowSqlHook`` for SQL (common-sql ``DbApiHook``).

``LakeflowSqlHook`` is resolved on first access so that importing this package does not load common-sql's hook module
(and, through it, SQLAlchemy and sqlparse) for code that never runs SQL. ``hooks.api`` and ``hooks.operations``, the
0.1 and 0.2 names of :mod:`airflow_provider_lakeflow.workspace.operations`, still resolve to it with a
``DeprecationWarning``.
"""

from __future__ import annotations

import importlib
import warnings
from typing import TYPE_CHECKING, Any

from airflow_provider_lakeflow.hooks.lakeflow import LakeflowHook

if TYPE_CHECKING:
    from airflow_provider_lakeflow.hooks.sql import LakeflowSqlHook

__all__ = ["LakeflowHook", "LakeflowSqlHook"]


_MOVED_MODULES = {
    "api": "airflow_provider_lakeflow.workspace.operations",
    "operations": "airflow_provider_lakeflow.workspace.operations",
}


def __getattr__(name: str) -> Any:
    if name == "LakeflowSqlHook":
        # on first use only: common-sql's hook module loads SQLAlchemy, which a DAG file that runs no SQL never needs
        from airflow_provider_lakeflow.hooks.sql import LakeflowSqlHook

        return LakeflowSqlHook
    if name in _MOVED_MODULES:
        warnings.warn(
            f"airflow_provider_lakeflow.hooks.{name} is now {_MOVED_MODULES[name]}; import it from there.",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.import_module(_MOVED_MODULES[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
