"""Adapters: everything that touches a library or the outside world, by technology."""
