"""Lip-sync, measured on the rendered frames: the dark area of the open mouth follows the speech
energy of each frame's audio, the mouth is shut in silence, and visemes shape the lips."""

from __future__ import annotations

import numpy as np
import pytest

from lexperience.backends.portrait_avatar import PortraitAvatar
from lexperience.media import Audio, AudioChunk
from lexperience.render.rig import FrameState
from lexperience.visemes import VisemeCue

FPS = 25


def make_avatar(portrait: str, astronaut: np.ndarray, **kw: object) -> PortraitAvatar:
    return PortraitAvatar(astronaut if portrait == "astronaut" else None, fps=FPS, seed=5, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("portrait", ["builtin", "astronaut"])
@pytest.mark.parametrize("speech", ["piper", "fake"])
async def test_mouth_opening_correlates_with_speech_energy(
    portrait: str,
    speech: str,
    astronaut: np.ndarray,
    piper_speech: Audio,
    fake_chunks: list[AudioChunk],
    tools: type,
) -> None:
    if speech == "piper":  # real speech, no viseme cues: the envelope and spectrum drive it
        audio = piper_speech
        chunks = tools.split(audio, 4410)
    else:  # voice-like tones with character-derived viseme cues
        chunks = fake_chunks
        audio = Audio.concatenate([c.to_audio() for c in chunks])
    avatar = make_avatar(portrait, astronaut)
    frames = [f async for f in avatar.animate(tools.feed(chunks))]
    assert audio.duration > 5.0

    box = avatar.layout.mouth_box()
    dark = tools.dark_area(frames, box)
    rms = tools.frame_rms(audio, FPS, len(frames))
    r = float(np.corrcoef(dark, rms)[0, 1])
    assert r >= 0.7, f"mouth opening vs speech energy: Pearson r = {r:.3f}"

    # The mouth visibly opens: the loudest frames show far more dark pixels than the rest pose.
    rest = tools.dark_area([_still(avatar)], box)[0]
    loud = dark[rms >= np.percentile(rms, 80)]
    assert np.median(loud) > rest + 0.001 * avatar.size**2


def _still(avatar: PortraitAvatar) -> object:
    from lexperience.media import VideoFrame

    return VideoFrame(avatar.preview(), 0, avatar.fps)


@pytest.mark.parametrize("portrait", ["builtin", "astronaut"])
async def test_mouth_is_closed_during_silence(
    portrait: str, astronaut: np.ndarray, piper_speech: Audio, tools: type
) -> None:
    rate = piper_speech.sample_rate
    speech_a = piper_speech.slice(0.0, 2.0)
    speech_b = piper_speech.slice(2.0, 3.5)
    silence = Audio.silence(1.2, rate)
    audio = Audio.concatenate([speech_a, silence, speech_b])
    avatar = make_avatar(portrait, astronaut, head_motion=False)
    frames = [f async for f in avatar.animate(tools.feed(tools.split(audio, 2048)))]
    rest = avatar.preview()
    x0, y0, x1, y1 = avatar.layout.mouth_box()

    def mouth(img: np.ndarray) -> np.ndarray:
        return img[y0:y1, x0:x1].astype(np.int16)

    first_silent = round(2.0 * FPS) + 5  # the jaw takes ~0.2 s to close
    last_silent = round(3.2 * FPS) - 1
    speaking = tools.dark_area(frames[: round(2.0 * FPS)], (x0, y0, x1, y1), margin=0)
    assert speaking.max() > tools.dark_area([_still(avatar)], (x0, y0, x1, y1), margin=0)[0] + 50
    for frame in frames[first_silent : last_silent + 1]:
        # Closed means: the mouth region is the portrait at rest, to the pixel.
        assert np.abs(mouth(frame.image) - mouth(rest)).max() <= 1, frame.index


async def test_mouth_closes_in_silence_with_head_motion(piper_speech: Audio, tools: type) -> None:
    audio = Audio.concatenate([piper_speech.slice(0.0, 1.5), Audio.silence(1.0, 22_050)])
    avatar = PortraitAvatar(fps=FPS, seed=11)
    frames = [f async for f in avatar.animate(tools.feed(tools.split(audio, 4096)))]
    dark = tools.dark_area(frames, avatar.layout.mouth_box())
    silent = dark[round(1.5 * FPS) + 4 :]
    rest = tools.dark_area([_still(avatar)], avatar.layout.mouth_box())[0]
    assert dark[: round(1.5 * FPS)].max() > rest + 300
    assert silent.max() <= rest + 10


def _opening_width(img: np.ndarray, box: tuple[int, int, int, int]) -> int:
    x0, y0, x1, y1 = box
    gray = img[y0:y1, x0:x1].astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)
    cols = np.nonzero((gray < 50).sum(axis=0) >= 2)[0]
    return int(cols.max() - cols.min() + 1) if cols.size else 0


async def test_visemes_shape_the_lips(piper_speech: Audio, tools: type) -> None:
    """The same audio with "oo" cues gives a narrower opening than with "ee"-like cues."""
    clip = piper_speech.slice(0.5, 2.5)
    widths = {}
    for vis in ("ou", "E"):
        avatar = PortraitAvatar(fps=FPS, seed=1, head_motion=False, blink=False)
        cue = (VisemeCue(0.0, clip.duration, vis),)
        chunk = AudioChunk(clip.samples, clip.sample_rate, visemes=cue)
        frames = [f async for f in avatar.animate(tools.feed([chunk]))]
        box = avatar.layout.mouth_box()
        widths[vis] = np.median([_opening_width(f.image, box) for f in frames[10:]])
    assert widths["ou"] < 0.85 * widths["E"], widths


def test_open_mouth_is_dark_and_shows_teeth_on_the_host() -> None:
    avatar = PortraitAvatar(fps=FPS)
    m = avatar.layout.mouth
    img = avatar.render_state(FrameState(open=1.0))
    cx, cy = round(m.cx), round(m.cy)
    below = img[cy + 4 : cy + 12, cx - 5 : cx + 5].mean()  # inside the mouth, under the teeth
    above = img[cy - 3 : cy, cx - 5 : cx + 5].mean(axis=(0, 1))  # the upper teeth
    assert below < 60
    assert above.min() > 150  # whitish
