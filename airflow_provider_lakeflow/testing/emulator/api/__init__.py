"""The workspace's REST operations, one ``api_*`` method per endpoint, with no HTTP: pipelines, updates and their
event log, Unity Catalog connections; the spec rules they enforce and the list filters and page tokens they read.

Each module is a mixin over ``model.WorkspaceState`` (the data ``workspace.Workspace`` holds); none imports the
workspace itself.
"""
