from __future__ import annotations

import numpy as np
import pytest

from lexperience import AudioChunk
from lexperience.framing import AudioFramer


@pytest.mark.parametrize("fps", [25.0, 24.0, 29.97, 30.0])
@pytest.mark.parametrize("sizes", [[1], [160, 7, 9000, 333], [22_050] * 3, [5] * 1000])
def test_frames_cover_the_audio_in_order(fps: float, sizes: list[int]) -> None:
    rate = 22_050
    framer = AudioFramer(fps)
    total = sum(sizes)
    signal = np.arange(total, dtype=np.float32) / total
    frames: list[tuple[int, np.ndarray]] = []
    pos = 0
    for n in sizes:
        frames += framer.push(AudioChunk(signal[pos : pos + n], rate))
        pos += n
    frames += framer.finish()
    assert [i for i, _ in frames] == list(range(len(frames)))
    assert len(frames) == round(total * fps / rate)
    if frames:
        # frames hold the audio in order; at most a rounding remainder (< 1 frame) is left over
        covered = np.concatenate([s for _, s in frames])
        assert np.array_equal(covered, signal[: len(covered)])
        assert total - len(covered) < rate / fps


def test_frames_are_due_as_soon_as_their_audio_arrived() -> None:
    framer = AudioFramer(25)
    assert framer.push(AudioChunk(np.zeros(639, np.float32), 16_000)) == []
    ready = framer.push(AudioChunk(np.zeros(1, np.float32), 16_000))
    assert [(i, len(s)) for i, s in ready] == [(0, 640)]
    assert framer.received_seconds == pytest.approx(0.04)


def test_later_chunks_are_resampled_to_the_first_rate() -> None:
    framer = AudioFramer(25)
    framer.push(AudioChunk(np.zeros(16_000, np.float32), 16_000))
    framer.push(AudioChunk(np.zeros(24_000, np.float32), 24_000))
    assert framer.rate == 16_000 and framer.received == 32_000
    assert framer.index + len(framer.finish()) == 50
