"""Helpers of the live-mode tests: synthetic sounds and a session run inside a simulated room."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lexperience import Conversation, Persona
from lexperience.events import Event
from lexperience.live import LiveOptions, LiveSession
from lexperience.live.room import SimulatedRoom, Track
from lexperience.media import Audio
from lexperience.testing import FakeLLM, FakeSTT, FakeTTS

RATE = 16_000

#: A reply of five sentences that takes about 15 s to say with FakeTTS.
LONG_REPLY = (
    "Black holes are regions where gravity wins over everything. Nothing escapes them, not even "
    "light itself. They form when very big stars collapse at the end of their lives. Their edge "
    "is called the event horizon. Time runs slower close to them."
)
PERSONA = Persona(name="Theo", prompt="You are a test host.", max_sentences=8)


def cough(seconds: float = 0.35, seed: int = 0) -> np.ndarray:
    """Two bursts of coloured noise with a sharp attack and a quick decay, like a cough."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * RATE)) / RATE
    burst = rng.standard_normal(t.size) * np.exp(-t / 0.07) * (1 - np.exp(-t / 0.004))
    burst = np.convolve(burst, np.ones(8) / 8, mode="same")
    burst = 0.6 * burst / np.abs(burst).max()
    return np.concatenate([burst, np.zeros(int(0.12 * RATE)), 0.8 * burst]).astype(np.float32)


def noise(seconds: float, dbfs: float = -30.0, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(int(seconds * RATE)) * 10 ** (dbfs / 20)).astype(np.float32)


def by_length(*texts: tuple[float, str]) -> Callable[[Audio], str]:
    """A FakeSTT script: the text of the first ``(max seconds, text)`` the clip fits in."""

    def text(audio: Audio) -> str:
        for seconds, value in texts:
            if audio.duration <= seconds:
                return value
        return texts[-1][1]

    return text


@dataclass
class Session:
    """What a simulated session produced: every event with the room time it arrived at."""

    conv: Conversation
    room: SimulatedRoom
    session: LiveSession
    events: list[tuple[float, Event]] = field(default_factory=list)

    def of(self, kind: str) -> list[tuple[float, Any]]:
        return [(t, e) for t, e in self.events if e.type == kind]

    def first(self, kind: str) -> tuple[float, Any]:
        found = self.of(kind)
        assert found, f"no {kind} event in {[e.type for _, e in self.events]}"
        return found[0]

    def types(self) -> list[str]:
        return [e.type for _, e in self.events if e.type not in ("audio", "text_delta", "video")]


def conversation(
    stt: Any = None, *, llm: Any = None, tts: Any = None, **kwargs: Any
) -> Conversation:
    return Conversation(
        stt=stt or FakeSTT(), llm=llm or FakeLLM(), tts=tts or FakeTTS(), persona=PERSONA,
        **kwargs,
    )  # fmt: skip


async def run(
    conv: Conversation,
    track: Track | Audio,
    *,
    options: LiveOptions | None = None,
    vad: Any = None,
    room_played: bool = True,
    **room: Any,
) -> Session:
    the_room = SimulatedRoom(track, **room)
    session = LiveSession(
        conv, options or LiveOptions(), vad=vad, played=the_room.played if room_played else None
    )
    result = Session(conv, the_room, session)
    async for event in session.run(the_room.microphone()):
        the_room.hear(event)
        result.events.append((the_room.now, event))
    return result


def leftover_tasks() -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not t.done()]
