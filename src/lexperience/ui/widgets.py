"""Small pieces the tabs share: the metrics table, reading a question, the persona note."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..metrics import TurnMetrics
from ..persona import Persona
from .turns import Question

__all__ = ["METRIC_HEADERS", "metrics_rows", "persona_note", "question_from"]

METRIC_HEADERS = ["metric", "value"]

# The TurnMetrics fields the table shows, under their own names (the benchmarks and logs use the
# same ones).
_SECONDS = ("transcript_s", "first_token_s", "first_sentence_s", "first_audio_s", "first_video_s",
            "total_s")  # fmt: skip
_RTFS = ("stt_rtf", "tts_rtf", "avatar_rtf")


def metrics_rows(metrics: TurnMetrics | None) -> list[list[str]]:
    """A turn's :class:`~lexperience.TurnMetrics` as ``[name, value]`` rows."""
    if metrics is None:
        return []
    rows: list[list[str]] = []
    for name in _SECONDS:
        value = getattr(metrics, name)
        if value is not None:
            rows.append([name, f"{value * 1000:.0f} ms"])
    rows.append(["reply_audio_s", f"{metrics.reply_audio_s:.2f} s"])
    rows.append(["sentences", str(metrics.sentences)])
    if metrics.video_frames:
        rows.append(["video_frames", str(metrics.video_frames)])
    for name in _RTFS:
        value = getattr(metrics, name)
        if value is not None:
            rows.append([name, f"{value:.2f}"])
    return rows


def question_from(audio: Any, text: str | None) -> Question | None:
    """What the listener asked: the typed text when there is some, else the recorded or uploaded
    audio file (Gradio gives its path); ``None`` when neither."""
    if text and text.strip():
        return text.strip()
    if isinstance(audio, str) and audio:
        return Path(audio)
    if isinstance(audio, dict) and isinstance(audio.get("path"), str):
        return Path(audio["path"])
    return None


def persona_note(persona: Persona) -> str:
    """The notice above the app: who is talking, and that it is made by AI."""
    return (
        f"You are talking with **{persona.name}**, a fictional persona. The voice, the face and "
        "the answers are AI-generated, and every video frame carries a visible "
        "“AI-generated” mark. Do not rely on it for facts."
    )
