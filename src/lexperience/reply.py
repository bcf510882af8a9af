"""What a finished turn returns: :class:`Reply`, and how it is saved to disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from .media import Audio, VideoFrame
from .metrics import TurnMetrics
from .transcript import Transcript

__all__ = ["Reply", "SavedReply"]


class SavedReply(BaseModel):
    """Paths written by :meth:`Reply.save`."""

    model_config = ConfigDict(frozen=True)

    wav: Path | None = None
    mp4: Path | None = None
    json_path: Path = Field(alias="json")


class Reply(BaseModel):
    """Everything one turn produced.

    Attributes:
        turn_id: the turn's number in its conversation, from 1.
        transcript: what the user said (``None`` for typed input).
        user_text: the user's words as sent to the LLM.
        text: the reply text that was spoken (cut to what was heard if ``interrupted``).
        sentences: the reply split as it was sent to TTS.
        audio: the reply speech (``None`` when no sentence was spoken).
        frames: avatar video frames (kept by :meth:`Conversation.areply`; :meth:`~Conversation.stream`
            keeps them only with ``keep_frames=True``).
        fps: the avatar's frame rate, ``None`` without an avatar.
        metrics: latency figures, see :class:`TurnMetrics`.
        interrupted: whether :meth:`Conversation.interrupt` cut the turn short.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    turn_id: int
    transcript: Transcript | None = None
    user_text: str
    text: str
    sentences: list[str] = Field(default_factory=list)
    audio: Audio | None = None
    frames: list[VideoFrame] = Field(default_factory=list, repr=False)
    fps: float | None = None
    metrics: TurnMetrics = Field(default_factory=TurnMetrics)
    interrupted: bool = False

    def save(
        self,
        directory: str | os.PathLike[str],
        *,
        stem: str = "reply",
        watermark_tag: bool = True,
    ) -> SavedReply:
        """Write ``reply.wav``, ``reply.mp4`` (when there are frames) and ``reply.json``.

        The MP4 is H.264 + AAC with audio and video aligned from 0 (needs the ``media`` extra).
        ``reply.json`` holds the transcript, the text and the metrics. ``watermark_tag`` writes the
        "AI-generated" metadata tag into the MP4 (on by default).
        """
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        wav = mp4 = None
        if self.audio is not None:
            wav = self.audio.save(out / f"{stem}.wav")
        if self.frames:
            from .render.mp4 import write_mp4

            mp4 = write_mp4(
                out / f"{stem}.mp4",
                frames=self.frames,
                fps=self.fps or self.frames[0].fps,
                audio=self.audio,
                ai_generated_tag=watermark_tag,
            )
        info = {
            "turn_id": self.turn_id,
            "transcript": self.transcript.model_dump() if self.transcript else None,
            "user_text": self.user_text,
            "text": self.text,
            "sentences": self.sentences,
            "interrupted": self.interrupted,
            "audio_seconds": self.audio.duration if self.audio else 0.0,
            "video_frames": len(self.frames),
            "fps": self.fps,
            "metrics": self.metrics.model_dump(),
        }
        json_path = out / f"{stem}.json"
        json_path.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", "utf-8")
        return SavedReply(wav=wav, mp4=mp4, json=json_path)
