"""The use cases: the one place that composes the engine and the guard, for every caller.

The CLI, the server and the workers call these functions with the acting `Actor` (in the `EnvContext`) and
get typed results (Pydantic models) that `--output json` and the API return as they are.
"""
