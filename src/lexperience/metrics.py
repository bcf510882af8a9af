"""Latency and throughput figures every reply carries, under the names the benchmarks, UIs and logs
share. All times are seconds measured from the end of the user's speech (the moment the turn
starts); real-time factors (RTF) are processing time divided by audio duration (lower is faster;
below 1 is faster than real time)."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict

__all__ = ["TurnMetrics"]


class TurnMetrics(BaseModel):
    """Timings of one turn. A field is ``None`` when that stage did not run."""

    model_config = ConfigDict(frozen=True)

    input_audio_s: float | None = None
    transcript_s: float | None = None
    first_token_s: float | None = None
    first_sentence_s: float | None = None
    first_audio_s: float | None = None
    first_video_s: float | None = None
    total_s: float = 0.0
    reply_audio_s: float = 0.0
    sentences: int = 0
    llm_deltas: int = 0
    video_frames: int = 0
    stt_rtf: float | None = None
    tts_rtf: float | None = None
    avatar_rtf: float | None = None

    def summary(self) -> str:
        """One human-readable line, as the CLI prints it."""

        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v * 1000:.0f} ms"

        def rtf(v: float | None) -> str:
            return "-" if v is None else f"{v:.2f}"

        return (
            f"transcript {ms(self.transcript_s)} | first token {ms(self.first_token_s)} | "
            f"first sentence {ms(self.first_sentence_s)} | first audio {ms(self.first_audio_s)} | "
            f"first frame {ms(self.first_video_s)} | total {ms(self.total_s)} | "
            f"RTF stt {rtf(self.stt_rtf)} tts {rtf(self.tts_rtf)} avatar {rtf(self.avatar_rtf)}"
        )


class MetricsRecorder:
    """Collects the marks of one turn (internal; the pipeline owns one per turn)."""

    def __init__(self) -> None:
        self.t0 = time.perf_counter()
        self.marks: dict[str, float] = {}
        self.busy: dict[str, float] = {"stt": 0.0, "tts": 0.0, "avatar": 0.0}
        self.counts: dict[str, int] = {"deltas": 0, "sentences": 0, "frames": 0}
        self.input_audio_s: float | None = None
        self.reply_audio_s = 0.0

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def mark_once(self, name: str) -> None:
        self.marks.setdefault(name, self.now())

    def build(self) -> TurnMetrics:
        video_s = self.counts["frames"] and self.reply_audio_s
        return TurnMetrics(
            input_audio_s=self.input_audio_s,
            transcript_s=self.marks.get("transcript"),
            first_token_s=self.marks.get("first_token"),
            first_sentence_s=self.marks.get("first_sentence"),
            first_audio_s=self.marks.get("first_audio"),
            first_video_s=self.marks.get("first_video"),
            total_s=self.now(),
            reply_audio_s=self.reply_audio_s,
            sentences=self.counts["sentences"],
            llm_deltas=self.counts["deltas"],
            video_frames=self.counts["frames"],
            stt_rtf=_ratio(self.busy["stt"], self.input_audio_s)
            if "transcript" in self.marks and self.input_audio_s
            else None,
            tts_rtf=_ratio(self.busy["tts"], self.reply_audio_s) if self.reply_audio_s else None,
            avatar_rtf=_ratio(self.busy["avatar"], video_s) if video_s else None,
        )


def _ratio(busy: float, seconds: float | None) -> float | None:
    return round(busy / seconds, 4) if seconds else None
