"""A/V sync of the portrait avatar, checked on the decoded MP4 file, not on the encoder's input."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from lexperience.backends.portrait_avatar import PortraitAvatar
from lexperience.media import Audio
from lexperience.output.mp4 import write_mp4

av = pytest.importorskip("av")

FPS = 25


def decode(path: Path) -> dict[str, object]:
    """What a player sees: stream durations (edit lists applied), frame times, audio samples."""
    with av.open(str(path)) as container:
        v, a = container.streams.video[0], container.streams.audio[0]
        info: dict[str, object] = {
            "video_duration": float(v.duration * v.time_base),
            "audio_duration": float(a.duration * a.time_base),
            "audio_rate": a.rate,
        }
        times = [float(f.pts * f.time_base) for f in container.decode(video=0)]
    with av.open(str(path)) as container:
        frames = list(container.decode(audio=0))
    info["video_times"] = times
    info["audio_start"] = float(frames[0].pts * frames[0].time_base)
    info["audio"] = np.concatenate([f.to_ndarray().reshape(-1) for f in frames])
    return info


def lag_samples(decoded: np.ndarray, original: np.ndarray, max_lag: int = 2048) -> int:
    """The delay of ``decoded`` against ``original`` (in samples) by cross-correlation."""
    n = min(len(original), len(decoded), 3 * 22_050)
    x = original[:n].astype(np.float64)
    y = decoded[:n].astype(np.float64)
    size = 1 << (2 * n - 1).bit_length()
    corr = np.fft.irfft(np.fft.rfft(y, size) * np.conj(np.fft.rfft(x, size)), size)
    lags = np.concatenate([corr[: max_lag + 1], corr[-max_lag:]])
    best = int(np.argmax(lags))
    return best if best <= max_lag else best - len(lags)


async def render(avatar: PortraitAvatar, chunks: list, tools: type) -> list:
    return [f async for f in avatar.animate(tools.feed(chunks))]


@pytest.mark.parametrize(
    ("speech", "portrait"),
    [("piper", "builtin"), ("piper", "photo"), ("fake", "builtin")],
)
async def test_decoded_mp4_has_audio_and_video_in_sync(
    speech: str,
    portrait: str,
    piper_speech: Audio,
    fake_chunks: list,
    astronaut: np.ndarray,
    tools: type,
    tmp_path: Path,
) -> None:
    if speech == "piper":
        audio = piper_speech
        chunks = tools.split(audio, [2205, 4410, 3307])  # uneven 0.1-0.2 s chunks
    else:
        chunks = fake_chunks
        audio = Audio.concatenate([c.to_audio() for c in chunks])
    avatar = PortraitAvatar(astronaut if portrait == "photo" else None, fps=FPS, seed=1)
    frames = await render(avatar, chunks, tools)

    assert len(frames) == round(audio.duration * FPS)
    assert [f.index for f in frames] == list(range(len(frames)))

    path = write_mp4(tmp_path / "reply.mp4", frames=frames, fps=FPS, audio=audio)
    got = decode(path)
    video_times = got["video_times"]
    assert isinstance(video_times, list)
    # Every frame is there, at its own time from 0.
    assert len(video_times) == len(frames)
    assert video_times[0] == 0.0
    assert np.allclose(np.diff(video_times), 1 / FPS, atol=1e-6)
    # Video and audio last as long as each other (within one frame), and the frame count is
    # the audio duration times the frame rate.
    assert got["video_duration"] == pytest.approx(len(frames) / FPS, abs=1e-6)
    assert abs(float(got["video_duration"]) - float(got["audio_duration"])) <= 1 / FPS  # type: ignore[arg-type]
    assert abs(float(got["audio_duration"]) - audio.duration) < 1e-3  # type: ignore[arg-type]
    assert len(frames) == round(float(got["audio_duration"]) * FPS)  # type: ignore[arg-type]
    # The sound starts at 0 too: no AAC priming played as sound (it would delay it ~46 ms).
    assert got["audio_start"] == 0.0
    decoded = got["audio"]
    assert isinstance(decoded, np.ndarray)
    rate = int(got["audio_rate"])  # type: ignore[call-overload]
    lag = lag_samples(decoded, audio.resample(rate).samples)
    assert abs(lag) <= rate // 1000, f"decoded audio is shifted by {lag} samples"


def test_frame_count_for_a_whole_clip_matches_fps(piper_speech: Audio) -> None:
    avatar = PortraitAvatar(fps=30, seed=2)
    clip = piper_speech.slice(0.0, 2.345)
    frames = avatar.render_audio(clip)
    assert len(frames) == round(clip.duration * 30)
    assert all(f.fps == 30 for f in frames)
    assert Fraction(len(frames), 30) - Fraction(len(clip), clip.sample_rate) < Fraction(1, 60)
