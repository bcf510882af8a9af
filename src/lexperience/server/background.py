"""Run the service in a background thread: :func:`serve_in_thread` (for tests, benchmarks and
notebooks that want a real socket without a second process)."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

from .._optional import require
from ..errors import ConfigurationError
from .settings import ServerSettings

__all__ = ["serve_in_thread"]


@contextlib.contextmanager
def serve_in_thread(settings: ServerSettings, *, start_timeout: float = 30.0) -> Iterator[str]:
    """Serve ``settings`` with uvicorn in a daemon thread for the ``with`` block; yields the base
    URL (``settings.port`` 0 picks a free port). Leaving the block shuts the server down
    gracefully (running turns get ``shutdown_grace`` seconds)."""
    uvicorn = require("uvicorn", "server", feature="serving in a thread")
    from .app import create_app

    app = create_app(settings)
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="warning",
                            lifespan="on", ws_max_size=max(settings.max_request_bytes, 1 << 20),
                            ws_per_message_deflate=False,
                            timeout_graceful_shutdown=int(settings.shutdown_grace) or None)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="lexperience-server", daemon=True)
    thread.start()
    deadline = time.monotonic() + start_timeout
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            server.should_exit = True
            raise ConfigurationError(
                f"the service did not start on {settings.host}:{settings.port}"
            )
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://{settings.host}:{port}"
    finally:
        server.should_exit = True
        thread.join(settings.shutdown_grace + 30)
