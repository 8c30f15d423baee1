"""The identity module's adapters."""
