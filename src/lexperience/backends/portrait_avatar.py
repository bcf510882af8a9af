"""The ``portrait`` avatar: a still portrait animated live on the CPU, offline.

Give it a photo (or nothing, for the built-in drawn host) and a stream of speech; it yields video
frames at a constant frame rate as the audio arrives. With the TTS's viseme cues the lips take
the shapes of the sounds, blended into each other and a little ahead of them, as people's do
(bilabials shut the lips, "f" and "v" put the lower lip on the teeth); without cues the jaw
follows the loudness and the spectrum. The brows and small nods follow the accents of the speech,
the eyes blink and glance away now and then, the head sways a little. It is an animated 2-D
portrait (image warping), not a 3-D face. Frame ``i`` shows the audio from ``i / fps`` to
``(i + 1) / fps``, and a stream of ``d`` seconds gets exactly ``round(d * fps)`` frames, so sound
and picture never drift.

Needs ``pip install "lexperience[portrait]"`` (OpenCV for face finding and warping).

>>> avatar = PortraitAvatar()                         # doctest: +SKIP
>>> avatar = PortraitAvatar("me.jpg", size=512)      # doctest: +SKIP
>>> frames = avatar.idle_frames(4.0)                 # a seamless 4 s idle loop  # doctest: +SKIP

See ``docs/backends/portrait.md`` for how it works, its options, limits and speed.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import threading
from collections import OrderedDict, deque
from collections.abc import AsyncIterable, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..errors import ConfigurationError, InvalidInputError
from ..framing import AudioFramer
from ..media import Audio, AudioChunk, VideoFrame
from ..render.animation import Animator
from ..render.articulation import DEFAULT_LEAD, Articulator, MouthTarget
from ..render.face import MIN_FACE, FaceLayout, find_face, frame_portrait, locate_features
from ..render.host import draw_host
from ..render.image import MIN_SIDE, ImageSource, cv2_module, load_image
from ..render.rig import FaceRig, FrameState
from ..visemes import VisemeCue

__all__ = ["PortraitAvatar"]

log = logging.getLogger("lexperience.portrait")

PortraitInput = ImageSource

_CACHE_SIZE = 8
#: How long frames wait for the audio after them (viseme lookahead) before they are rendered
#: with what is known: a TTS between two sentences must not hold the picture back.
_HOLD_SECONDS = 0.05
_rig_cache: OrderedDict[tuple[object, ...], FaceRig] = OrderedDict()
_rig_lock = threading.Lock()


class _NoUsableFace(InvalidInputError):
    """The image was read but holds no face the avatar can animate (fallback is possible)."""


def _portrait_key(portrait: PortraitInput) -> tuple[bytes, str]:
    """A content hash of ``portrait`` (so the same photo reuses its rig) and its bytes' origin."""
    if isinstance(portrait, np.ndarray):
        h = hashlib.sha1(np.ascontiguousarray(portrait).tobytes())
        h.update(f"{portrait.shape}{portrait.dtype}".encode())
        return h.digest(), "array"
    if isinstance(portrait, (bytes, bytearray)):
        return hashlib.sha1(bytes(portrait)).digest(), "bytes"
    if isinstance(portrait, (str, os.PathLike)):
        path = os.fspath(portrait)
        try:
            st = os.stat(path)
        except OSError:
            raise InvalidInputError(f"portrait image not found: {path}") from None
        return hashlib.sha1(
            f"{os.path.abspath(path)}|{st.st_size}|{st.st_mtime_ns}".encode()
        ).digest(), "path"
    raise InvalidInputError(
        f"cannot use a {type(portrait).__name__} as a portrait; pass a path, bytes or an RGB array"
    )


def _build_photo_rig(
    portrait: PortraitInput, size: int, background: tuple[int, int, int], expressiveness: float
) -> FaceRig:
    image, name = load_image(portrait, background=background, min_side=1)
    h, w = image.shape[:2]
    if min(h, w) < MIN_SIDE:
        raise _NoUsableFace(
            f"the portrait image {name} is only {w}x{h} pixels; a face needs at least "
            f"{MIN_SIDE}x{MIN_SIDE} (a head-and-shoulders photo of 512 pixels or more works "
            "best). Use a larger photo, or fallback_to_builtin=True"
        )
    face = find_face(image)
    if face is None:
        raise _NoUsableFace(
            f"no face found in the portrait {name}: the portrait avatar needs a roughly frontal, "
            "upright, evenly lit face (a head-and-shoulders photo works best). Use another photo, "
            "or pass fallback_to_builtin=True to use the built-in host instead"
        )
    if face.w < MIN_FACE:
        raise _NoUsableFace(
            f"the face in the portrait {name} is only {face.w:.0f} pixels wide; at least "
            f"{MIN_FACE} are needed. Use a larger or closer photo, or fallback_to_builtin=True"
        )
    framed, box = frame_portrait(image, face, size)
    layout = locate_features(framed, box)
    return FaceRig(framed, layout, expressiveness=expressiveness)


def _get_rig(
    portrait: PortraitInput | None,
    size: int,
    background: tuple[int, int, int],
    expressiveness: float,
) -> FaceRig:
    """The rig of ``portrait`` at ``size``, built once and cached (LRU of 8)."""
    if portrait is None:
        key: tuple[object, ...] = ("builtin", size, expressiveness)
    else:
        digest, kind = _portrait_key(portrait)
        key = (kind, digest, size, background, expressiveness)
    with _rig_lock:
        rig = _rig_cache.get(key)
        if rig is not None:
            _rig_cache.move_to_end(key)
            return rig
    if portrait is None:
        image, layout = draw_host(size)
        rig = FaceRig(image, layout, teeth=True, expressiveness=expressiveness)
    else:
        rig = _build_photo_rig(portrait, size, background, expressiveness)
    with _rig_lock:
        _rig_cache[key] = rig
        while len(_rig_cache) > _CACHE_SIZE:
            _rig_cache.popitem(last=False)
    return rig


@dataclass
class _Job:
    """One frame to render: its index, its audio, and with viseme cues its mouth target and the
    audio of the moment it articulates."""

    index: int
    samples: np.ndarray
    target: MouthTarget | None = None
    ahead: np.ndarray | None = None


class _Stream:
    """One :meth:`PortraitAvatar.animate` call: :class:`~lexperience.framing.AudioFramer`'s frame
    accounting (shared with every avatar) plus the TTS's viseme cues. No I/O, no threads.

    With cues, a frame is released once the audio (and so the cues) a little past it has arrived
    (:attr:`Articulator.lookahead`): its mouth leads the sound and blends into what comes next.
    :meth:`flush` releases the held frames early (the audio stalled); :meth:`finish` at the end.
    """

    def __init__(self, fps: float, lead: float) -> None:
        self.fps = fps
        self.framer = AudioFramer(fps)
        self.articulator = Articulator(fps, lead=lead)
        self._held: deque[tuple[int, np.ndarray]] = deque()

    @property
    def rate(self) -> int | None:
        return self.framer.rate

    @property
    def holding(self) -> bool:
        """Whether frames wait for more audio."""
        return bool(self._held)

    def push(self, chunk: AudioChunk) -> list[_Job]:
        if not isinstance(chunk, AudioChunk):
            raise InvalidInputError(
                f"the portrait avatar animates AudioChunk objects, got {type(chunk).__name__}"
            )
        if chunk.samples.size == 0:
            return []
        start = self.framer.received_seconds
        self.articulator.add(cue.shifted(start) for cue in chunk.visemes)
        self._held.extend(self.framer.push(chunk))
        return self._release(self.framer.received_seconds)

    def flush(self) -> list[_Job]:
        """Release every held frame now, with the cues known so far."""
        return self._release(None)

    def finish(self) -> list[_Job]:
        self._held.extend(self.framer.finish())
        return self._release(None)

    def _release(self, received: float | None) -> list[_Job]:
        art = self.articulator
        wait = art.lookahead if art else 0.0
        jobs: list[_Job] = []
        while self._held:
            index, samples = self._held[0]
            if received is not None and (index + 1) / self.fps + wait > received + 1e-9:
                break
            self._held.popleft()
            if not art:
                jobs.append(_Job(index, samples))
                continue
            jobs.append(_Job(index, samples, art.target(index), self._ahead(samples)))
        if jobs and art:
            art.forget_before(jobs[-1].index / self.fps)
        return jobs

    def _ahead(self, own: np.ndarray) -> np.ndarray:
        """The audio ``lead`` seconds after the start of the frame just released (whose samples
        are ``own``), one frame long, from the frames still held (silence past the end)."""
        rate = self.rate or 1
        offset = round(self.articulator.lead * rate)
        length = max(1, own.shape[0])
        parts = [own]
        have = own.shape[0]
        for _, samples in self._held:
            if have >= offset + length:
                break
            parts.append(samples)
            have += samples.shape[0]
        joined = np.concatenate(parts) if len(parts) > 1 else own
        window = joined[offset : offset + length]
        if window.shape[0] < length:
            window = np.concatenate([window, np.zeros(length - window.shape[0], np.float32)])
        return window


class PortraitAvatar:
    """A talking portrait on the CPU: a photo or the built-in drawn host, lip-synced live.

    Args:
        portrait: the face to animate: an image path, encoded image bytes or an RGB array
            (grayscale, RGBA, 16-bit, CMYK JPEGs are fine; huge images are downscaled).
            ``None`` uses the built-in host, a fictional character drawn by code.
        fps: frames per second of the video.
        size: the side of the square output frames, in pixels (64 to 2048).
        fallback_to_builtin: when the photo holds no usable face (none found, too small), use
            the built-in host instead of raising :class:`InvalidInputError`.
        blink: blink at natural random intervals.
        head_motion: sway the head slightly, and nod on accents and at the ends of phrases.
        gaze: glance away now and then, and back.
        brows: raise the brows on accents of the speech.
        lead: how far the mouth leads the sound when the TTS gives viseme cues (seconds, 0 to
            0.2; people's lips lead by about 60-100 ms).
        seed: makes blinks and sway reproducible (each ``animate`` call still differs from the
            previous one); ``None`` for fresh randomness.
        expressiveness: scales the jaw opening (1.0 natural).
        background: the colour transparent parts of a portrait are composited on.
        batch_frames: frames rendered per worker-thread call after the first frame.

    Attributes:
        fps: frames per second.
        size: output side in pixels.
        layout: where the face, eyes and mouth are in the output frames.
        source: ``"builtin"`` or ``"photo"``.
        fallback_reason: why the built-in host is used instead of the photo, else ``None``.

    Raises:
        InvalidInputError: the portrait is missing, not an image, too small, or holds no face
            (without ``fallback_to_builtin``).
        MissingDependencyError: OpenCV is not installed (the ``portrait`` extra).
    """

    name = "portrait"

    def __init__(
        self,
        portrait: PortraitInput | None = None,
        *,
        fps: float = 25.0,
        size: int = 512,
        fallback_to_builtin: bool = False,
        blink: bool = True,
        head_motion: bool = True,
        gaze: bool = True,
        brows: bool = True,
        lead: float = DEFAULT_LEAD,
        seed: int | None = None,
        expressiveness: float = 1.0,
        background: tuple[int, int, int] = (236, 236, 236),
        batch_frames: int = 8,
    ) -> None:
        if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 1 <= fps <= 120:
            raise ConfigurationError(f"fps must be a number from 1 to 120, got {fps!r}")
        if isinstance(size, bool) or not isinstance(size, int) or not 64 <= size <= 2048:
            raise ConfigurationError(f"size must be an integer from 64 to 2048, got {size!r}")
        if not 0.0 <= expressiveness <= 2.0:
            raise ConfigurationError("expressiveness must be between 0 and 2")
        if batch_frames < 1:
            raise ConfigurationError("batch_frames must be at least 1")
        if isinstance(lead, bool) or not isinstance(lead, (int, float)) or not 0 <= lead <= 0.2:
            raise ConfigurationError(
                f"lead must be a number of seconds from 0 to 0.2, got {lead!r}"
            )
        cv2_module()  # fail early, with the install hint, when OpenCV is missing
        self.fps = float(fps)
        self.size = size
        self.blink = blink
        self.head_motion = head_motion
        self.gaze = gaze
        self.brows = brows
        self.lead = float(lead)
        self.seed = seed
        self.expressiveness = float(expressiveness)
        self.batch_frames = int(batch_frames)
        self.fallback_reason: str | None = None
        self.source: Literal["builtin", "photo"] = "builtin" if portrait is None else "photo"
        if len(background) != 3:
            raise ConfigurationError("background must be an (r, g, b) tuple")
        bg = (int(background[0]), int(background[1]), int(background[2]))
        try:
            self._rig = _get_rig(portrait, size, bg, self.expressiveness)
        except _NoUsableFace as exc:
            if not fallback_to_builtin:
                raise InvalidInputError(str(exc)) from None
            log.warning("%s; using the built-in host", exc)
            self.fallback_reason = str(exc)
            self.source = "builtin"
            self._rig = _get_rig(None, size, bg, self.expressiveness)
        self._calls = 0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"PortraitAvatar({self.source}, {self.size}x{self.size} @ {self.fps:g} fps)"

    # -- information ----------------------------------------------------------------------------
    @property
    def layout(self) -> FaceLayout:
        """Where the face, eyes and mouth are in the output frames (pixels)."""
        return self._rig.layout

    @property
    def fell_back(self) -> bool:
        """Whether the built-in host replaced a photo without a usable face."""
        return self.fallback_reason is not None

    def preview(self) -> np.ndarray:
        """The portrait at rest (mouth closed, eyes open), ``size x size x 3`` RGB."""
        return self._rig.render(FrameState())

    def render_state(self, state: FrameState) -> np.ndarray:
        """One frame in an explicit :class:`~lexperience.render.rig.FrameState` (for UIs, tests)."""
        return self._rig.render(state)

    # -- animation ------------------------------------------------------------------------------
    def _animator(
        self, loop_seconds: float | None = None, rng: np.random.Generator | None = None
    ) -> Animator:
        """A new animator; without ``rng``, the next one of this avatar's seeded sequence (one
        per call, so a seeded avatar gives the same frames run after run)."""
        if rng is None:
            with self._lock:
                self._calls += 1
                call = self._calls
            rng = np.random.default_rng(None if self.seed is None else [self.seed, call])
        return Animator(
            self.fps,
            motion_scale=0.012 * self._rig.layout.face.w,
            rng=rng,
            blink=self.blink,
            head_motion=self.head_motion,
            gaze=self.gaze,
            brows=self.brows,
            expressiveness=1.0,
            loop_seconds=loop_seconds,
        )

    async def aopen(self) -> None:
        """Render three frames of a short tone in a worker thread, so that the first reply does
        not pay for first-use costs (about 15 ms of its first frame on a 2-core CPU).
        :class:`Conversation` calls this once; the seeded sequence of replies is unchanged."""
        await asyncio.to_thread(self._warm)

    def _warm(self) -> None:
        rate = 16_000
        t = np.arange(round(3 * rate / self.fps)) / rate  # three frames' worth
        tone = Audio((0.2 * np.sin(2 * np.pi * 180.0 * t)).astype(np.float32), rate)
        self._render_clip(self._animator(rng=np.random.default_rng(0)), tone)

    def _render(self, animator: Animator, rate: int, jobs: list[_Job]) -> list[VideoFrame]:
        frames = []
        for job in jobs:
            state = animator.state(job.index, job.samples, rate, job.target, job.ahead)
            frames.append(VideoFrame(self._rig.render(state), job.index, self.fps))
        return frames

    async def animate(self, audio: AsyncIterable[AudioChunk]) -> AsyncIterator[VideoFrame]:
        """Yield frames for ``audio`` as it arrives, numbered from 0.

        Rendering runs ahead of the consumer in a background task (at most two batches), each
        batch in a worker thread, so the event loop stays free and a consumer that encodes or
        sends frames overlaps with the rendering. The first frame is rendered alone as soon as
        one frame of audio is in; later ones in batches of ``batch_frames``. Closing the
        iterator stops the work at the next batch.
        """
        animator = self._animator()
        stream = _Stream(self.fps, self.lead)
        queue: asyncio.Queue[list[VideoFrame] | BaseException | None] = asyncio.Queue(maxsize=2)

        async def render(jobs: list[_Job]) -> None:
            pos = 0
            while pos < len(jobs):
                n = 1 if jobs[pos].index == 0 else self.batch_frames
                batch = jobs[pos : pos + n]
                pos += len(batch)
                assert stream.rate is not None
                frames = await asyncio.to_thread(self._render, animator, stream.rate, batch)
                await queue.put(frames)

        async def produce() -> None:
            source = aiter(audio)
            pending: asyncio.Future[Any] | None = None
            try:
                while True:
                    pending = asyncio.ensure_future(anext(source))
                    if stream.holding:
                        # Frames wait for the audio just after them; if it does not come soon
                        # (the TTS is between sentences), render them with what is known.
                        done, _ = await asyncio.wait({pending}, timeout=_HOLD_SECONDS)
                        if not done:
                            await render(stream.flush())
                    try:
                        chunk = await pending
                    except StopAsyncIteration:
                        break
                    finally:
                        pending = None
                    await render(stream.push(chunk))
                await render(stream.finish())
                await queue.put(None)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # handed to the consumer, raised there
                await queue.put(exc)
            finally:
                if pending is not None and not pending.done():
                    pending.cancel()
                    await asyncio.gather(pending, return_exceptions=True)

        producer = asyncio.ensure_future(produce())
        try:
            while True:
                item = await queue.get()
                if item is None:
                    return
                if isinstance(item, BaseException):
                    raise item
                for frame in item:
                    yield frame
        finally:
            if not producer.done():
                producer.cancel()
            await asyncio.gather(producer, return_exceptions=True)

    def render_audio(
        self, audio: Audio, *, visemes: tuple[VisemeCue, ...] | list[VisemeCue] = ()
    ) -> list[VideoFrame]:
        """All frames for a whole clip at once (blocking; for scripts and offline rendering).

        ``visemes`` are optional cues with times from the start of ``audio``.
        """
        return self._render_clip(self._animator(), audio, visemes)

    def _render_clip(
        self, animator: Animator, audio: Audio, visemes: Sequence[VisemeCue] = ()
    ) -> list[VideoFrame]:
        stream = _Stream(self.fps, self.lead)
        chunk = AudioChunk(audio.samples, audio.sample_rate, visemes=tuple(visemes))
        jobs = stream.push(chunk) + stream.finish()
        if stream.rate is None:
            return []
        return self._render(animator, stream.rate, jobs)

    def idle_frames(
        self, seconds: float = 4.0, *, loop: bool = True, start_index: int = 0
    ) -> list[VideoFrame]:
        """Frames of the avatar listening (mouth closed, blinking, swaying), for UIs to show
        between replies.

        With ``loop=True`` the clip repeats seamlessly: the sway is periodic over ``seconds``
        and no blink straddles the loop point; it starts (and ends) at the rest pose, like every
        reply. Blocking; run it in a thread from async code.
        """
        if not 0 < seconds <= 600:
            raise InvalidInputError("idle_frames needs 0 < seconds <= 600")
        n = max(1, round(seconds * self.fps))
        animator = self._animator(loop_seconds=n / self.fps if loop else None)
        return [
            VideoFrame(self._rig.render(animator.idle_state(i)), start_index + i, self.fps)
            for i in range(n)
        ]
