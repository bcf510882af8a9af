"""What a finished turn returns: :class:`Reply`, and how it is saved to disk."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ._paths import safe_name
from .media import Audio, VideoFrame
from .metrics import TurnMetrics
from .transcript import Transcript

__all__ = ["EncodedVideo", "Reply", "SavedReply"]


class EncodedVideo(BaseModel):
    """A reply's video, encoded while the reply streamed: one H.264 + AAC MP4 held in memory.

    Attributes:
        data: the MP4 file's bytes (audio and video aligned from 0, "AI-generated" tag unless it
            was turned off).
        fps: its frame rate.
        frames: how many video frames it holds.
        duration: its length in seconds (``frames / fps``).
        ai_generated_tag: whether the file carries the ``ai_generated`` metadata tag.
    """

    model_config = ConfigDict(frozen=True)

    data: bytes = Field(repr=False)
    fps: float
    frames: int
    duration: float
    ai_generated_tag: bool = True
    mime_type: str = "video/mp4"

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the MP4 to ``path`` (no re-encoding)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(self.data)
        return out


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
        frames: raw avatar video frames, kept only when asked (``keep_frames=True``): a 10-second
            reply at 512x512 and 25 fps is about 200 MB of them.
        video: the reply's video encoded as one MP4 while it streamed
            (:meth:`Conversation.areply` and ``reply()`` do this by default; ``stream()`` with
            ``encode_video=True``).
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
    video: EncodedVideo | None = Field(default=None, repr=False)
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
        """Write ``{stem}.wav``, ``{stem}.mp4`` (when there is video) and ``{stem}.json``.

        The MP4 is H.264 + AAC with audio and video aligned from 0: the :attr:`video` encoded
        during the turn when there is one (copied, not re-encoded), else the kept :attr:`frames`
        (encoded now; needs the ``media`` extra). ``{stem}.json`` holds the transcript, the text
        and the metrics. ``watermark_tag`` writes the "AI-generated" metadata tag into an MP4
        encoded here (on by default; a :attr:`video` keeps the tag it was encoded with).

        Raises:
            InvalidInputError: ``stem`` is not a plain file name (no paths, no ``..``).
        """
        safe_name(stem, what="stem")
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        wav = mp4 = None
        if self.audio is not None:
            wav = self.audio.save(out / f"{stem}.wav")
        if self.video is not None:
            mp4 = self.video.save(out / f"{stem}.mp4")
        elif self.frames:
            from .output.mp4 import write_mp4

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
            "video_frames": self.video.frames if self.video is not None else len(self.frames),
            "fps": self.fps,
            "metrics": self.metrics.model_dump(),
        }
        json_path = out / f"{stem}.json"
        json_path.write_text(json.dumps(info, indent=2, ensure_ascii=False) + "\n", "utf-8")
        return SavedReply(wav=wav, mp4=mp4, json=json_path)
