"""What the simulated services say: a fixed dialogue, or numbered questions whose number travels
inside the audio itself (for load tests that must prove every reply belongs to its question)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...media import Audio
from ..fakes import speech_like

__all__ = [
    "DEFAULT_REPLY",
    "DEFAULT_TRANSCRIPT",
    "Dialogue",
    "NumberedQuestions",
    "answer_text",
    "question_audio",
    "question_text",
    "read_tag",
]

DEFAULT_TRANSCRIPT = "What is a black hole?"
DEFAULT_REPLY = "Black holes are regions where gravity wins. Nothing gets out of them."


class Dialogue:
    """A fixed transcript for every clip and a fixed reply to every chat (change them freely
    between requests; :meth:`WireServer.reset` restores them)."""

    def __init__(self, transcript: str = DEFAULT_TRANSCRIPT, reply: str = DEFAULT_REPLY) -> None:
        self.transcript = transcript
        self.reply = reply
        self._initial = (transcript, reply)

    def reset(self) -> None:
        self.transcript, self.reply = self._initial

    def transcribe(self, samples: np.ndarray, rate: int) -> tuple[str, dict[str, Any]]:
        """The transcript of int16 ``samples`` and facts to record about it."""
        return self.transcript, {}

    def answer(self, messages: Sequence[Mapping[str, Any]]) -> str:
        """The assistant's reply to chat ``messages`` (OpenAI's message dicts)."""
        return self.reply


# -- numbered questions ---------------------------------------------------------------------------
TOPICS = (
    "black holes",
    "the tides",
    "rainbows",
    "the northern lights",
    "volcanoes",
    "coral reefs",
    "comets",
    "thunderstorms",
    "glaciers",
    "earthquakes",
    "migrating birds",
    "the seasons",
)
_QUESTION = re.compile(r"question (\d+): what are (.+?)\?", re.IGNORECASE)
_SYNC = (1, -1, 1, -1, 1, 1, -1, -1)
_BITS = 20
_LEVEL = 0.25


def question_text(qid: int) -> str:
    """The question number ``qid`` asks (what the transcription returns for its audio)."""
    return f"Question {qid}: what are {TOPICS[qid % len(TOPICS)]}?"


def answer_text(question: str) -> str:
    """The reply to ``question``: three sentences, about 230 characters, whose first clause
    names the question (so cross-talk between conversations shows)."""
    m = _QUESTION.search(question)
    qid, topic = (m.group(1), m.group(2)) if m else ("0", question.strip().rstrip("?.!") or "that")
    return (
        f"You asked about {topic}, question {qid}, and it is a good one. "
        f"People have wondered about {topic} for a very long time, and scientists still study "
        "them today. The short answer is that it depends on the scale you look at, but the idea "
        "itself is simple."
    )


def question_audio(qid: int, rate: int = 16_000) -> Audio:
    """Speech-like audio of :func:`question_text` whose first samples encode ``qid``."""
    if not 0 <= qid < 2**_BITS:
        raise ValueError(f"question ids go from 0 to {2**_BITS - 1}")
    samples, _ = speech_like(question_text(qid).lower(), rate)
    bits = [1 if (qid >> b) & 1 else -1 for b in range(_BITS)]
    head = np.array([*_SYNC, *bits], dtype=np.float32) * _LEVEL
    return Audio(np.concatenate([head, samples]).astype(np.float32), rate)


def read_tag(pcm: np.ndarray) -> int | None:
    """The question id in int16 samples made by :func:`question_audio`, or ``None``."""
    n = len(_SYNC) + _BITS
    if pcm.shape[0] < n:
        return None
    signs = [1 if v > 0 else -1 for v in pcm[:n].tolist()]
    if tuple(signs[: len(_SYNC)]) != _SYNC:
        return None
    return sum(1 << b for b, s in enumerate(signs[len(_SYNC) :]) if s > 0)


class NumberedQuestions(Dialogue):
    """Transcribes :func:`question_audio` clips to their own question and answers each question
    with :func:`answer_text`; untagged audio gets the fixed transcript."""

    def __init__(self, transcript: str = "What are black holes?") -> None:
        super().__init__(transcript=transcript, reply="")

    def transcribe(self, samples: np.ndarray, rate: int) -> tuple[str, dict[str, Any]]:
        qid = read_tag(samples)
        return (question_text(qid) if qid is not None else self.transcript), {"qid": qid}

    def answer(self, messages: Sequence[Mapping[str, Any]]) -> str:
        users = [m for m in messages if m.get("role") == "user"]
        return answer_text(str(users[-1].get("content", "")) if users else "")
