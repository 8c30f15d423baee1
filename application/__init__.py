"""Use cases, ports (typing.Protocol) and task definitions. Standard library only."""
