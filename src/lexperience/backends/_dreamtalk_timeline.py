"""The bookkeeping of one DreamTalk reply, in plain numpy (no torch): how the speech is cut into
chunks, which frames a chunk generates, its audio windows, the seams between chunks and the
renderer's coefficient windows.

:class:`ChunkPlanner` cuts the incoming speech into chunks of whole video frames, using the
frame accounting every avatar shares (:class:`~lexperience.framing.AudioFramer`: frame ``i``
covers the audio from ``round(i * rate / 25)`` on; a reply of ``d`` seconds gets ``round(d *
25)`` frames). A chunk ends where a sentence ends (``AudioChunk.sentence_index`` changes), when it
reaches ``max_frames``, when the caller closes it (no audio for a while) or when the speech ends,
so the first sentence is generated while the next ones are still being spoken.

DreamTalk works at 25 frames per second on wav2vec2 features at 50 Hz: frame ``f`` is driven by
the window of ``2 * win + 1`` features centred on feature ``2 * f`` (zeros beyond the audio).
The diffusion decoder treats every frame on its own given its window, so a reply can be generated
chunk by chunk. What differs at a chunk's end is its audio context: the last ``lookahead`` frames
of a chunk (those whose window reaches past the audio received so far: 3 for DreamTalk's window of
11 features) see zeros where the next sentence's audio will be. So a chunk's last ``lookahead +
overlap`` frames are kept back (provisional); the next chunk generates them again, with the audio
on both sides: its version replaces the ``lookahead`` frames outright and is cross-faded into the
``overlap`` frames before them (the old weight falls linearly to zero), so the face never jumps at
a seam, no frame shown was drawn from missing audio, and the frames already shown stay unchanged.

The renderer then draws frame ``f`` from the 3DMM coefficients of frames ``f - radius .. f +
radius`` (clamped to the frames known so far), expression from the diffusion, head pose from the
pose sequence (looped back and forth so that a long reply keeps moving without a jump).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..framing import AudioFramer
from ..media import AudioChunk

__all__ = [
    "FPS",
    "Chunk",
    "ChunkPlanner",
    "FEATURES_PER_FRAME",
    "RENDER_RADIUS",
    "SAMPLES_PER_FRAME_16K",
    "NoiseBank",
    "Reply",
    "Timeline",
    "audio_windows",
    "ddim_timesteps",
    "lookahead_frames",
    "pose_indices",
    "valid_ddim_steps",
]

#: DreamTalk's frame rate (its wav2vec2 features are at twice this rate).
FPS = 25
FEATURES_PER_FRAME = 2
#: 16 kHz samples per video frame (wav2vec2 hops 320 samples, two per frame).
SAMPLES_PER_FRAME_16K = 640
#: The renderer sees 2 * 13 + 1 = 27 frames of coefficients around the frame it draws.
RENDER_RADIUS = 13


def ddim_timesteps(num_steps: int, ddim_steps: int) -> np.ndarray:
    """The diffusion steps DreamTalk's DDIM sampler visits for ``ddim_steps`` steps, ascending.

    Every ``num_steps // ddim_steps``-th step from 1 (as DreamTalk does); ``ValueError`` when that
    does not give exactly ``ddim_steps`` steps (e.g. 3 or 7 steps of 1000).
    """
    if ddim_steps < 1 or ddim_steps > num_steps:
        raise ValueError(f"ddim_steps must be between 1 and {num_steps}")
    stride = num_steps // ddim_steps
    steps = np.arange(0, num_steps, stride) + 1
    if len(steps) != ddim_steps:
        raise ValueError(
            f"{ddim_steps} DDIM steps do not divide DreamTalk's {num_steps} diffusion steps "
            f"evenly; use one of {', '.join(map(str, valid_ddim_steps(num_steps, 50)))}"
        )
    return steps


def valid_ddim_steps(num_steps: int, up_to: int) -> list[int]:
    """Step counts up to ``up_to`` that :func:`ddim_timesteps` accepts."""
    return [n for n in range(1, up_to + 1) if len(range(0, num_steps, num_steps // n)) == n]


def lookahead_frames(win: int) -> int:
    """A chunk's last frames whose window of ``2 * win + 1`` features reaches past its audio."""
    return (win + 1) // 2


def audio_windows(
    features: np.ndarray, first: int, count: int, origin: int, win: int
) -> np.ndarray:
    """The feature windows of frames ``first .. first + count - 1``: ``(count, 2 * win + 1, C)``.

    ``features`` are 50 Hz features of audio that starts at frame ``origin``; frame ``f`` is centred
    on feature ``2 * (f - origin)``. Positions outside the features are zeros, as in DreamTalk.
    """
    n, dim = features.shape
    centres = FEATURES_PER_FRAME * (np.arange(first, first + count) - origin)
    index = centres[:, None] + np.arange(-win, win + 1)[None, :]
    inside = (index >= 0) & (index < n)
    out = np.zeros((count, 2 * win + 1, dim), dtype=np.float32)
    out[inside] = features[index[inside]]
    return out


def pose_indices(frames: np.ndarray, length: int) -> np.ndarray:
    """Rows of a ``length``-frame pose sequence for ``frames``: forwards, then backwards, again."""
    if length <= 1:
        return np.zeros_like(frames)
    period = 2 * (length - 1)
    phase = np.mod(frames, period)
    rows: np.ndarray = np.where(phase < length, phase, period - phase)
    return rows


class NoiseBank:
    """The diffusion's starting noise, one fixed row per frame of the reply.

    A frame that is generated twice (the overlap at a seam) starts from the same noise both times,
    so its two versions differ only by what the audio context changed.
    """

    def __init__(self, dim: int, seed: int | Sequence[int] | None) -> None:
        self.dim = dim
        self._rng = np.random.default_rng(seed)
        self._rows = np.zeros((0, dim), dtype=np.float32)

    def rows(self, first: int, count: int) -> np.ndarray:
        """Noise for frames ``first .. first + count - 1``: ``(count, dim)`` float32."""
        need = first + count - self._rows.shape[0]
        if need > 0:
            extra = self._rng.standard_normal((need, self.dim)).astype(np.float32)
            self._rows = np.concatenate([self._rows, extra])
        return self._rows[first : first + count]


class Timeline:
    """The expression coefficients of one reply, frame by frame.

    Frames ``[0, final)`` are final; ``[final, len)`` are the provisional tail that the next chunk
    regenerates. ``emitted`` counts the frames already rendered.

    Args:
        pose: ``(P, 9)`` head pose rows (angles, translation, crop), looped back and forth.
        overlap: frames cross-faded between two chunks' versions.
        lookahead: a chunk's last frames that saw missing audio; replaced by the next chunk.
        radius: the renderer's window half-width.
    """

    def __init__(
        self, pose: np.ndarray, *, overlap: int, lookahead: int = 0, radius: int = RENDER_RADIUS
    ) -> None:
        if pose.ndim != 2 or pose.shape[0] < 1:
            raise ValueError("pose must be a (frames, 9) array with at least one frame")
        self.pose = pose.astype(np.float32)
        self.overlap = overlap
        self.lookahead = lookahead
        self.radius = radius
        self.exp = np.zeros((0, 0), dtype=np.float32)
        self.final = 0
        self.emitted = 0
        self._clean = 0  # frames before this one saw all the audio their window needs

    def __len__(self) -> int:
        return int(self.exp.shape[0])

    @property
    def held(self) -> int:
        """Frames kept back at the end of each chunk."""
        return self.overlap + self.lookahead

    def add(self, first: int, exp: np.ndarray) -> None:
        """Coefficients for frames ``first .. first + len(exp) - 1``.

        ``first`` must lie in the provisional tail (``final <= first <= len``). Of the frames
        already there, those that saw missing audio are replaced; the others are cross-faded (the
        old version's weight falls linearly across them), so the seam is continuous on both sides.
        """
        if not self.final <= first <= len(self):
            raise ValueError(f"chunk starts at frame {first}; expected {self.final}..{len(self)}")
        exp = np.asarray(exp, dtype=np.float32)
        if len(self) == 0:
            self.exp = exp.copy()
        else:
            if exp.shape[1] != self.exp.shape[1]:
                raise ValueError("coefficient width changed between chunks")
            shared = min(len(self) - first, exp.shape[0])
            blend = max(0, min(shared, self._clean - first))
            if blend:
                w = (np.arange(1, blend + 1, dtype=np.float32) / (blend + 1))[:, None]
                old = self.exp[first : first + blend]
                self.exp[first : first + blend] = (1.0 - w) * old + w * exp[:blend]
            self.exp[first + blend : first + shared] = exp[blend:shared]
            self.exp = np.concatenate([self.exp, exp[shared:]])
        self._clean = max(self.final, len(self) - self.lookahead)

    def settle(self, *, end: bool = False) -> range:
        """Make frames final (all of them at the ``end``, else all but the :attr:`held` last)
        and return the frames that are final but not yet emitted (which the caller renders)."""
        target = len(self) if end else max(self.final, len(self) - self.held)
        self.final = target
        todo = range(self.emitted, self.final)
        self.emitted = self.final
        return todo

    def driving(self, frames: range) -> np.ndarray:
        """Renderer input for ``frames``: ``(n, C_exp + 9, 2 * radius + 1)`` float32.

        Each frame gets the coefficients (expression + pose) of the frames around it, clamped to
        the frames known so far (like DreamTalk at the ends of a clip).
        """
        n = len(self)
        if n == 0 or len(frames) == 0:
            return np.zeros((0, self.exp.shape[1] + 9, 2 * self.radius + 1), dtype=np.float32)
        f = np.asarray(frames)
        index = np.clip(f[:, None] + np.arange(-self.radius, self.radius + 1)[None, :], 0, n - 1)
        exp = self.exp[index]  # (n, window, C_exp)
        pose = self.pose[pose_indices(index, self.pose.shape[0])]  # (n, window, 9)
        return np.ascontiguousarray(np.concatenate([exp, pose], axis=2).transpose(0, 2, 1))


@dataclass
class Chunk:
    """Consecutive whole frames of one sentence: frames ``first .. first + len(audio) - 1`` and
    each frame's samples (at ``rate``)."""

    first: int
    audio: list[np.ndarray]
    rate: int
    sentence: int

    @property
    def end(self) -> int:
        return self.first + len(self.audio)


class ChunkPlanner:
    """Cuts a stream of :class:`AudioChunk` s into :class:`Chunk` s of whole frames."""

    def __init__(self, *, max_frames: int, fps: float = FPS) -> None:
        self.max_frames = max(1, max_frames)
        self.framer = AudioFramer(fps)
        self._open: list[np.ndarray] = []
        self._first = 0
        self._sentence = 0
        self._ready: deque[Chunk] = deque()

    @property
    def has_open(self) -> bool:
        """Whether frames are waiting in an unfinished chunk."""
        return bool(self._open)

    def push(self, chunk: AudioChunk) -> None:
        if self._open and chunk.sentence_index != self._sentence:
            self.close()
        self._sentence = chunk.sentence_index
        self._take(self.framer.push(chunk))

    def finish(self) -> None:
        """The speech ended: the rest (rounding included) becomes the last chunk."""
        self._take(self.framer.finish())
        self.close()

    def close(self) -> None:
        """End the open chunk now (if it has frames)."""
        if self._open:
            assert self.framer.rate is not None
            self._ready.append(Chunk(self._first, self._open, self.framer.rate, self._sentence))
            self._first += len(self._open)
            self._open = []

    def pop(self) -> Chunk | None:
        """The next finished chunk, in order, or ``None``."""
        return self._ready.popleft() if self._ready else None

    def _take(self, frames: list[tuple[int, np.ndarray]]) -> None:
        for index, samples in frames:
            assert index == self._first + len(self._open)
            self._open.append(samples)
            if len(self._open) >= self.max_frames:
                self.close()


class Reply:
    """State of one reply: its timeline, its noise and each frame's audio (kept while a later
    chunk may still need it as context)."""

    def __init__(
        self, timeline: Timeline, *, seed: int | Sequence[int] | None, context: int
    ) -> None:
        self.timeline = timeline
        self.seed = seed
        self.context = context
        self.noise: NoiseBank | None = None
        self.audio: list[np.ndarray | None] = []
        self._dropped = 0

    def add(self, chunk: Chunk) -> None:
        """Keep a new chunk's audio; drop what no later chunk can need."""
        assert chunk.first == len(self.audio)
        self.audio.extend(chunk.audio)
        keep = max(0, self.timeline.final - self.context)
        for i in range(self._dropped, keep):
            self.audio[i] = None
        self._dropped = max(self._dropped, keep)
