"""Viseme accuracy on the rendered frames: the lips are shut at bilabial closures (p, b, m), open at
open vowels, and on the teeth for "f"/"v"; measured on pixels (the mouth's dark cavity), not on
the avatar's internal parameters."""

from __future__ import annotations

import numpy as np
import pytest

from lexperience.backends.portrait_avatar import PortraitAvatar
from lexperience.media import AudioChunk
from lexperience.render.measure import dark_area, viseme_accuracy
from lexperience.render.rig import FrameState
from lexperience.visemes import VisemeCue

FPS = 25
RATE = 16_000
CONSONANTS = ("PP", "PP", "PP", "FF", "DD", "kk", "SS", "nn", "RR")
VOWELS = ("aa", "oh", "E", "ih", "ou")
# Loudness of each shape in the synthetic speech (stops are silent, vowels loud).
GAIN = {"PP": 0.03, "FF": 0.12, "DD": 0.08, "kk": 0.08, "SS": 0.15, "nn": 0.35, "RR": 0.45,
        "aa": 1.0, "oh": 0.9, "E": 0.85, "ih": 0.75, "ou": 0.7, "sil": 0.0}  # fmt: skip


def synthetic_speech(seconds: float, seed: int) -> tuple[np.ndarray, list[VisemeCue]]:
    """Consonant-vowel syllables with speech-like durations (bilabial closures 40-120 ms, some
    shorter than a frame; vowels 60-200 ms), pauses now and then, at random phases to the frame
    grid; a voiced tone whose loudness follows the shapes."""
    rng = np.random.default_rng(seed)
    cues: list[VisemeCue] = []
    t = 0.25
    cues.append(VisemeCue(0.0, t, "sil"))
    while t < seconds - 0.5:
        if rng.random() < 0.12:
            d = float(rng.uniform(0.15, 0.4))
            cues.append(VisemeCue(t, t + d, "sil"))
            t += d
        c = str(rng.choice(CONSONANTS))
        d = float(rng.uniform(0.04, 0.12) if c == "PP" else rng.uniform(0.04, 0.1))
        cues.append(VisemeCue(t, t + d, c))
        t += d
        v = str(rng.choice(VOWELS))
        d = float(rng.uniform(0.06, 0.2))
        cues.append(VisemeCue(t, t + d, v))
        t += d
    cues.append(VisemeCue(t, seconds, "sil"))
    n = round(seconds * RATE)
    gain = np.zeros(n)
    for cue in cues:
        gain[round(cue.start * RATE) : round(cue.end * RATE)] = GAIN[cue.viseme]
    ramp = int(0.01 * RATE)
    gain = np.convolve(gain, np.ones(ramp) / ramp, mode="same")
    tt = np.arange(n) / RATE
    f0 = 120 + 15 * np.sin(2 * np.pi * 0.7 * tt)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    voiced = sum(np.sin(k * phase) / k for k in range(1, 6))
    return (0.2 * gain * voiced).astype(np.float32), cues


def chunked(samples: np.ndarray, cues: list[VisemeCue], seconds: float) -> list[AudioChunk]:
    """Cut speech into chunks carrying their own cues (times relative to each chunk), as a TTS
    streams them."""
    step = round(seconds * RATE)
    out = []
    for start in range(0, samples.shape[0], step):
        block = samples[start : start + step]
        t0, t1 = start / RATE, (start + block.shape[0]) / RATE
        mine = tuple(
            VisemeCue(max(c.start, t0) - t0, min(c.end, t1) - t0, c.viseme)
            for c in cues
            if c.end > t0 and c.start < t1
        )
        out.append(AudioChunk(block, RATE, visemes=mine))
    return out


@pytest.mark.parametrize("portrait", ["builtin", "astronaut"])
async def test_lips_shut_on_bilabials_and_open_on_open_vowels(
    portrait: str, astronaut: np.ndarray, tools: type
) -> None:
    samples, cues = synthetic_speech(30.0, seed=3)
    avatar = PortraitAvatar(astronaut if portrait == "astronaut" else None, fps=FPS, seed=2)
    frames = [f async for f in avatar.animate(tools.feed(chunked(samples, cues, 0.3)))]
    assert len(frames) == 30 * FPS
    result = viseme_accuracy(
        [f.image for f in frames], cues, avatar.layout, fps=FPS, lead=avatar.lead,
        rest=avatar.preview(), wide_open=avatar.render_state(FrameState(open=1.0)),
    )  # fmt: skip
    assert result.closures >= 30 and result.vowels >= 50
    assert result.closed_rate >= 0.9, (result.closed_rate, result.misses[:8])
    assert result.open_rate >= 0.9, (result.open_rate, result.misses[:8])


async def test_without_coarticulated_closures_the_check_fails(tools: type) -> None:
    """The check can fail: the same speech without cues (loudness only) misses closures."""
    samples, cues = synthetic_speech(10.0, seed=4)
    avatar = PortraitAvatar(fps=FPS, seed=2)
    bare = [AudioChunk(c.samples, RATE) for c in chunked(samples, cues, 0.3)]
    frames = [f async for f in avatar.animate(tools.feed(bare))]
    result = viseme_accuracy(
        [f.image for f in frames], cues, avatar.layout, fps=FPS, lead=avatar.lead,
        rest=avatar.preview(), wide_open=avatar.render_state(FrameState(open=1.0)),
    )  # fmt: skip
    assert result.closed_rate < 0.9


async def test_lower_lip_meets_the_teeth_on_f_and_v(tools: type) -> None:
    """On the host, an "f" shows the upper teeth on the lower lip: whitish pixels where the
    mouth is, and no dark cavity."""
    samples, cues = synthetic_speech(20.0, seed=5)
    avatar = PortraitAvatar(fps=FPS, seed=2, head_motion=False)
    frames = [f async for f in avatar.animate(tools.feed(chunked(samples, cues, 0.3)))]
    layout = avatar.layout
    x0, y0, x1, y1 = layout.mouth_box()
    rest = avatar.preview()
    base = dark_area(rest, layout)

    def white(img: np.ndarray) -> int:
        crop = img[y0:y1, x0:x1].astype(np.int16)
        return int((crop.min(axis=2) > 180).sum())

    teeth_frames = []
    for cue in cues:
        if cue.viseme == "FF" and cue.end - cue.start >= 0.06:
            k = int(0.5 * (cue.start - avatar.lead + cue.end) * FPS)
            teeth_frames.append(frames[k].image)
    assert len(teeth_frames) >= 8
    shows_teeth = [white(img) > white(rest) + 15 for img in teeth_frames]
    no_cavity = [dark_area(img, layout) - base < 40 for img in teeth_frames]
    assert np.mean(shows_teeth) >= 0.8, shows_teeth
    assert np.mean(no_cavity) >= 0.8, no_cavity
