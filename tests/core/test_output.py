from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from lexperience import Audio, AudioChunk, InvalidInputError, TurnOptions, VideoFrame, Watermark
from lexperience.output.font import glyph
from lexperience.output.mp4 import AI_GENERATED_TAG, Mp4Writer, write_mp4
from lexperience.output.watermark import draw_text

try:
    import av
except ImportError:  # the watermark and font tests below need no PyAV
    av = None

needs_av = pytest.mark.skipif(av is None, reason="needs PyAV (the media extra)")


@needs_av
def test_mp4_audio_and_video_line_up_from_zero(tmp_path) -> None:
    """A click in the audio at 1.0 s and a white frame at 1.0 s must decode at the same time."""
    rate, fps = 22_050, 25
    samples = np.zeros(rate * 2, np.float32)
    samples[rate : rate + 2205] = 0.5 * np.sin(np.arange(2205) / 3)
    frames = [VideoFrame(np.full((64, 64, 3), 255 if i == 25 else 0, np.uint8), i, fps)
              for i in range(50)]  # fmt: skip
    path = write_mp4(tmp_path / "a.mp4", frames=frames, fps=fps, audio=Audio(samples, rate))
    with av.open(str(path)) as c:
        assert c.metadata.get("comment") == AI_GENERATED_TAG["comment"]
        assert c.metadata.get("ai_generated") == "true"
        v = c.streams.video[0]
        decoded = list(c.decode(v))
        assert len(decoded) == 50
        white = next(f for f in decoded if f.to_ndarray(format="rgb24").mean() > 128)
        video_click = float(white.pts * white.time_base)
        assert float(v.duration * v.time_base) == pytest.approx(2.0, abs=1 / fps)
    with av.open(str(path)) as c:
        audio_click = None
        for f in c.decode(c.streams.audio[0]):
            loud = np.nonzero(np.abs(f.to_ndarray().reshape(-1)) > 0.1)[0]
            if loud.size:
                audio_click = float(f.pts * f.time_base) + loud[0] / f.sample_rate
                break
    assert video_click == pytest.approx(1.0, abs=1e-3)
    assert audio_click is not None
    # the AAC encoder's priming is in the edit list, not played as sound: no ~46 ms delay
    assert abs(audio_click - video_click) < 0.5 / fps


@needs_av
def test_mp4_without_tag_and_odd_sizes(tmp_path) -> None:
    frames = [np.zeros((31, 45, 3), np.uint8) for _ in range(5)]
    path = write_mp4(tmp_path / "b.mp4", frames=frames, fps=10, ai_generated_tag=False)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        assert (v.width, v.height) == (46, 32)
        assert "ai_generated" not in c.metadata


@needs_av
def test_audio_may_arrive_before_the_first_frame(tmp_path) -> None:
    with Mp4Writer(tmp_path / "early.mp4", fps=25, sample_rate=16_000) as w:
        w.add_audio(np.zeros(16_000, np.float32))
        for _ in range(25):
            w.add_frame(np.zeros((64, 64, 3), np.uint8))
        w.add_audio(np.zeros(100, np.float32))
    with av.open(str(tmp_path / "early.mp4")) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        assert sum(1 for _ in c.decode(c.streams.video[0])) == 25


@needs_av
def test_writer_rejects_bad_frames(tmp_path) -> None:
    with pytest.raises(InvalidInputError):
        write_mp4(tmp_path / "c.mp4", frames=[], fps=25)
    with Mp4Writer(tmp_path / "d.mp4", fps=25, sample_rate=None) as w:
        w.add_frame(np.zeros((16, 16, 3), np.uint8))
        with pytest.raises(InvalidInputError, match="earlier frames"):
            w.add_frame(np.zeros((32, 32, 3), np.uint8))
        with pytest.raises(InvalidInputError, match="without audio"):
            w.add_audio(np.zeros(10, np.float32))


def test_watermark_is_visible_and_does_not_modify_input() -> None:
    image = np.full((256, 256, 3), 128, np.uint8)
    marked = Watermark().apply(image)
    assert np.all(image == 128)
    diff = np.any(marked != image, axis=2)
    ys, xs = np.nonzero(diff)
    assert ys.min() > 200 and xs.min() > 100  # bottom-right corner
    assert (marked[diff] == 255).any()  # white text pixels
    top_left = Watermark(corner="top-left").apply(image)
    ys, xs = np.nonzero(np.any(top_left != image, axis=2))
    assert ys.max() < 60 and xs.min() < 20


def test_font_and_text_drawing() -> None:
    assert glyph("A").shape == (7, 5) and glyph("a").sum() == glyph("A").sum()
    assert np.array_equal(glyph("~"), glyph("?"))
    img = np.zeros((20, 40, 3), np.uint8)
    draw_text(img, "HI", x=0, y=0, scale=1, background=None)
    assert img.sum() > 0


def _tags(path) -> dict[str, str]:  # type: ignore[no-untyped-def]
    assert av is not None
    with av.open(str(path)) as c:
        return dict(c.metadata)


def _frame_count(path) -> int:  # type: ignore[no-untyped-def]
    assert av is not None
    with av.open(str(path)) as c:
        return sum(1 for _ in c.decode(c.streams.video[0]))


@needs_av
async def test_areply_encodes_the_video_as_it_streams_with_the_tag(tmp_path) -> None:
    from lexperience import Conversation
    from lexperience.testing import FakeAvatar, FakeLLM, FakeTTS

    conv = Conversation(llm=FakeLLM(), tts=FakeTTS(), avatar=FakeAvatar(size=(64, 48)))
    reply = await conv.areply("q")
    assert reply.frames == [] and reply.video is not None
    assert reply.video.frames == reply.metrics.video_frames
    saved = reply.save(tmp_path)
    assert saved.mp4 is not None and saved.mp4.read_bytes() == reply.video.data  # no re-encode
    assert _tags(saved.mp4)["ai_generated"] == "true"
    assert _frame_count(saved.mp4) == reply.video.frames
    untagged = Conversation(
        llm=FakeLLM(),
        tts=FakeTTS(),
        avatar=FakeAvatar(),
        options=TurnOptions(ai_generated_tag=False),
    )
    quiet = await untagged.areply("q")
    assert quiet.video is not None and not quiet.video.ai_generated_tag
    assert "ai_generated" not in _tags(quiet.video.save(tmp_path / "quiet.mp4"))


@needs_av
async def test_reply_save_from_kept_frames_writes_the_tag(tmp_path) -> None:
    from lexperience import Conversation
    from lexperience.testing import FakeAvatar, FakeLLM, FakeTTS

    conv = Conversation(llm=FakeLLM(), tts=FakeTTS(), avatar=FakeAvatar())
    events = [e async for e in conv.stream("q", keep_frames=True)]
    reply = events[-1].reply  # type: ignore[union-attr]
    assert reply.video is None and reply.frames
    tagged = reply.save(tmp_path, stem="tagged")
    assert _tags(tagged.mp4)["ai_generated"] == "true"
    plain = reply.save(tmp_path, stem="plain", watermark_tag=False)
    assert "ai_generated" not in _tags(plain.mp4)


@needs_av
def test_segment_writer_tags_every_segment(tmp_path) -> None:
    from lexperience import AudioChunk
    from lexperience.output import SegmentWriter

    with SegmentWriter(tmp_path, fps=25) as writer:
        for sentence in range(2):
            writer.add_audio(
                AudioChunk(np.full(16_000, 0.1, np.float32), 16_000, sentence_index=sentence)
            )
        for i in range(50):
            writer.add_frame(VideoFrame(np.zeros((32, 32, 3), np.uint8), i, 25))
    assert len(writer.segments) == 2
    for segment in writer.segments:
        assert _tags(segment.path)["ai_generated"] == "true"


def _open_fds(path) -> int:  # type: ignore[no-untyped-def]
    import os

    target = str(path)
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == target:
                count += 1
        except OSError:
            continue
    return count


@needs_av
def test_mp4_writer_closes_its_file_on_every_error_path(tmp_path, monkeypatch) -> None:
    import types

    from lexperience.output import mp4 as mp4_module

    class Broken:  # a container whose stream set-up fails, after the file was opened
        def __init__(self, real: object) -> None:
            self.real = real
            self.metadata: dict[str, str] = {}

        def add_stream(self, *a: object, **k: object) -> None:
            raise RuntimeError("no encoder")

        def close(self) -> None:
            self.real.close()  # type: ignore[attr-defined]

    fake_av = types.SimpleNamespace(open=lambda *a, **k: Broken(av.open(*a, **k)))
    monkeypatch.setattr(mp4_module, "require", lambda *a, **k: fake_av)
    path = tmp_path / "bad.mp4"
    with pytest.raises(RuntimeError, match="no encoder"):
        Mp4Writer(path, fps=25, sample_rate=16_000)
    assert _open_fds(path) == 0
    monkeypatch.undo()
    path2 = tmp_path / "raised.mp4"
    with pytest.raises(ValueError, match="mine"), Mp4Writer(path2, fps=25, sample_rate=16_000) as w:
        w.add_frame(np.zeros((16, 16, 3), np.uint8))
        raise ValueError("mine")  # not hidden by a flush of the half-written file
    assert _open_fds(path2) == 0
    path3 = tmp_path / "sizes.mp4"
    with pytest.raises(InvalidInputError), Mp4Writer(path3, fps=25, sample_rate=None) as w3:
        w3.add_frame(np.zeros((16, 16, 3), np.uint8))
        w3.add_frame(np.zeros((32, 32, 3), np.uint8))
    assert _open_fds(path3) == 0


@needs_av
async def test_a_failing_recorder_does_not_fail_the_turn(caplog: pytest.LogCaptureFixture) -> None:
    from lexperience.output.recorder import VideoRecorder

    recorder = VideoRecorder(fps=25)
    await recorder.add_audio(AudioChunk(np.full(8000, 0.1, np.float32), 16_000))
    await recorder.add_frame(VideoFrame(np.zeros((16, 16, 3), np.uint8), 0, 25))
    await recorder.add_frame(VideoFrame(np.zeros((32, 32, 3), np.uint8), 1, 25))  # size changes
    for i in range(2, 200):  # more than the queue holds: producers must not hang
        await recorder.add_frame(VideoFrame(np.zeros((16, 16, 3), np.uint8), i, 25))
    assert await recorder.finish() is None
    assert "encoding the reply video failed" in caplog.text


@needs_av
async def test_recorder_abort_removes_its_file() -> None:
    import tempfile

    from lexperience.output.recorder import VideoRecorder

    def ours() -> set[Path]:
        return set(Path(tempfile.gettempdir()).glob("lexperience-reply-*"))

    before = ours()
    recorder = VideoRecorder(fps=25)
    await recorder.add_audio(AudioChunk(np.full(8000, 0.1, np.float32), 16_000))
    await recorder.add_frame(VideoFrame(np.zeros((16, 16, 3), np.uint8), 0, 25))
    for _ in range(100):  # until the encoder thread has opened its file
        if ours() - before:
            break
        await asyncio.sleep(0.01)
    assert ours() - before
    await recorder.abort()
    assert ours() - before == set()
    assert await recorder.finish() is None
