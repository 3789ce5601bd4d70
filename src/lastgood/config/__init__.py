"""The runbook file: models, loading, interpolation and messages with paths and hints."""

from lastgood.config.loader import load_runbook, parse_runbook
from lastgood.config.models import Component, Environment, Runbook, Trigger

__all__ = ["Component", "Environment", "Runbook", "Trigger", "load_runbook", "parse_runbook"]
