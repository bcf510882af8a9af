"""The HTTP + WebSocket service (``lexperience serve``, the ``server`` extra).

:func:`create_app` builds the FastAPI application; :mod:`lexperience.server.schema` is its wire
schema (pydantic only, shared with :mod:`lexperience.client`). Importing this package loads no web
framework: :func:`create_app` imports FastAPI when called.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .settings import ServerSettings

if TYPE_CHECKING:
    from .app import create_app

__all__ = ["ServerSettings", "create_app"]


def __getattr__(name: str) -> Any:
    if name == "create_app":
        from .app import create_app

        return create_app
    raise AttributeError(name)
