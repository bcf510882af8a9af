"""Run the app in a background thread: :func:`serve_in_thread` (for tests, benchmarks and
notebooks that want the page on a real socket without a second process)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from ..errors import ConfigurationError
from .config import UIConfig

__all__ = ["serve_in_thread"]


@contextlib.contextmanager
def serve_in_thread(
    config: UIConfig | None = None,
    *,
    runtime: Any = None,
    host: str = "127.0.0.1",
    port: int = 0,
    start_timeout: float = 60.0,
) -> Iterator[str]:
    """Serve the app with uvicorn in a daemon thread for the ``with`` block; yields the page's
    URL (``port`` 0 picks a free one). ``runtime`` (a :class:`~lexperience.ui.UIRuntime`) lets
    the caller look at the sessions."""
    import uvicorn

    from . import create_app

    app = create_app(config, runtime=runtime) if runtime is not None else create_app(config)
    server = uvicorn.Server(
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
    )
    thread = threading.Thread(target=server.run, name="lexperience-ui", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise ConfigurationError(f"the app did not start on {host}:{port}")
        time.sleep(0.02)
    bound = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{host}:{bound}/"
    finally:
        server.should_exit = True
        thread.join(30)
