"""FastAPI dependencies shared by the API and the dashboard."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from lastgood.server.state import ServerState, server_state

State = Annotated[ServerState, Depends(server_state)]
