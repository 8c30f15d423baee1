"""OpenTelemetry and log-context wrappers around ports: queue, job handlers, use cases,
message sender, and the httpx transport. Bootstrap applies them; nothing else imports them.
"""
