"""The `lastgood` executable. `--version` answers before Typer is imported: scripts and health checks ask it
often, and it should cost no more than starting Python. Everything else goes to lastgood.cli.app."""

from __future__ import annotations

import os
import sys
import types


def entrypoint() -> None:
    if sys.argv[1:] == ["--version"]:
        from lastgood import __version__

        print(f"lastgood {__version__}")
        sys.exit(0)
    skip_pydantic_plugin_discovery()
    from lastgood.cli.app import main

    sys.exit(main())


def skip_pydantic_plugin_discovery() -> None:
    """The first validator pydantic builds looks for pydantic plugins among every installed distribution's entry
    points: importing importlib.metadata (email, zipfile, socket) and reading each dist-info cost ~45 ms of the
    ~0.5 s `lastgood validate` takes. lastgood uses no pydantic plugin, so the executable answers that question
    itself: pydantic's documented switch (PYDANTIC_DISABLE_PLUGINS) for the scan, and the one function pydantic
    takes from its plugin loader (`get_plugins`, imported inside `create_schema_validator`) for the import.
    Someone who sets PYDANTIC_DISABLE_PLUGINS to a list of names keeps pydantic's own loader."""
    if os.environ.setdefault("PYDANTIC_DISABLE_PLUGINS", "__all__") != "__all__":
        return
    if "pydantic.plugin._loader" not in sys.modules:
        loader = types.ModuleType("pydantic.plugin._loader", "lastgood: pydantic plugins are not looked for")
        loader.get_plugins = tuple  # type: ignore[attr-defined]
        sys.modules["pydantic.plugin._loader"] = loader
