from __future__ import annotations

import numpy as np
import pytest

from lexperience import Audio, InvalidInputError, VideoFrame, Watermark
from lexperience.render.font import glyph
from lexperience.render.mp4 import AI_GENERATED_TAG, Mp4Writer, write_mp4
from lexperience.render.watermark import draw_text

av = pytest.importorskip("av")


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


def test_mp4_without_tag_and_odd_sizes(tmp_path) -> None:
    frames = [np.zeros((31, 45, 3), np.uint8) for _ in range(5)]
    path = write_mp4(tmp_path / "b.mp4", frames=frames, fps=10, ai_generated_tag=False)
    with av.open(str(path)) as c:
        v = c.streams.video[0]
        assert (v.width, v.height) == (46, 32)
        assert "ai_generated" not in c.metadata


def test_audio_may_arrive_before_the_first_frame(tmp_path) -> None:
    with Mp4Writer(tmp_path / "early.mp4", fps=25, sample_rate=16_000) as w:
        w.add_audio(np.zeros(16_000, np.float32))
        for _ in range(25):
            w.add_frame(np.zeros((64, 64, 3), np.uint8))
        w.add_audio(np.zeros(100, np.float32))
    with av.open(str(tmp_path / "early.mp4")) as c:
        assert len(c.streams.video) == 1 and len(c.streams.audio) == 1
        assert sum(1 for _ in c.decode(c.streams.video[0])) == 25


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
