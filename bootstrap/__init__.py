"""Composition root: settings, the container, and the entry points (API, worker, CLI)."""
