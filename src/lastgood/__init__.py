"""lastgood: rollback runbooks as software."""

__version__ = "0.1.0"
