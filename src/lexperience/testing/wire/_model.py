"""The data of the wire server: scripted behaviours, recorded requests, the latency profile, the
keys it accepts and the test signals it speaks (no web framework needed to import this)."""

from __future__ import annotations

import json
import re
import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ELEVENLABS_KEY",
    "ELEVENLABS_VOICE_HZ",
    "OPENAI_KEY",
    "OPENAI_VOICE_HZ",
    "PCM_PIECE_S",
    "REPLICATE_KEY",
    "SECONDS_PER_CHAR",
    "Behaviour",
    "LatencyProfile",
    "Prediction",
    "Recorded",
    "speech_seconds",
    "tokenize",
    "tone",
]

#: The keys the server accepts (every other key gets the service's own 401 answer).
OPENAI_KEY = "sk-test-OPENAI-0123456789abcdef"
ELEVENLABS_KEY = "el-test-ELEVEN-0123456789abcdef"
REPLICATE_KEY = "r8_test-REPLICATE-0123456789abcdef"

#: Seconds of speech the simulated voices produce per character (the default profile's).
SECONDS_PER_CHAR = 0.03
#: Seconds of audio per streamed TTS piece.
PCM_PIECE_S = 0.1
#: The pitch of each simulated voice (its audio is :func:`tone` at this frequency).
OPENAI_VOICE_HZ = 220.0
ELEVENLABS_VOICE_HZ = 180.0


class LatencyProfile(BaseModel):
    """How fast (and how much) each simulated service answers.

    Every schedule is absolute from the request's arrival, so nothing drifts. The default is
    instant (what tests want); :meth:`typical` gives the figures of cloud services that the
    benchmarks use.

    Attributes:
        stt_s: the transcript comes this long after the request.
        llm_first_token_s: the first token comes this long after the request.
        llm_tokens_per_s: then this many tokens a second (``None``: all at once).
        llm_token_chars: a token is a word piece of at most this many characters (about the size
            of a real BPE token); ``None``: whole words.
        tts_first_byte_s: the first piece of audio comes this long after the request.
        tts_speed: then audio comes this many times faster than real time (``None``: at once).
        speech_s_per_char: how long the voices take per character of text.
        avatar_base_s: a prediction succeeds this long after it was created...
        avatar_per_audio_s: ...plus this much per second of its audio.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    stt_s: float = Field(default=0.0, ge=0)
    llm_first_token_s: float = Field(default=0.0, ge=0)
    llm_tokens_per_s: float | None = Field(default=None, gt=0)
    llm_token_chars: int | None = Field(default=None, ge=1)
    tts_first_byte_s: float = Field(default=0.0, ge=0)
    tts_speed: float | None = Field(default=None, gt=0)
    speech_s_per_char: float = Field(default=SECONDS_PER_CHAR, gt=0)
    avatar_base_s: float = Field(default=0.0, ge=0)
    avatar_per_audio_s: float = Field(default=0.0, ge=0)

    @classmethod
    def typical(cls) -> LatencyProfile:
        """Cloud services as fast as they typically are (the figures of docs/performance.md):
        STT 350 ms; first token 400 ms, then 50 tokens/s; first audio 150 ms, then 4x real
        time, 70 ms of speech per character; a clip 2 s + 1 s per second of audio."""
        return cls(
            stt_s=0.35,
            llm_first_token_s=0.40,
            llm_tokens_per_s=50.0,
            llm_token_chars=4,
            tts_first_byte_s=0.15,
            tts_speed=4.0,
            speech_s_per_char=0.07,
            avatar_base_s=2.0,
            avatar_per_audio_s=1.0,
        )

    def scaled(self, factor: float) -> LatencyProfile:
        """Every latency times ``factor`` (rates divided by it); the speech itself is unchanged."""
        if factor <= 0:
            raise ValueError("factor must be positive")
        return self.model_copy(
            update={
                "stt_s": self.stt_s * factor,
                "llm_first_token_s": self.llm_first_token_s * factor,
                "llm_tokens_per_s": (
                    None if self.llm_tokens_per_s is None else self.llm_tokens_per_s / factor
                ),
                "tts_first_byte_s": self.tts_first_byte_s * factor,
                "tts_speed": None if self.tts_speed is None else self.tts_speed / factor,
                "avatar_base_s": self.avatar_base_s * factor,
                "avatar_per_audio_s": self.avatar_per_audio_s * factor,
            }
        )

    def token_offset(self, i: int) -> float:
        """When token ``i`` (0-based) is due, from the request's arrival."""
        rate = self.llm_tokens_per_s
        return self.llm_first_token_s + (i / rate if rate else 0.0)

    def audio_offset(self, seconds: float) -> float:
        """When the audio ``seconds`` into the speech is due, from the request's arrival."""
        speed = self.tts_speed
        return self.tts_first_byte_s + (seconds / speed if speed else 0.0)

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LatencyProfile:
        return cls.model_validate(data)


def tokenize(text: str, chars: int | None = 4) -> list[str]:
    """Split ``text`` into tokens: word pieces of at most ``chars`` characters, or whole words
    (``None``); a space leads each word."""
    if chars is None:
        return [(" " if i else "") + w for i, w in enumerate(text.split(" "))]
    return re.findall(rf" ?[^ ]{{1,{chars}}}", text)


def speech_seconds(text: str, profile: LatencyProfile) -> float:
    """How long the simulated voices take to say ``text``."""
    return len(text) * profile.speech_s_per_char


_TONES: dict[tuple[int, float], np.ndarray] = {}


def tone(seconds: float, rate: int, freq: float = OPENAI_VOICE_HZ) -> np.ndarray:
    """The simulated voices' deterministic signal, as int16 samples (read-only).

    Every call returns the start of one signal, so it is made once per rate and voice and
    sliced: computing it afresh took ~3 ms per sentence on the server's event loop, 40% of the
    server's time at 50 conversations."""
    n = max(1, int(seconds * rate))
    key = (int(rate), float(freq))
    table = _TONES.get(key)
    if table is None or table.shape[0] < n:
        size = max(n, 30 * rate, 0 if table is None else 2 * table.shape[0])
        t = np.arange(size) / rate
        wave = 0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 3 * freq * t)
        table = (wave * 32767).astype("<i2")
        table.setflags(write=False)
        _TONES[key] = table  # a race only computes the same table twice
    return table[:n]


@dataclass
class Behaviour:
    """How one request is answered (see :meth:`WireServer.script`).

    Attributes:
        status: an HTTP status other than 200 answers with an error body (``body`` or a default).
        body: the error body (JSON-able, or text/bytes sent as they are).
        headers: extra response headers (``retry-after-ms``...).
        delay: seconds to wait before answering at all (a hang before the headers).
        stall: seconds to stall after the first piece of a streamed body (a mid-stream hang).
        malformed: send a body the client cannot parse (bad JSON / SSE / NDJSON lines).
        cut: end a streamed body early (fewer bytes than its Content-Length).
        gate: hold the rest of a streamed body after its first piece until this is set.
        options: endpoint-specific knobs (see each service's handlers).
    """

    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    stall: float = 0.0
    malformed: bool = False
    cut: bool = False
    gate: threading.Event | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Recorded:
    """One request the server received, and what it did about it.

    ``arrived`` and ``sent`` are ``time.perf_counter()`` readings (``sent``: seconds after
    ``arrived`` of each streamed piece), comparable with the client's clock in the same machine.
    ``stage`` is ``stt``, ``llm``, ``tts`` or ``avatar``; ``info`` holds endpoint facts (the
    question number, tokens, characters, audio seconds, the prediction id).
    """

    endpoint: str
    method: str
    path: str
    headers: dict[str, str]
    query: dict[str, str]
    body: bytes
    stage: str = ""
    request_id: str = ""
    arrived: float = 0.0
    sent: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    form: dict[str, tuple[str | None, bytes]] = field(default_factory=dict)
    finished: bool = False  # a streamed answer was sent to its end

    def json(self) -> Any:
        return json.loads(self.body)

    def summary(self) -> dict[str, Any]:
        """What ``GET /_stats`` reports of this request (no bodies, no headers)."""
        return {
            "endpoint": self.endpoint,
            "stage": self.stage,
            "request_id": self.request_id,
            "arrived": self.arrived,
            "sent": list(self.sent),
            "finished": self.finished,
            **self.info,
        }


@dataclass
class Prediction:
    """A simulated Replicate prediction."""

    id: str
    version: str
    model: str
    input: dict[str, Any]
    ready_at: float = 0.0  # perf_counter() when it may succeed
    audio_s: float = 0.0
    outcome: str = "succeeded"  # succeeded | failed | hold
    output: str = "mp4"  # mp4 | png | html | none | truncated | list | invalid-url | redirect...
    polls: int = 2  # GETs before the outcome
    seen: int = 0
    status: str = "starting"
    error: str | None = None
    redirect_to: str | None = None
