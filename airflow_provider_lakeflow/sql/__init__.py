"""The SQL side (``hooks.sql.LakeflowSqlHook``) over the Statement Execution API, on the same engine as the rest:
``statements`` (the sans-IO operations), ``dbapi`` (PEP 249 objects), ``types`` (type conversion), ``errors`` and
``lexer`` (statement splitting and parameter markers)."""
