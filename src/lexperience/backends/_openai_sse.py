"""Server-sent events of an OpenAI streaming response, read straight off the HTTP body.

The SDK's own stream (``openai.AsyncStream``) builds a pydantic model for every event: about
250 µs of CPU per token on the event loop, twice what the rest of the HTTP stack costs.
At 50 conversations streaming 50 tokens a second each, that alone kept one event loop busy
(issue 19). The backends therefore open their streams with ``with_streaming_response`` (the SDK
still builds the request, sends it, and raises its typed errors for a bad status) and read the
body here: a small SSE decoder (the WHATWG event-stream rules the SDK follows) and one
``json.loads`` per event, which hands the backend plain dicts.

What the SDK's stream does besides, this does too: an event whose data holds an ``"error"`` is
raised as ``openai.APIError`` (the error mapper turns it into a retryable ``BackendError``), and
after ``[DONE]`` the rest of the body is read, so that an HTTP/1.1 connection goes back to the
pool instead of being closed.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncGenerator, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

__all__ = ["SSEEvent", "SSEParser", "sse_events"]

log = logging.getLogger(__name__)

_DONE = "[DONE]"


@dataclass(frozen=True)
class SSEEvent:
    """One server-sent event: its ``event`` name (``None`` when it had none) and its data."""

    event: str | None
    data: str

    def json(self) -> Any:
        return json.loads(self.data)


class SSEParser:
    """An incremental event-stream decoder: :meth:`feed` it bytes as they arrive.

    Lines end with ``\\n``, ``\\r\\n`` or ``\\r`` (also split across two reads); an empty line
    ends an event; ``data:`` lines of one event are joined with ``\\n``; comments (``:``) and
    ``id:`` / ``retry:`` fields are skipped.
    """

    __slots__ = ("_buffer", "_data", "_event")

    def __init__(self) -> None:
        self._buffer = b""
        self._data: list[str] = []
        self._event: str | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """The events that ``chunk`` completes (often none or one)."""
        buffer = self._buffer + chunk if self._buffer else chunk
        lines = buffer.splitlines(keepends=True)
        rest = b""
        if lines and not lines[-1].endswith((b"\n", b"\r")):
            rest = lines.pop()
        elif lines and lines[-1].endswith(b"\r"):
            rest = lines.pop()  # a "\r\n" may be split across reads: wait for the next byte
        self._buffer = rest
        return list(self._lines(lines))

    def finish(self) -> list[SSEEvent]:
        """The last event, when the body ended without the empty line that closes it."""
        lines = [self._buffer, b"\n"] if self._buffer else [b"\n"]
        self._buffer = b""
        return list(self._lines(lines))

    def _lines(self, lines: Iterable[bytes]) -> Iterator[SSEEvent]:
        for raw in lines:
            line = raw.rstrip(b"\r\n").decode("utf-8")
            if not line:
                if self._data or self._event:
                    event = SSEEvent(self._event, "\n".join(self._data))
                    self._data, self._event = [], None
                    yield event
                continue
            name, _, value = line.partition(":")
            if value.startswith(" "):
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            # "" (a comment), "id", "retry" and unknown fields: nothing to do here


async def sse_events(response: Any) -> AsyncGenerator[Any, None]:
    """The JSON data of each event of a streamed SDK response (``with_streaming_response``),
    until ``[DONE]`` or the end of the body.

    Raises:
        openai.APIError: an event reported an error (``{"error": {...}}``).
        json.JSONDecodeError: an event's data is not JSON (mapped to a retryable error).
    """
    http = response.http_response
    parser = SSEParser()
    body = http.aiter_bytes()
    done = False
    try:
        async for chunk in body:
            for event in parser.feed(chunk):
                if event.data.startswith(_DONE):
                    done = True
                    break
                yield _checked(event, http)
            if done:
                break
        if done:  # read the rest, so that the connection can be reused
            async for _ in body:
                pass
        else:
            for event in parser.finish():
                if event.data.startswith(_DONE):
                    break
                yield _checked(event, http)
    finally:
        await http.aclose()


def _checked(event: SSEEvent, http: Any) -> Any:
    data = event.json()
    if isinstance(data, dict) and data.get("error"):
        import openai

        error = data["error"]
        message = error.get("message") if isinstance(error, dict) else None
        if not isinstance(message, str) or not message:
            message = "An error occurred during streaming"
        raise openai.APIError(message, request=http.request, body=error)
    return data
