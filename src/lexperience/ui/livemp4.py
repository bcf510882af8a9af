"""A reply as one growing, fragmented MP4: :class:`LiveMp4Encoder`.

Browsers play a fragmented MP4 (an ``ftyp`` + ``moov`` init segment, then ``moof`` + ``mdat``
fragments) through Media Source Extensions while it is still being written. The encoder turns a
turn's :class:`~lexperience.media.AudioChunk` s and :class:`~lexperience.media.VideoFrame` s into
exactly that, fragment by fragment: H.264 (x264 ``zerolatency``: no B-frames, no look-ahead, so a
frame in is a packet out) and AAC, cut into fragments one video frame long (``frag_duration``;
``frag_every_frame`` would be shorter still but writes wrong sample times), so the bytes of a
frame leave the encoder with it rather than at the next keyframe or the end of a sentence.

The timeline is one piece: audio ``pts`` count samples from 0, video ``pts`` count frames. A
fragmented MP4 has no edit list to hide the AAC encoder's priming samples, so the muxer shifts
both tracks by the priming (1024 samples, ~46 ms at 22.05 kHz) and A/V stay in sync;
:attr:`LiveMp4Encoder.start_offset` is that shift, so the reply position the listener heard is
the media element's ``currentTime`` minus it (what :meth:`~lexperience.Conversation.interrupt`
wants as ``played_seconds``).

Without an avatar (``fps=None``) the file holds audio only. Encoding is synchronous (a few
milliseconds a frame): call it from a worker thread. The finished bytes are also a valid MP4 file
(players read fragmented MP4 like any other), kept for replay.
"""

from __future__ import annotations

import logging
from fractions import Fraction
from typing import Any

import numpy as np

from .._optional import require
from ..errors import InvalidInputError
from ..media import AudioChunk, VideoFrame
from ..output.mp4 import AI_GENERATED_TAG

__all__ = ["AUDIO_CODEC", "LiveMp4Encoder"]

log = logging.getLogger(__name__)

#: The RFC 6381 codec of the audio track (AAC-LC).
AUDIO_CODEC = "mp4a.40.2"
_AAC_FRAME = 1024
_MOVFLAGS = "empty_moov+default_base_moof+use_metadata_tags"
_AUDIO_ONLY_FRAGMENT_S = 0.1


class _Bytes:
    """The file object PyAV writes into: collects what the muxer writes until taken."""

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self._position = 0

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self._parts.append(chunk)
        self._position += len(chunk)
        return len(chunk)

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return False

    def seek(self, offset: int, whence: int = 0) -> int:
        # a fragmented MP4 with an empty moov is written front to back; the muxer never seeks
        raise OSError("a live MP4 stream cannot seek")

    def flush(self) -> None:
        return None

    def take(self) -> bytes:
        data = b"".join(self._parts)
        self._parts.clear()
        return data


class LiveMp4Encoder:
    """Encode a reply into fragmented MP4 bytes as its audio and frames arrive.

    Args:
        fps: the avatar's frame rate; ``None`` for audio only.
        ai_generated_tag: write the "AI-generated" metadata tag into the file.
        crf: H.264 quality (lower is better and bigger).
        preset: x264 speed preset.
        audio_bitrate: AAC bit rate.

    Each ``add_*`` returns the bytes the muxer finished (possibly none); :meth:`close` returns the
    rest. Frames must come in index order; audio may run ahead of the frames (the muxer
    interleaves). :attr:`mime_type` names the codecs once the init segment is written.
    """

    def __init__(
        self,
        *,
        fps: float | None,
        ai_generated_tag: bool = True,
        crf: int = 23,
        preset: str = "veryfast",
        audio_bitrate: int = 96_000,
    ) -> None:
        self._av: Any = require("av", "ui", feature="streaming the reply to the browser")
        if fps is not None and fps <= 0:
            raise InvalidInputError(f"fps must be positive, got {fps}")
        self.fps = Fraction(fps).limit_denominator(1001) if fps is not None else None
        self._tag = ai_generated_tag
        self._crf, self._preset, self._bitrate = crf, preset, audio_bitrate
        self._out = _Bytes()
        self._container: Any = None
        self._video: Any = None
        self._audio: Any = None
        self.sample_rate: int | None = None
        self._size: tuple[int, int] | None = None
        self._pending = np.zeros(0, dtype=np.float32)  # audio not yet encoded
        self._held: list[VideoFrame] = []  # frames that came before any audio
        self._n_frames = 0
        self._n_samples = 0
        self.mime_type: str | None = None
        #: Seconds of media before reply position 0 (the AAC priming the muxer shifted in).
        self.start_offset = 0.0
        self._first_pts: dict[str, float] = {}
        self._closed = False

    # -- input ----------------------------------------------------------------------------------
    def add_audio(self, chunk: AudioChunk) -> bytes:
        """Add reply audio (mono; later chunks at another rate are resampled)."""
        self._check_open()
        if chunk.samples.size == 0:
            return b""
        if self.sample_rate is None:
            self.sample_rate = chunk.sample_rate
        samples = chunk.samples
        if chunk.sample_rate != self.sample_rate:
            samples = chunk.to_audio().resample(self.sample_rate).samples
        self._pending = np.concatenate([self._pending, samples]) if self._pending.size else samples
        if self._container is None and self.fps is None:
            self._open(None)
        if self._held and self._container is None:
            held, self._held = self._held, []
            self._open(held[0])
            for frame in held:
                self._encode_frame(frame)
        if self._container is not None:
            self._drain_audio(final=False)
        return self._out.take()

    def add_frame(self, frame: VideoFrame) -> bytes:
        """Add the next video frame (ignored for an audio-only stream)."""
        self._check_open()
        if self.fps is None:
            return b""
        if frame.index != self._n_frames + len(self._held):
            raise InvalidInputError(
                f"frames must arrive in order: expected frame {self._n_frames + len(self._held)}, "
                f"got {frame.index}"
            )
        if self._container is None:
            if self.sample_rate is None:
                self._held.append(frame)  # the audio stream's rate is not known yet
                return b""
            self._open(frame)
        self._encode_frame(frame)
        if self._n_frames == 1:
            self._drain_audio(final=False)  # audio that came before the first frame
        return self._out.take()

    def add_event(self, event: object) -> bytes:
        """Add a turn event: ``AudioEvent`` and ``VideoEvent`` are used, others ignored."""
        from ..events import AudioEvent, VideoEvent

        if isinstance(event, AudioEvent):
            return self.add_audio(event.chunk)
        if isinstance(event, VideoEvent):
            return self.add_frame(event.frame)
        return b""

    # -- the container --------------------------------------------------------------------------
    def _check_open(self) -> None:
        if self._closed:
            raise InvalidInputError("this LiveMp4Encoder is closed")

    def _open(self, first: VideoFrame | None) -> None:
        av = self._av
        fragment = (
            1.0 / float(self.fps) if first is not None and self.fps else _AUDIO_ONLY_FRAGMENT_S
        )
        options = {"movflags": _MOVFLAGS, "frag_duration": str(round(fragment * 1e6))}
        container = av.open(self._out, mode="w", format="mp4", options=options)
        self._container = container
        if self._tag:
            for key, value in AI_GENERATED_TAG.items():
                container.metadata[key] = value
        assert self.sample_rate is not None
        audio = container.add_stream("aac", rate=self.sample_rate)
        audio.bit_rate = self._bitrate
        audio.layout = "mono"
        audio.time_base = Fraction(1, self.sample_rate)
        self._audio = audio
        if first is not None:
            assert self.fps is not None
            w, h = first.width, first.height
            self._size = (w + (w & 1), h + (h & 1))
            video = container.add_stream("libx264", rate=self.fps)
            video.width, video.height = self._size
            video.pix_fmt = "yuv420p"
            video.time_base = Fraction(1) / self.fps
            keyframe_every = max(1, round(float(self.fps) * 2))
            video.options = {
                "crf": str(self._crf),
                "preset": self._preset,
                "tune": "zerolatency",
                "g": str(keyframe_every),
            }
            self._video = video

    def _codecs(self) -> str:
        """The RFC 6381 codecs of the file (from the H.264 ``avcC`` record)."""
        if self._video is None:
            return AUDIO_CODEC
        return (
            f"avc1.{_avc_profile(bytes(self._video.codec_context.extradata or b''))}, {AUDIO_CODEC}"
        )

    def _encode_frame(self, frame: VideoFrame) -> None:
        assert self._size is not None and self.fps is not None
        image = frame.image
        w, h = frame.width, frame.height
        if (w + (w & 1), h + (h & 1)) != self._size:
            raise InvalidInputError(
                f"frame {frame.index} is {w}x{h}; earlier frames were "
                f"{self._size[0]}x{self._size[1]}"
            )
        if (w, h) != self._size:
            image = np.pad(image, ((0, self._size[1] - h), (0, self._size[0] - w), (0, 0)), "edge")
        vf = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
        vf.pts = self._n_frames
        vf.time_base = Fraction(1) / self.fps
        self._n_frames += 1
        self._mux(self._video.encode(vf))

    def _drain_audio(self, *, final: bool) -> None:
        while self._pending.shape[0] >= _AAC_FRAME:
            self._encode_audio(self._pending[:_AAC_FRAME])
            self._pending = self._pending[_AAC_FRAME:]
        if final and self._pending.size:
            self._encode_audio(self._pending)
            self._pending = np.zeros(0, dtype=np.float32)

    def _encode_audio(self, block: np.ndarray) -> None:
        assert self.sample_rate is not None
        af = self._av.AudioFrame.from_ndarray(
            np.clip(block, -1, 1).reshape(1, -1).astype(np.float32), format="flt", layout="mono"
        )
        af.sample_rate = self.sample_rate
        af.pts = self._n_samples
        af.time_base = Fraction(1, self.sample_rate)
        self._n_samples += int(block.shape[0])
        self._mux(self._audio.encode(af))

    def _mux(self, packets: Any) -> None:
        for packet in packets:
            kind = packet.stream.type
            if kind not in self._first_pts and packet.pts is not None:
                self._first_pts[kind] = float(packet.pts * packet.time_base)
                self.start_offset = max(0.0, -min(self._first_pts.values()))
            self._container.mux(packet)
        if self.mime_type is None and self._out.tell():
            self.mime_type = ('video/mp4; codecs="{}"' if self._video is not None else
                              'audio/mp4; codecs="{}"').format(self._codecs())  # fmt: skip

    # -- ending ---------------------------------------------------------------------------------
    @property
    def frames(self) -> int:
        """Video frames encoded so far."""
        return self._n_frames

    @property
    def audio_seconds(self) -> float:
        """Seconds of audio encoded so far."""
        return self._n_samples / self.sample_rate if self.sample_rate else 0.0

    def close(self) -> bytes:
        """Flush the encoders and finish the stream; returns the last bytes."""
        if self._closed:
            return b""
        self._closed = True
        if self._container is None:
            return b""  # nothing was ever added
        try:
            self._drain_audio(final=True)
            self._mux(self._audio.encode(None))
            if self._video is not None:
                self._mux(self._video.encode(None))
        finally:
            self._container.close()
        return self._out.take()

    def abort(self) -> None:
        """Stop without flushing (after an error or an interruption); never raises."""
        if self._closed:
            return
        self._closed = True
        if self._container is not None:
            try:
                self._container.close()
            except Exception as exc:  # the stream is being dropped: the original cause matters
                log.debug("closing an aborted live MP4 failed: %s", exc)


def _avc_profile(extradata: bytes) -> str:
    """``PPCCLL`` (profile, constraints, level) of the H.264 stream, from an ``avcC`` record or
    the Annex B SPS x264 gives; a Constrained Baseline 3.0 string if neither is there."""
    if len(extradata) >= 4 and extradata[0] == 1:
        return extradata[1:4].hex().upper()
    i = extradata.find(b"\x00\x00\x01")
    while i != -1 and i + 6 < len(extradata):
        if extradata[i + 3] & 0x1F == 7:  # the sequence parameter set
            return extradata[i + 4 : i + 7].hex().upper()
        i = extradata.find(b"\x00\x00\x01", i + 3)
    return "42E01E"
