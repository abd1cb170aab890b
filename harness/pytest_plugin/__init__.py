"""The pytest face of the harness, one job a module; `harness.plugin` registers their hooks."""
