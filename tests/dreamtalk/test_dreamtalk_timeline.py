"""The reply bookkeeping without any network: sentence chunking and frame accounting, audio
windows, the DDIM schedule, the noise bank, seam blending and the renderer's windows."""

from __future__ import annotations

import numpy as np
import pytest

from lexperience.backends._dreamtalk_timeline import (
    ChunkPlanner,
    NoiseBank,
    Timeline,
    audio_windows,
    ddim_timesteps,
    lookahead_frames,
    pose_indices,
    valid_ddim_steps,
)
from lexperience.media import AudioChunk


def test_ddim_timesteps_follow_dreamtalks_schedule() -> None:
    assert ddim_timesteps(1000, 10).tolist() == [1, 101, 201, 301, 401, 501, 601, 701, 801, 901]
    assert ddim_timesteps(1000, 5).tolist() == [1, 201, 401, 601, 801]
    assert ddim_timesteps(1000, 1).tolist() == [1]
    with pytest.raises(ValueError, match="do not divide") as info:
        ddim_timesteps(1000, 3)
    assert "10" in str(info.value) and "25" in str(info.value)
    assert valid_ddim_steps(1000, 25) == [1, 2, 4, 5, 8, 10, 20, 25]


def test_audio_windows_centre_each_frame_on_twice_its_index_with_zero_padding() -> None:
    feats = np.arange(1, 21, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)  # 20 x 3
    # features start at frame 2: frame f is centred on feature 2 * (f - 2)
    win = audio_windows(feats, first=2, count=3, origin=2, win=2)
    assert win.shape == (3, 5, 3)
    assert win[0, :, 0].tolist() == [0, 0, 1, 2, 3]  # before the audio: zeros
    assert win[1, :, 0].tolist() == [1, 2, 3, 4, 5]
    assert win[2, :, 0].tolist() == [3, 4, 5, 6, 7]
    last = audio_windows(feats, first=11, count=1, origin=2, win=2)
    assert last[0, :, 0].tolist() == [17, 18, 19, 20, 0]  # after the audio: zeros


def test_dreamtalks_window_of_five_reaches_three_frames_ahead() -> None:
    # frame f is centred on feature 2 f; a chunk of k frames has 2 k - 1 features (wav2vec2)
    for win in (2, 4, 5, 6):
        k = 20
        last_feature = 2 * k - 2
        seeing_past = [f for f in range(k) if 2 * f + win > last_feature]
        assert len(seeing_past) == lookahead_frames(win), win


def test_pose_loops_back_and_forth_without_a_jump() -> None:
    idx = pose_indices(np.arange(12), 4)
    assert idx.tolist() == [0, 1, 2, 3, 2, 1, 0, 1, 2, 3, 2, 1]
    assert pose_indices(np.arange(3), 1).tolist() == [0, 0, 0]


def test_noise_bank_gives_a_frame_the_same_noise_every_time() -> None:
    bank = NoiseBank(4, seed=3)
    first = bank.rows(0, 5).copy()
    again = bank.rows(3, 4)
    assert np.array_equal(again[:2], first[3:])
    assert not np.array_equal(again[2], again[3])
    assert np.array_equal(NoiseBank(4, seed=3).rows(0, 7), bank.rows(0, 7))


def test_timeline_holds_back_the_tail_replaces_what_saw_missing_audio_and_fades_the_rest() -> None:
    pose = np.zeros((1, 9), np.float32)
    tl = Timeline(pose, overlap=2, lookahead=1, radius=1)
    tl.add(0, np.full((10, 2), 1.0))
    assert list(tl.settle()) == list(range(7))  # the last 2 + 1 frames wait for the next chunk
    assert tl.final == 7 and len(tl) == 10
    with pytest.raises(ValueError):
        tl.add(6, np.zeros((5, 2)))  # cannot rewrite a final frame
    tl.add(7, np.full((8, 2), 5.0))  # regenerates 7-9, adds 10-14
    # frames 7 and 8 are cross-faded (old weight 2/3, 1/3); frame 9 saw missing audio: replaced
    assert tl.exp[7:10, 0].tolist() == pytest.approx([1 * 2 / 3 + 5 / 3, 1 / 3 + 5 * 2 / 3, 5.0])
    assert tl.exp[:7, 0].tolist() == [1.0] * 7  # frames already shown are unchanged
    assert tl.exp[10:, 0].tolist() == [5.0] * 5
    assert list(tl.settle()) == list(range(7, 12))
    assert list(tl.settle(end=True)) == [12, 13, 14]
    assert list(tl.settle(end=True)) == []


def test_a_short_chunk_is_replaced_where_it_saw_missing_audio() -> None:
    tl = Timeline(np.zeros((1, 9), np.float32), overlap=3, lookahead=3)
    tl.add(0, np.full((2, 1), 1.0))  # two frames: both saw missing audio
    assert list(tl.settle()) == []
    tl.add(0, np.full((9, 1), 4.0))
    assert tl.exp[:, 0].tolist() == [4.0] * 9  # nothing of the first version survives


def test_timeline_without_overlap_emits_everything_at_once() -> None:
    tl = Timeline(np.zeros((1, 9), np.float32), overlap=0, lookahead=0)
    tl.add(0, np.zeros((4, 64)))
    assert list(tl.settle()) == [0, 1, 2, 3]


def test_driving_windows_clamp_to_known_frames_and_carry_the_pose() -> None:
    pose = np.arange(3 * 9, dtype=np.float32).reshape(3, 9)
    tl = Timeline(pose, overlap=0, lookahead=0, radius=2)
    tl.add(0, np.arange(4, dtype=np.float32)[:, None] * np.ones((1, 64), np.float32))
    drive = tl.driving(range(0, 4))
    assert drive.shape == (4, 73, 5)
    assert drive[0, 0].tolist() == [0, 0, 0, 1, 2]  # expression, clamped at the start
    assert drive[3, 0].tolist() == [1, 2, 3, 3, 3]  # and at the last known frame
    # pose column 64 (first angle) of frames 0..3 loops over 3 rows: 0, 1, 2, 1
    assert drive[:, 64, 2].tolist() == [0.0, 9.0, 18.0, 9.0]


def _chunk(n: int, rate: int, sentence: int, value: float = 0.1) -> AudioChunk:
    return AudioChunk(np.full(n, value, np.float32), rate, sentence_index=sentence)


def test_planner_cuts_at_sentences_and_at_max_frames() -> None:
    planner = ChunkPlanner(max_frames=30)
    rate = 16_000
    for _ in range(10):
        planner.push(_chunk(1000, rate, 0))  # 10 000 samples: 15.6 frames
    assert planner.pop() is None and planner.has_open
    planner.push(_chunk(25_000, rate, 1))  # a new sentence closes the first chunk
    first = planner.pop()
    assert first is not None and (first.first, first.end, first.sentence) == (0, 15, 0)
    # sentence 1 now holds 35000 samples: 54 frames -> a chunk of 30, then 24 open
    second = planner.pop()
    assert second is not None and (second.first, second.end) == (15, 45)
    assert planner.pop() is None
    planner.finish()
    last = planner.pop()
    assert last is not None and last.first == 45
    assert last.end == round(35_000 / 640)  # the rounding goes to the last frame


@pytest.mark.parametrize("rate", [16_000, 22_050, 24_000, 44_100])
def test_planner_partitions_the_audio_into_exactly_round_seconds_times_25_frames(
    rate: int,
) -> None:
    rng = np.random.default_rng(rate)
    samples = rng.standard_normal(int(rate * 2.37)).astype(np.float32)
    planner = ChunkPlanner(max_frames=17)
    pos, sentence = 0, 0
    while pos < samples.shape[0]:
        n = int(rng.integers(1, rate // 3))
        planner.push(AudioChunk(samples[pos : pos + n], rate, sentence_index=sentence))
        pos += n
        sentence += int(rng.random() < 0.2)
    planner.finish()
    chunks = []
    while (c := planner.pop()) is not None:
        chunks.append(c)
    assert [c.first for c in chunks] == [0] + [c.end for c in chunks[:-1]]
    assert chunks[-1].end == round(samples.shape[0] * 25 / rate)
    joined = np.concatenate([a for c in chunks for a in c.audio])
    # every sample once, in order (AudioFramer leaves out a tail shorter than half a frame when
    # no frame is due for it at the end)
    assert np.array_equal(joined, samples[: joined.shape[0]])
    assert samples.shape[0] - joined.shape[0] < rate / 25 / 2


def test_planner_close_ends_a_chunk_early_and_later_audio_continues_it() -> None:
    planner = ChunkPlanner(max_frames=100)
    planner.push(_chunk(6400, 16_000, 0))
    planner.close()
    a = planner.pop()
    assert a is not None and (a.first, a.end) == (0, 10)
    planner.push(_chunk(3200, 16_000, 0))
    planner.finish()
    b = planner.pop()
    assert b is not None and (b.first, b.end) == (10, 15)
