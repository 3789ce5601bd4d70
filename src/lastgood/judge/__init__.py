"""Verdicts over measurements: pure functions, no I/O."""
