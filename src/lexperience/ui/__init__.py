"""The Gradio app of ``lexperience ui`` (the ``ui`` extra).

* :class:`UIConfig` - what the app runs (the backends of ``lexperience reply``, personas, the
  episode it opens with).
* :func:`create_app` - the ASGI app (the Gradio page plus the players' media routes); serve it
  with any ASGI server, or run :func:`serve`.
* :class:`UIRuntime` - the shared state behind it: backends loaded once, one
  :class:`~lexperience.Conversation` per browser session.

The reply plays while it is made: the server encodes the turn's audio and frames into one
fragmented MP4 as they stream (:mod:`lexperience.ui.livemp4`) and the page plays it through
Media Source Extensions (:mod:`lexperience.ui.player`). The "Live" tab streams the microphone
into a live session (:mod:`lexperience.ui.live_view`): turns end on silence, speaking over the
reply stops it. See the "Gradio app" guide.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .._optional import require
from .config import UIConfig

if TYPE_CHECKING:
    from fastapi import FastAPI

    from .runtime import UIRuntime

__all__ = ["UIConfig", "UIRuntime", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    if name == "UIRuntime":
        require("gradio", "ui", feature="lexperience ui")
        from .runtime import UIRuntime

        return UIRuntime
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_app(config: UIConfig | None = None, **kwargs: Any) -> FastAPI:
    """The app (see :func:`lexperience.ui.app.create_app`); needs the ``ui`` extra."""
    require("gradio", "ui", feature="lexperience ui")
    require("av", "ui", feature="streaming the reply to the browser")
    from .app import create_app as _create_app

    return _create_app(config, **kwargs)


def serve(
    config: UIConfig | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 7860,
    auth: tuple[str, str] | None = None,
) -> None:
    """Run the app with uvicorn until Ctrl-C."""
    import uvicorn

    app = create_app(config, auth=auth)
    uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    ).run()
