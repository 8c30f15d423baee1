"""The identity module's application code: owners' persistence, directory, quota."""
