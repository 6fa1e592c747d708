"""Apache Airflow provider for Databricks Lakeflow Connect.

This module stays import-light: Airflow reads ``get_provider_info`` for every CLI command and DAG parse.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_lakeflow.provider_info import provider_info

__version__ = "0.1.0"

#: The Airflow connection every hook, operator, sensor and trigger uses unless told otherwise.
DEFAULT_CONN_ID = "databricks_default"

__all__ = ["DEFAULT_CONN_ID", "__version__", "get_provider_info"]


def get_provider_info() -> dict[str, Any]:
    return provider_info(__version__)
