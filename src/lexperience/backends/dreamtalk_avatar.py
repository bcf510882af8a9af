"""The ``dreamtalk`` avatar: DreamTalk run in-process on your GPU, streamed sentence by sentence.

DreamTalk (github.com/ali-vilab/dreamtalk, MIT code; research-only checkpoints given out by
request) turns speech into a talking-head video of a portrait: wav2vec2 audio features, a
diffusion model that samples 3DMM expression coefficients in a given speaking style, and a
PIRenderer-style generator that draws 256x256 frames. lexperience ships none of it: it imports
your checkout and loads your checkpoints, and makes it stream:

* the networks load once (:meth:`DreamTalkAvatar.load` / ``aopen``) and are shared by every
  avatar and conversation using the same checkout, checkpoints and device;
* the portrait crop and its tensor are cached per portrait, the style code per style clip;
* the speech is generated chunk by chunk (a sentence, at most ``max_chunk_seconds``) while later
  sentences are still being spoken, so the first frames come early; each chunk is sampled with
  one second of audio before it; its last frames are generated again with the next chunk: the
  three whose audio window reached past the chunk are replaced, the ``overlap_frames`` before
  them cross-faded, so the face does not jump between sentences;
* ``ddim_steps`` DDIM steps (10, as DreamTalk; 5 is about twice as fast), guidance skipped at
  ``cfg_scale=1.0`` (half the work), fp16 autocast on CUDA;
* frames come out through the :class:`~lexperience.protocols.Avatar` protocol at 25 fps with the
  shared frame accounting (``round(seconds * 25)`` frames per reply): audio and video never drift.

It also runs on the CPU (``device="cpu"``), slowly: good for checking a setup, not for live use.
Install with ``pip install "lexperience[dreamtalk]"`` (PyTorch: pick your CUDA build first).
See ``docs/backends/dreamtalk.md``.

>>> avatar = DreamTalkAvatar(checkout="~/dreamtalk", portrait="me.jpg")   # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import AsyncIterable, AsyncIterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .._aio import Channel, ChannelClosed, DeadlineExceeded, cancel_and_wait, wait_for
from .._optional import is_installed
from ..errors import ConfigurationError, InvalidInputError, MissingDependencyError
from ..media import Audio, AudioChunk, VideoFrame
from ..render.image import ImageSource, cv2_module
from ._dreamtalk_checkout import Checkout, import_checkout, locate_checkout
from ._dreamtalk_checkpoints import checkpoint_path
from ._dreamtalk_engine import ModelKey, Models, Stopped, get_models
from ._dreamtalk_inputs import (
    CROP_SIZE,
    FaceDetector,
    PoseSource,
    StyleSource,
    digest,
    portrait_crop,
    read_pose,
    read_style_clip,
    style_inputs,
)
from ._dreamtalk_timeline import (
    FPS,
    SAMPLES_PER_FRAME_16K,
    Chunk,
    ChunkPlanner,
    NoiseBank,
    Reply,
    Timeline,
    audio_windows,
    ddim_timesteps,
    lookahead_frames,
)
from ._dreamtalk_torch import AudioEncoder, Wav2Vec2Encoder, resolve_device, torch_module

__all__ = ["AudioEncoder", "DreamTalkAvatar", "DreamTalkOptions"]

log = logging.getLogger(__name__)

WAV2VEC2_NAME = "wav2vec2-large-xlsr-53-english"
_FIRST_BATCH = 4  # frames in a reply's first render batch


class DreamTalkOptions(BaseModel):
    """The tuning options of :class:`DreamTalkAvatar` (validated; see its docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    device: str = "auto"
    fp16: bool | None = None
    ddim_steps: int = Field(10, ge=1, le=1000)
    cfg_scale: float = Field(1.0, ge=0.0, le=10.0)
    crop: bool = True
    face_detector: Literal["opencv", "dlib"] = "opencv"
    size: int = Field(CROP_SIZE, ge=64, le=2048)
    overlap_frames: int = Field(3, ge=0, le=12)
    context_seconds: float = Field(1.0, ge=0.0, le=10.0)
    max_chunk_seconds: float = Field(6.0, ge=0.2, le=60.0)
    flush_after: float | None = Field(1.0, gt=0.0)
    render_batch: int = Field(16, ge=1, le=256)
    seed: int | None = None
    trust_checkpoints: bool = False


class DreamTalkAvatar:
    """A talking head drawn by DreamTalk on your GPU, streamed chunk by chunk.

    Args:
        checkout: your DreamTalk checkout (a clone of github.com/ali-vilab/dreamtalk). Default:
            ``$DREAMTALK_HOME``, else DreamTalk's folders found on ``sys.path`` (a packaged copy).
        portrait: the face to animate (path, encoded bytes or an RGB array). A
            :class:`Conversation` passes ``persona.portrait``. Required.
        style_clip: the speaking style: a ``.mat`` of 3DMM coefficients (or ``.txt`` / array of
            frames x 64). Default: the checkout's ``M030_front_neutral_level1_001.mat``.
        pose: the head motion: a DreamTalk pose ``.mat``, a ``(frames, 9)`` array, or
            ``"still"``. Default: the checkout's ``RichardShelby_front_neutral_level1_001.mat``
            (looped back and forth for long replies).
        denoising_checkpoint: default ``<checkout>/checkpoints/denoising_network.pth``.
        renderer_checkpoint: default ``<checkout>/checkpoints/renderer.pt``.
        wav2vec2: a local copy of ``jonatasgrosman/wav2vec2-large-xlsr-53-english`` (never
            downloaded). Default ``<checkout>/checkpoints/wav2vec2-large-xlsr-53-english``.
        audio_encoder: instead of wav2vec2, any :class:`AudioEncoder` (50 Hz, 1024-d features).
        device: ``"auto"`` (CUDA if PyTorch sees a GPU, else the CPU, with a warning),
            ``"cuda"``, ``"cuda:1"``, ``"cpu"``...
        fp16: fp16 autocast; default on for CUDA (not available on the CPU).
        ddim_steps: DDIM steps per chunk (10 as DreamTalk; 5 roughly halves the sampling time).
            Must divide DreamTalk's 1000 diffusion steps evenly (1, 2, 4, 5, 8, 10, 20, 25...).
        cfg_scale: classifier-free guidance scale (style intensity); 1.0 skips guidance.
        crop: crop the face out of the portrait (``False``: it already is a square face crop).
        face_detector: ``"opencv"`` (Haar cascades, converted to dlib's box) or ``"dlib"``.
        size: output frame side (DreamTalk draws 256; other sizes are resized).
        overlap_frames: frames cross-faded at each seam between chunks (``0``: none; the frames
            whose audio window reached past a chunk are regenerated in any case).
        context_seconds: audio before a chunk given to wav2vec2 as context.
        max_chunk_seconds: the longest chunk (a longer sentence is split).
        flush_after: generate the open chunk when no audio came for this long (``None``: wait).
        render_batch: frames rendered per renderer call (a reply's first 4 frames go alone).
        seed: makes replies reproducible (each :meth:`animate` call still differs).
        trust_checkpoints: allow checkpoints that hold Python objects besides tensors
            (unpickling can run code: only for files you trust).

    Raises:
        ConfigurationError: a bad option, a missing or wrong checkout, checkpoint, style clip or
            pose file; at :meth:`load`: no CUDA for ``device="cuda"``, checkpoints that do not
            match the checkout.
        InvalidInputError: the portrait is missing, not an image, or holds no face.
        MissingDependencyError: PyTorch, SciPy or OpenCV is not installed (``dreamtalk`` extra).
    """

    name = "dreamtalk"
    fps: float = float(FPS)

    def __init__(
        self,
        *,
        checkout: str | os.PathLike[str] | None = None,
        portrait: ImageSource | None = None,
        style_clip: StyleSource | None = None,
        pose: PoseSource | Literal["still"] | None = None,
        denoising_checkpoint: str | os.PathLike[str] | None = None,
        renderer_checkpoint: str | os.PathLike[str] | None = None,
        wav2vec2: str | os.PathLike[str] | None = None,
        audio_encoder: AudioEncoder | None = None,
        device: str = "auto",
        fp16: bool | None = None,
        ddim_steps: int = 10,
        cfg_scale: float = 1.0,
        crop: bool = True,
        face_detector: FaceDetector = "opencv",
        size: int = CROP_SIZE,
        overlap_frames: int = 3,
        context_seconds: float = 1.0,
        max_chunk_seconds: float = 6.0,
        flush_after: float | None = 1.0,
        render_batch: int = 16,
        seed: int | None = None,
        trust_checkpoints: bool = False,
    ) -> None:
        try:
            self.options = DreamTalkOptions(
                device=device, fp16=fp16, ddim_steps=ddim_steps, cfg_scale=cfg_scale, crop=crop,
                face_detector=face_detector, size=size, overlap_frames=overlap_frames,
                context_seconds=context_seconds, max_chunk_seconds=max_chunk_seconds,
                flush_after=flush_after, render_batch=render_batch, seed=seed,
                trust_checkpoints=trust_checkpoints,
            )  # fmt: skip
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
            )
            raise ConfigurationError(f"bad dreamtalk avatar options: {problems}") from None
        try:
            ddim_timesteps(1000, ddim_steps)  # DreamTalk's schedule; checked again at load
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if portrait is None:
            raise ConfigurationError(
                "the dreamtalk avatar needs a portrait: pass portrait='face.jpg' or set the "
                "persona's portrait (a frontal head-and-shoulders photo)"
            )
        if audio_encoder is not None and not isinstance(audio_encoder, AudioEncoder):
            raise ConfigurationError(
                "audio_encoder must have sample_rate, dim and __call__(samples) -> features"
            )
        for module in ("torch", "cv2", "scipy"):  # fail now, with the install hint, not at load
            if not is_installed(module):
                raise MissingDependencyError(
                    module=module, extra="dreamtalk", feature="the dreamtalk avatar"
                )
        self.checkout: Checkout = locate_checkout(checkout)
        ckpt = self.checkout.checkpoints
        self.denoising_checkpoint = checkpoint_path(
            denoising_checkpoint, ckpt / "denoising_network.pth", "denoising_checkpoint"
        )
        self.renderer_checkpoint = checkpoint_path(
            renderer_checkpoint, ckpt / "renderer.pt", "renderer_checkpoint"
        )
        self.wav2vec2 = (
            Path(wav2vec2).expanduser() if wav2vec2 is not None else ckpt / WAV2VEC2_NAME
        )
        self._encoder = audio_encoder
        self._style = read_style_clip(
            self._default(style_clip, self.checkout.sample_style, "style_clip")
        )
        self._style_key = digest(self._style)
        self.pose = read_pose(self._default(pose, self.checkout.sample_pose, "pose"))
        self._portrait_key, self._crop = portrait_crop(portrait, crop, face_detector)
        self._models: Models | None = None
        self._code: Any = None
        self._load_lock = threading.Lock()
        self._calls = 0

    @staticmethod
    def _default(value: Any, sample: Path, option: str) -> Any:
        if value is not None:
            return value
        if not sample.is_file():
            raise ConfigurationError(
                f"the checkout has no sample {option} ({sample}); pass {option}=... explicitly"
            )
        return sample

    def __repr__(self) -> str:
        state = f"loaded on {self._models.device}" if self._models else "not loaded"
        return (
            f"DreamTalkAvatar({self.checkout.root}, {self.options.ddim_steps} DDIM steps, {state})"
        )

    # -- loading ----------------------------------------------------------------------------
    @property
    def models(self) -> Models | None:
        """The loaded networks (shared with other avatars), or ``None`` before :meth:`load`."""
        return self._models

    def load(self) -> None:
        """Load the networks (once; blocking: seconds to a minute). ``aopen`` runs it in a thread."""
        with self._load_lock:
            if self._models is not None:
                return
            options = self.options
            torch = torch_module()
            device, fp16 = resolve_device(torch, options.device, options.fp16)
            modules = import_checkout(self.checkout)
            encoder = self._encoder
            if encoder is None:
                enc_id = str(self.wav2vec2.resolve())

                def factory() -> AudioEncoder:
                    return Wav2Vec2Encoder(self.wav2vec2, torch=torch, device=device, fp16=fp16)
            else:
                enc_id = f"custom:{id(encoder)}"
                fixed = encoder

                def factory() -> AudioEncoder:
                    return fixed

            key = ModelKey(
                checkout=self.checkout.root,
                denoising=ModelKey.file(self.denoising_checkpoint),
                renderer=ModelKey.file(self.renderer_checkpoint),
                encoder=enc_id,
                device=device,
                fp16=fp16,
            )
            models = get_models(
                key,
                lambda: Models(
                    modules,
                    denoising=self.denoising_checkpoint,
                    renderer=self.renderer_checkpoint,
                    renderer_conf=self.checkout.renderer_conf,
                    encoder=factory,
                    device=device,
                    fp16=fp16,
                    trust=options.trust_checkpoints,
                ),
            )
            try:
                ddim_timesteps(models.num_steps, options.ddim_steps)
            except ValueError as exc:
                raise ConfigurationError(str(exc)) from None
            clip, mask = style_inputs(self._style, models.layout.style_max_len)
            with models.lock:
                self._code = models.style_code(self._style_key, clip, mask)
                if options.cfg_scale != 1.0:
                    models.null_code()
                models.source(self._portrait_key, self._crop)
            self._models = models

    async def aopen(self) -> None:
        """Load the networks before the first reply (:class:`Conversation` calls this)."""
        await asyncio.to_thread(self.load)

    async def aclose(self) -> None:
        """Let go of the networks (freed once no other avatar uses them)."""
        with self._load_lock:
            self._models = None
            self._code = None

    def preview(self) -> np.ndarray:
        """The cropped portrait at ``size`` (RGB), e.g. for a UI before the first reply."""
        image: np.ndarray = self._resize(self._crop[None])[0]
        return image

    # -- the Avatar protocol ----------------------------------------------------------------
    async def animate(self, audio: AsyncIterable[AudioChunk]) -> AsyncIterator[VideoFrame]:
        """Yield 25 frames per second of ``audio``, chunk by chunk, numbered from 0.

        Frames come in bursts (a render batch at a time) as chunks are generated; a player
        should buffer them against their ``timestamp``. Closing the iterator stops the work
        at the next DDIM step or render batch.
        """
        if self._models is None:
            await asyncio.to_thread(self.load)
        models = self._models
        assert models is not None
        with self._load_lock:
            self._calls += 1
            call = self._calls
        seed = None if self.options.seed is None else [self.options.seed, call]
        reply = Reply(
            Timeline(self.pose, overlap=self.options.overlap_frames,
                     lookahead=lookahead_frames(models.win)),
            seed=seed, context=round(self.options.context_seconds * FPS),
        )  # fmt: skip
        inbox: Channel[AudioChunk] = Channel(1024)
        out: Channel[list[VideoFrame]] = Channel(2)
        stop = threading.Event()
        reader = asyncio.ensure_future(self._read(audio, inbox))
        worker = asyncio.ensure_future(self._work(models, reply, inbox, out, reader, stop))
        try:
            async for batch in out:
                for frame in batch:
                    yield frame
            await worker
            await reader
        finally:
            stop.set()
            inbox.close()
            out.close()
            await cancel_and_wait(reader, worker)

    async def _read(self, audio: AsyncIterable[AudioChunk], inbox: Channel[AudioChunk]) -> None:
        try:
            async for chunk in audio:
                if not isinstance(chunk, AudioChunk):
                    raise InvalidInputError(
                        f"the dreamtalk avatar animates AudioChunk objects, got {type(chunk).__name__}"
                    )
                if chunk.samples.size:
                    await inbox.send(chunk)
        finally:
            inbox.close()

    async def _work(
        self,
        models: Models,
        reply: Reply,
        inbox: Channel[AudioChunk],
        out: Channel[list[VideoFrame]],
        reader: asyncio.Future[None],
        stop: threading.Event,
    ) -> None:
        planner = ChunkPlanner(max_frames=round(self.options.max_chunk_seconds * FPS))
        ended = False
        try:
            while True:
                chunk = planner.pop()
                if chunk is not None:
                    await self._generate(models, reply, chunk, out, stop)
                    continue
                if ended:
                    break
                idle = planner.has_open or reply.timeline.final < len(reply.timeline)
                try:
                    item = await wait_for(inbox.recv(), self.options.flush_after if idle else None)
                except DeadlineExceeded:
                    if planner.has_open:
                        planner.close()  # the next sentence is slow to come: go on without it
                    else:
                        await self._emit(models, reply, reply.timeline.settle(end=True), out, stop)
                    continue
                except ChannelClosed:
                    if reader.done() and not reader.cancelled() and reader.exception() is not None:
                        raise reader.exception() from None  # type: ignore[misc]
                    planner.finish()
                    ended = True
                    continue
                planner.push(item)
            await self._emit(models, reply, reply.timeline.settle(end=True), out, stop)
        except (Stopped, ChannelClosed):
            pass  # the reply was abandoned
        finally:
            out.close()

    async def _generate(
        self,
        models: Models,
        reply: Reply,
        chunk: Chunk,
        out: Channel[list[VideoFrame]],
        stop: threading.Event,
    ) -> None:
        reply.add(chunk)
        start = reply.timeline.final  # regenerate the provisional tail with this chunk
        origin = max(0, start - reply.context)
        parts = [a for a in reply.audio[origin : chunk.end] if a is not None]
        samples = np.concatenate(parts) if parts else np.zeros(0, np.float32)
        count = chunk.end - start
        options = self.options

        def compute() -> np.ndarray:
            rate = models.encoder.sample_rate
            audio16 = Audio(samples, chunk.rate).resample(rate).samples
            need = SAMPLES_PER_FRAME_16K * rate // 16_000
            if audio16.shape[0] < need:  # wav2vec2 needs a few hundred samples at least
                audio16 = np.pad(audio16, (0, need - audio16.shape[0]))
            with models.lock:
                feats = models.features(audio16)
                windows = audio_windows(feats, start, count, origin, models.win)
                if reply.noise is None:
                    reply.noise = NoiseBank(models.face3d_dim, reply.seed)
                noise = reply.noise.rows(start, count)
                return models.sample(
                    windows, noise, self._code, steps=options.ddim_steps,
                    cfg_scale=options.cfg_scale, stop=stop,
                )  # fmt: skip

        exp = await asyncio.to_thread(compute)
        reply.timeline.add(start, exp)
        log.debug(
            "dreamtalk: frames %d-%d generated (%d regenerated)",
            start,
            chunk.end - 1,
            chunk.first - start,
        )
        await self._emit(models, reply, reply.timeline.settle(), out, stop)

    async def _emit(
        self,
        models: Models,
        reply: Reply,
        frames: range,
        out: Channel[list[VideoFrame]],
        stop: threading.Event,
    ) -> None:
        first = frames.start
        while first < frames.stop:
            # the reply's first frames go out in a small batch: they are what the viewer waits for
            step = (
                min(_FIRST_BATCH, self.options.render_batch)
                if first == 0
                else self.options.render_batch
            )
            batch = range(first, min(first + step, frames.stop))
            first = batch.stop
            driving = reply.timeline.driving(batch)

            def draw(driving: np.ndarray = driving) -> np.ndarray:
                if stop.is_set():
                    raise Stopped
                with models.lock:
                    source = models.source(self._portrait_key, self._crop)
                    images = models.render(source, driving)
                return self._resize(images)

            images = await asyncio.to_thread(draw)
            await out.send([VideoFrame(images[i], f, self.fps) for i, f in enumerate(batch)])

    def _resize(self, images: np.ndarray) -> np.ndarray:
        size = self.options.size
        if size == images.shape[1]:
            return images
        cv2 = cv2_module()
        interp = cv2.INTER_AREA if size < images.shape[1] else cv2.INTER_CUBIC
        return np.stack([cv2.resize(im, (size, size), interpolation=interp) for im in images])
