"""The wire server in a process of its own (for benchmarks: it then shares no GIL with the code
it measures), and its command line: ``python -m lexperience.testing.wire``."""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ..._optional import require
from ._dialogue import Dialogue, NumberedQuestions
from ._model import LatencyProfile

__all__ = ["ServerHandle", "main", "serve", "spawn"]

_FEATURE = "lexperience.testing.wire (the wire-protocol test server)"
DIALOGUES = {"fixed": Dialogue, "numbered": NumberedQuestions}


def _require_server() -> None:
    require("starlette", "server", feature=_FEATURE)
    require("uvicorn", "server", feature=_FEATURE)


@dataclass
class ServerHandle:
    """A server running in a child process: its URLs and its records."""

    url: str
    profile: LatencyProfile
    process: subprocess.Popen[str]

    @property
    def openai_url(self) -> str:
        return f"{self.url}/v1"

    def stats(self) -> list[dict[str, Any]]:
        """What the server did for each request since the last :meth:`reset` (see
        :meth:`Recorded.summary`)."""
        with urllib.request.urlopen(f"{self.url}/_stats", timeout=10) as response:
            data: list[dict[str, Any]] = json.loads(response.read())
        return data

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/_reset", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


@contextlib.contextmanager
def spawn(
    profile: LatencyProfile | None = None,
    *,
    dialogue: str = "fixed",
    clip_size: int = 256,
    max_seconds: float = 3600.0,
) -> Iterator[ServerHandle]:
    """Run a :class:`WireServer` in a child process on 127.0.0.1 and stop it on exit.

    Args:
        profile: its latency profile.
        dialogue: ``"fixed"`` or ``"numbered"`` (:class:`NumberedQuestions`).
        clip_size: the size of the generated output clips.
        max_seconds: the child stops by itself after this long, whatever happens here.
    """
    _require_server()
    if dialogue not in DIALOGUES:
        raise ValueError(f"dialogue must be one of {sorted(DIALOGUES)}")
    profile = profile or LatencyProfile()
    process = subprocess.Popen(
        [sys.executable, "-m", "lexperience.testing.wire", "--profile",
         json.dumps(profile.to_dict()), "--dialogue", dialogue, "--clip-size", str(clip_size),
         "--max-seconds", str(max_seconds), "--watch-stdin"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert process.stdout is not None
        line = process.stdout.readline().strip()
        if not line.startswith("PORT "):
            raise RuntimeError(f"the wire server did not start (said {line!r})")
        yield ServerHandle(f"http://127.0.0.1:{int(line.split()[1])}", profile, process)
    finally:
        if process.stdin is not None:
            with contextlib.suppress(OSError):
                process.stdin.close()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.terminate()
            process.wait(timeout=5)


def serve(
    profile: LatencyProfile,
    *,
    dialogue: Dialogue | None = None,
    port: int = 0,
    clip_size: int = 256,
    max_seconds: float = 3600.0,
    watch_stdin: bool = False,
) -> None:
    """Serve on 127.0.0.1:``port`` in this process and print ``PORT <n>``; run until Ctrl-C,
    ``max_seconds`` pass, or (``watch_stdin``) the parent closes this process's stdin. Bodies
    are not kept; output clips are encoded in a worker process."""
    _require_server()
    import uvicorn

    from ._clips import gradient_clip
    from ._server import WireServer

    encoder = concurrent.futures.ProcessPoolExecutor(max_workers=1)
    if importlib.util.find_spec("av") is not None:  # without PyAV only the avatar cannot work
        encoder.submit(gradient_clip, 0.0, 16).result()  # start the worker (and PyAV) now
    wire = WireServer(
        profile=profile, dialogue=dialogue, clip_size=clip_size, keep_bodies=False,
        encoder=encoder, port=port,
    )  # fmt: skip
    sock = wire.bind()
    server = uvicorn.Server(wire.config(backlog=512, limit_concurrency=2_000))
    deadline = time.monotonic() + max_seconds

    def stop_when_stdin_closes() -> None:
        sys.stdin.read()
        server.should_exit = True

    def stop_at_deadline() -> None:
        while time.monotonic() < deadline and not server.should_exit:
            time.sleep(0.5)
        server.should_exit = True

    if watch_stdin:
        threading.Thread(target=stop_when_stdin_closes, daemon=True).start()
    threading.Thread(target=stop_at_deadline, daemon=True).start()
    print(f"PORT {wire.port}", flush=True)
    try:
        server.run(sockets=[sock])
    finally:
        encoder.shutdown(cancel_futures=True)


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m lexperience.testing.wire [--port N] [--profile JSON] [--typical]
    [--scale F] [--dialogue fixed|numbered]``."""
    parser = argparse.ArgumentParser(
        prog="python -m lexperience.testing.wire",
        description="A local server speaking the OpenAI, ElevenLabs and Replicate wire protocols.",
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free one)")
    parser.add_argument("--profile", default="{}", help="LatencyProfile fields as JSON")
    parser.add_argument("--typical", action="store_true", help="start from typical cloud latencies")
    parser.add_argument("--scale", type=float, default=1.0, help="scale every latency")
    parser.add_argument("--dialogue", choices=sorted(DIALOGUES), default="fixed")
    parser.add_argument("--clip-size", type=int, default=256, help="generated clips' size")
    parser.add_argument("--max-seconds", type=float, default=3600.0, help="stop after this long")
    parser.add_argument("--watch-stdin", action="store_true", help="stop when stdin closes")
    args = parser.parse_args(argv)
    base = LatencyProfile.typical().to_dict() if args.typical else {}
    profile = LatencyProfile.from_dict({**base, **json.loads(args.profile)}).scaled(args.scale)
    serve(
        profile, dialogue=DIALOGUES[args.dialogue](), port=args.port, clip_size=args.clip_size,
        max_seconds=args.max_seconds, watch_stdin=args.watch_stdin,
    )  # fmt: skip
