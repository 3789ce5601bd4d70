"""The guard: measure, judge, decide, and open a rollback with no one at the keyboard."""
