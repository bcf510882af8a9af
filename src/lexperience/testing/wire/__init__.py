"""A local server that speaks the wire protocols of OpenAI, ElevenLabs and Replicate, for testing
apps (and benchmarking them) with the real SDKs and no network.

```python
from lexperience.testing.wire import OPENAI_KEY, Behaviour, WireServer
from lexperience.backends.openai_llm import OpenAILLM

with WireServer() as wire:                                  # 127.0.0.1, a free port
    wire.script("chat", Behaviour(status=429, headers={"retry-after": "0"}))
    llm = OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url)
    ...                                                     # the 429 is retried, then it streams
    assert len(wire.calls("chat")) == 2
```

* :class:`WireServer` runs in a background thread (``start()``/``stop()`` or ``with``); every
  request is recorded (:class:`Recorded`), every endpoint follows a per-test script of
  :class:`Behaviour` s (HTTP errors, hangs, mid-stream stalls, malformed or truncated bodies, a
  gate that holds a stream after its first piece), on the schedule of a :class:`LatencyProfile`
  (instant by default; :meth:`LatencyProfile.typical` for benchmark-like latencies).
* :func:`spawn` runs one in a child process (its own GIL, for benchmarks) and gives a
  :class:`ServerHandle`; ``python -m lexperience.testing.wire --port 8765`` serves by hand.
* What the services say comes from a :class:`Dialogue`; :class:`NumberedQuestions` tags
  question audio with its number (:func:`question_audio`) so that a load test can check that every
  reply belongs to its own question.

It needs Starlette and uvicorn (``pip install "lexperience[server]"``); this package imports
without them and raises :class:`~lexperience.errors.MissingDependencyError` when a server is
made. Generated output clips need PyAV (``lexperience[media]``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..._optional import require
from ._clips import encode_clip, gradient_clip, grey_ramp_clip
from ._dialogue import (
    DEFAULT_REPLY,
    DEFAULT_TRANSCRIPT,
    Dialogue,
    NumberedQuestions,
    answer_text,
    question_audio,
    question_text,
    read_tag,
)
from ._model import (
    ELEVENLABS_KEY,
    ELEVENLABS_VOICE_HZ,
    OPENAI_KEY,
    OPENAI_VOICE_HZ,
    PCM_PIECE_S,
    REPLICATE_KEY,
    SECONDS_PER_CHAR,
    Behaviour,
    LatencyProfile,
    Prediction,
    Recorded,
    speech_seconds,
    tokenize,
    tone,
)
from ._process import ServerHandle, main, serve, spawn

if TYPE_CHECKING:
    from ._server import WireServer

__all__ = [
    "DEFAULT_REPLY",
    "DEFAULT_TRANSCRIPT",
    "ELEVENLABS_KEY",
    "ELEVENLABS_VOICE_HZ",
    "OPENAI_KEY",
    "OPENAI_VOICE_HZ",
    "PCM_PIECE_S",
    "REPLICATE_KEY",
    "SECONDS_PER_CHAR",
    "Behaviour",
    "Dialogue",
    "LatencyProfile",
    "NumberedQuestions",
    "Prediction",
    "Recorded",
    "ServerHandle",
    "WireServer",
    "answer_text",
    "encode_clip",
    "gradient_clip",
    "grey_ramp_clip",
    "main",
    "question_audio",
    "question_text",
    "read_tag",
    "serve",
    "spawn",
    "speech_seconds",
    "tokenize",
    "tone",
]


def __getattr__(name: str) -> Any:
    if name == "WireServer":  # the only name that needs Starlette and uvicorn to import
        feature = "lexperience.testing.wire (the wire-protocol test server)"
        require("starlette", "server", feature=feature)
        require("uvicorn", "server", feature=feature)
        from ._server import WireServer

        return WireServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
