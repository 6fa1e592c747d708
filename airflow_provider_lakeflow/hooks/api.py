"""The 0.1 name of :mod:`airflow_provider_lakeflow.hooks.operations`, kept because the docs gave it to users.

``hooks.api`` and ``hooks.operations`` are one module object (patching either patches both).
"""

import sys

from airflow_provider_lakeflow.hooks import operations
from airflow_provider_lakeflow.hooks.operations import *  # noqa: F403  (for type checkers and readers)

sys.modules[__name__] = operations
