"""What to ask a workspace and in which order, with no I/O and no Airflow: operations are generators that yield
requests and pauses (``messages``) and receive decoded JSON; ``LakeflowHook.run`` / ``arun`` carry them out.

``operations`` holds one operation per REST endpoint (plus the helpers that read their answers), ``waiting`` the
polls behind sensors and deferrable waits, ``watching`` the polls behind event-driven watchers, and ``freshness``
the table-freshness wait. Nothing here imports databricks-sdk, aiohttp or Airflow: DAG files may import it freely.
"""
