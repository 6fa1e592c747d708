"""How an update plays out, computed from the clock: its script and destination tables (``script``), its state
machine and event plan (``update``), the events it renders (``events``) and the documented error conditions a test
scripts onto it (``conditions`` over the ``condition_catalog``). No workspace, no HTTP."""
