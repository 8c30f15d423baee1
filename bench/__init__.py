"""Benchmarks: each ``bench_*.py`` module measures one thing beside a baseline in the same run
and prints ratios (``make bench`` runs them all; ``python -m bench NAME`` runs one)."""
