"""The command line: one module per command group, Rich for people, --output json for scripts."""
