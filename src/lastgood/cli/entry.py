"""The `lastgood` executable. `--version` answers before Typer is imported: scripts and health checks ask it
often, and it should cost no more than starting Python. Everything else goes to lastgood.cli.app."""

from __future__ import annotations

import sys


def entrypoint() -> None:
    if sys.argv[1:] == ["--version"]:
        from lastgood import __version__

        print(f"lastgood {__version__}")
        sys.exit(0)
    from lastgood.cli.app import main

    sys.exit(main())
