"""Owners (the businesses a deployment serves), their numbers, plans and usage."""
