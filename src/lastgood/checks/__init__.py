"""Validation after a rollback: one module per check type (http, command, metric, logs) behind `Checker`."""
