"""Per-sentence MP4 segments written while a reply streams (render/segments.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lexperience import Conversation, TurnDone
from lexperience.backends.portrait_avatar import PortraitAvatar
from lexperience.errors import InvalidInputError
from lexperience.media import AudioChunk, VideoFrame
from lexperience.output.segments import Segment, SegmentWriter
from lexperience.testing import FakeLLM, FakeTTS

av = pytest.importorskip("av")

REPLY = "The sky is blue in the day. Sunsets look red and orange. Night skies are dark."


def probe(path: Path) -> dict[str, object]:
    with av.open(str(path)) as container:
        v, a = container.streams.video[0], container.streams.audio[0]
        info: dict[str, object] = {
            "video_s": float(v.duration * v.time_base),
            "audio_s": float(a.duration * a.time_base),
            "frames": sum(1 for _ in container.decode(video=0)),
        }
    with av.open(str(path)) as container:
        frames = list(container.decode(audio=0))
    info["audio_start"] = float(frames[0].pts * frames[0].time_base)
    info["audio"] = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    return info


def lag(decoded: np.ndarray, original: np.ndarray, max_lag: int = 800) -> int:
    n = min(len(decoded), len(original))
    x, y = original[:n].astype(np.float64), decoded[:n].astype(np.float64)
    size = 1 << (2 * n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)
    window = np.concatenate([corr[: max_lag + 1], corr[-max_lag:]])
    best = int(np.argmax(window))
    return best if best <= max_lag else best - len(window)


async def test_one_synced_segment_per_sentence_while_streaming(tmp_path: Path) -> None:
    conv = Conversation(
        llm=FakeLLM(REPLY),
        tts=FakeTTS(sample_rate=16_000),
        avatar=PortraitAvatar(size=160, seed=2),
    )
    conv.persona = conv.persona.model_copy(update={"max_sentences": 5})
    finished_at: list[int] = []
    events_seen = 0
    writer = SegmentWriter(tmp_path, fps=25, on_segment=lambda s: finished_at.append(events_seen))
    reply = None
    with writer:
        async for event in conv.stream("Tell me about the sky"):
            events_seen += 1
            writer.add_event(event)
            if isinstance(event, TurnDone):
                reply = event.reply
    assert reply is not None and reply.audio is not None
    segments = writer.segments
    assert [s.sentence_index for s in segments] == [0, 1, 2]
    assert [s.text for s in segments] == reply.sentences
    # Segments were handed over while the turn was still streaming, not at the end.
    assert finished_at[0] < events_seen - 10 and finished_at[1] < events_seen - 10

    # Together they are the whole reply, frame for frame and sample for sample.
    total_frames = round(reply.audio.duration * 25)
    assert sum(s.frames for s in segments) == total_frames
    assert [s.start_frame for s in segments] == [0, segments[0].frames,
                                                 segments[0].frames + segments[1].frames]  # fmt: skip
    audio = reply.audio.samples
    for seg in segments:
        got = probe(seg.path)
        assert got["frames"] == seg.frames
        assert got["video_s"] == pytest.approx(seg.duration, abs=1e-6)
        # Cut at frame times: the audio lasts as long as the video; only the last segment
        # also carries the reply's rounding remainder (under half a frame).
        slack = 0.5 / 25 if seg is segments[-1] else 0.0
        assert abs(float(got["audio_s"]) - seg.duration) <= slack + 1e-3  # type: ignore[arg-type]
        assert got["audio_start"] == 0.0
        start = round(seg.start * 16_000)
        original = audio[start : start + round(seg.duration * 16_000)]
        decoded = got["audio"]
        assert isinstance(decoded, np.ndarray)
        assert abs(lag(decoded, original)) <= 16  # within 1 ms: aligned from 0
        # The segment's sound is the reply's sound at that place.
        n = min(len(original), len(decoded)) - 64
        assert np.corrcoef(decoded[:n], original[:n])[0, 1] > 0.9


def frames_for(n: int, start: int = 0, size: int = 32) -> list[VideoFrame]:
    return [VideoFrame(np.full((size, size, 3), (i * 7) % 255, np.uint8), start + i, 25.0)
            for i in range(n)]  # fmt: skip


def chunk(seconds: float, sentence: int, rate: int = 16_000, text: str | None = None) -> AudioChunk:
    t = np.arange(round(seconds * rate)) / rate
    return AudioChunk(
        (0.2 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), rate, text=text,
        sentence_index=sentence,
    )  # fmt: skip


def test_boundaries_are_cut_at_frame_times(tmp_path: Path) -> None:
    done: list[Segment] = []
    with SegmentWriter(tmp_path, fps=25, stem="s", on_segment=done.append) as writer:
        writer.add_audio(chunk(1.01, 0, text="first"))  # 25.25 frames of audio
        assert writer.add_frame(frames_for(1)[0]) == []
        for f in frames_for(24, start=1):
            writer.add_frame(f)
        writer.add_audio(chunk(0.5, 1, rate=24_000, text="second"))  # resampled to 16 kHz
        for f in frames_for(13, start=25):  # round(1.51 * 25) = 38 frames in all
            writer.add_frame(f)
        assert [s.sentence_index for s in done] == [0]  # closed once frame 24 and its audio are in
    assert [s.frames for s in writer.segments] == [25, 13]
    assert [p.path.name for p in writer.segments] == ["s-000.mp4", "s-001.mp4"]
    first, second = (probe(s.path) for s in writer.segments)
    assert first["audio_s"] == pytest.approx(1.0, abs=1e-4)  # cut at frame 25, not at 1.01 s
    assert second["audio_s"] == pytest.approx(0.51, abs=1e-3)  # the rest (38 frames in all)
    assert second["video_s"] == pytest.approx(0.52, abs=1e-6)


def test_a_sentence_shorter_than_half_a_frame_joins_the_next(tmp_path: Path) -> None:
    with SegmentWriter(tmp_path, fps=25) as writer:
        writer.add_audio(chunk(0.01, 0))
        writer.add_audio(chunk(0.4, 1, text="next"))
        for f in frames_for(10):
            writer.add_frame(f)
    assert len(writer.segments) == 1
    assert writer.segments[0].sentence_index == 1 and writer.segments[0].frames == 10


def test_frames_before_audio_wait_for_the_sample_rate(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, fps=25)
    for f in frames_for(5):
        writer.add_frame(f)
    writer.add_audio(chunk(0.2, 0))
    segments = writer.close()
    assert len(segments) == 1 and segments[0].frames == 5
    assert probe(segments[0].path)["audio_s"] == pytest.approx(0.2, abs=1e-4)


def test_misuse(tmp_path: Path) -> None:
    writer = SegmentWriter(tmp_path, fps=25)
    writer.add_audio(chunk(0.2, 0))
    with pytest.raises(InvalidInputError, match="in order"):
        writer.add_frame(frames_for(1, start=3)[0])
    writer.close()
    assert writer.close() == []
    with pytest.raises(InvalidInputError, match="closed"):
        writer.add_audio(chunk(0.1, 0))
    with pytest.raises(InvalidInputError):
        SegmentWriter(tmp_path, fps=0)


def test_stopped_stream_still_closes_its_segments(tmp_path: Path) -> None:
    """An interrupted reply: audio of sentence 1 came, but only some frames of sentence 0."""
    writer = SegmentWriter(tmp_path, fps=25)
    writer.add_audio(chunk(0.4, 0))
    writer.add_audio(chunk(0.4, 1))
    for f in frames_for(6):
        writer.add_frame(f)
    segments = writer.close()
    assert [s.frames for s in segments] == [6]
    assert probe(segments[0].path)["frames"] == 6
