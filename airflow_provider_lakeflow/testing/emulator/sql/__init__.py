"""The SQL Statement Execution API on an embedded DuckDB: the engine (``engine``), a statement's record
(``statement``), Databricks SQL to DuckDB and back (``translation``), and the event log and landed tables
(``landing``). See ``engine`` for the dialect rules."""
