"""Ports: one Protocol per module, named for its role."""
