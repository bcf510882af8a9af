"""Idle loops, blinks, head motion and reproducibility of the portrait avatar."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lexperience.backends.portrait_avatar import PortraitAvatar
from lexperience.errors import InvalidInputError
from lexperience.media import Audio
from lexperience.render.animation import Blinker
from lexperience.render.rig import FrameState


def eye_region(avatar: PortraitAvatar) -> tuple[slice, slice]:
    left, right = avatar.layout.eyes
    pad = round(left.w)
    y0, y1 = round(min(left.cy, right.cy) - pad), round(max(left.cy, right.cy) + pad)
    return slice(y0, y1), slice(round(left.cx - pad), round(right.cx + pad))


def mean_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def test_idle_loop_is_seamless_and_alive() -> None:
    avatar = PortraitAvatar(seed=21)
    frames = avatar.idle_frames(4.0)
    assert len(frames) == 100 and [f.index for f in frames] == list(range(100))
    rest = avatar.preview()
    # It starts at the rest pose and its last frame leads smoothly back to the first.
    assert np.array_equal(frames[0].image, rest)
    steps = [mean_diff(a.image, b.image) for a, b in itertools.pairwise(frames)]
    assert mean_diff(frames[-1].image, frames[0].image) <= 2 * np.median(steps) + 0.05
    # The head moves...
    assert max(mean_diff(f.image, rest) for f in frames) > 1.0
    # ...the eyes blink at least once, and the mouth stays shut.
    eyes = eye_region(avatar)
    assert max(mean_diff(f.image[eyes], rest[eyes]) for f in frames) > 8.0
    still = PortraitAvatar(seed=21, head_motion=False).idle_frames(4.0)
    x0, y0, x1, y1 = avatar.layout.mouth_box()
    assert all(np.array_equal(f.image[y0:y1, x0:x1], rest[y0:y1, x0:x1]) for f in still)


def test_idle_loop_without_motion_or_blinks_is_the_still() -> None:
    avatar = PortraitAvatar(blink=False, head_motion=False, gaze=False)
    frames = avatar.idle_frames(5.0, loop=False, start_index=100)
    assert frames[0].index == 100
    assert all(np.array_equal(f.image, avatar.preview()) for f in frames)
    with pytest.raises(InvalidInputError):
        avatar.idle_frames(0)


def test_blinks_come_at_natural_intervals() -> None:
    blinker = Blinker(np.random.default_rng(0))
    fps = 25
    closed = np.array([blinker.value(i / fps) for i in range(60 * fps)])  # one minute
    starts = np.flatnonzero((closed[1:] > 0.5) & (closed[:-1] <= 0.5))
    assert 10 <= len(starts) <= 30  # people blink ~15-20 times a minute
    assert np.diff(starts).min() >= 0.25 * fps  # never a flutter
    assert (closed > 0.5).mean() < 0.1  # eyes open most of the time
    assert Blinker.profile(0.1) == 1.0 and Blinker.profile(Blinker.DURATION) == 0.0


def test_seed_makes_clips_reproducible(piper_speech: Audio) -> None:
    clip = piper_speech.slice(0.0, 1.6)
    a = PortraitAvatar(seed=9).render_audio(clip)
    b = PortraitAvatar(seed=9).render_audio(clip)
    assert all(np.array_equal(x.image, y.image) for x, y in zip(a, b, strict=True))
    c = PortraitAvatar(seed=10).render_audio(clip)
    assert any(not np.array_equal(x.image, y.image) for x, y in zip(a, c, strict=True))


def test_blink_closes_the_eyes_on_a_photo(astronaut: np.ndarray) -> None:
    avatar = PortraitAvatar(astronaut)
    eyes = eye_region(avatar)
    rest = avatar.preview()
    shut = avatar.render_state(FrameState(blink=1.0))
    half = avatar.render_state(FrameState(blink=0.5))
    assert mean_diff(shut[eyes], rest[eyes]) > mean_diff(half[eyes], rest[eyes]) > 1.0
    # Outside the eyes nothing changes.
    m = avatar.layout.mouth
    mouth = (slice(round(m.cy - 10), round(m.cy + 10)), slice(round(m.cx - 30), round(m.cx + 30)))
    assert np.array_equal(shut[mouth], rest[mouth])
