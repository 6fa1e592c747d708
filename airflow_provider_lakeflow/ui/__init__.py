"""The Lakeflow pages inside Airflow's UI (Airflow 3.1+): a task instance tab and a "Lakeflow" navigation page.

``plugin`` is what the ``airflow.plugins`` entry point loads; it imports nothing of the web app and, on Airflow
before 3.1, exposes no view. ``app`` is the FastAPI app the api-server mounts under ``/lakeflow``; ``metastore``
reads what our operators and watchers left in Airflow's database; ``workspace`` reads an update's live state through
``LakeflowHook``. The React sources are in ``www/``; the built bundle ``www/dist/main.umd.cjs`` ships in the wheel.
"""
