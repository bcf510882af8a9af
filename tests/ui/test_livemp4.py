"""The live fragmented MP4 encoder: bytes flow while the reply is made, and decode back right."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest

from lexperience.errors import InvalidInputError
from lexperience.media import AudioChunk, VideoFrame
from lexperience.testing.fakes import speech_like
from lexperience.ui.livemp4 import LiveMp4Encoder, _avc_profile

RATE, FPS = 22_050, 25


def _reply(seconds_text: str = "a short reply that lasts a couple of seconds") -> np.ndarray:
    samples, _ = speech_like(seconds_text, RATE)
    return samples


def _boxes(data: bytes) -> list[str]:
    """The top-level MP4 boxes of ``data``."""
    names, at = [], 0
    while at + 8 <= len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        names.append(data[at + 4 : at + 8].decode("latin-1"))
        if size < 8:
            break
        at += size
    return names


def _feed(encoder: LiveMp4Encoder, samples: np.ndarray, *, video: bool = True) -> list[bytes]:
    """Audio in 0.1 s chunks, each followed by the frames it covers (as the pipeline does)."""
    out, frame, step = [], 0, RATE // 10
    for start in range(0, samples.shape[0], step):
        out.append(encoder.add_audio(AudioChunk(samples[start : start + step], RATE)))
        covered = round(min(samples.shape[0], start + step) / RATE * FPS)
        while video and frame < covered:
            image = np.full((64, 80, 3), (frame * 7) % 256, dtype=np.uint8)
            out.append(encoder.add_frame(VideoFrame(image, frame, FPS)))
            frame += 1
    return out


def test_fragments_leave_the_encoder_while_the_reply_is_still_coming() -> None:
    encoder = LiveMp4Encoder(fps=FPS)
    samples = _reply()
    parts = _feed(encoder, samples[: RATE // 2])  # the first half second only
    early = b"".join(parts)
    # the init segment and media fragments exist before the rest of the reply was even added
    assert _boxes(early)[:2] == ["ftyp", "moov"]
    assert "moof" in _boxes(early) and "mdat" in _boxes(early)
    assert encoder.mime_type is not None and encoder.mime_type.startswith(
        'video/mp4; codecs="avc1.'
    )
    assert encoder.mime_type.endswith('mp4a.40.2"')


def test_the_stream_decodes_to_every_frame_and_all_the_audio_in_sync() -> None:
    encoder = LiveMp4Encoder(fps=FPS)
    samples = _reply("one two three four five six seven eight nine ten eleven twelve")
    data = b"".join([*_feed(encoder, samples), encoder.close()])
    frames = encoder.frames
    assert frames == round(samples.shape[0] / RATE * FPS)
    with av.open(io.BytesIO(data)) as container:
        assert container.metadata.get("ai_generated") == "true"
        video = [f for f in container.decode(video=0)]
    with av.open(io.BytesIO(data)) as container:
        audio = [f for f in container.decode(audio=0)]
    assert len(video) == frames
    heard = sum(f.samples for f in audio)
    # the whole reply, plus the AAC priming the muxer shifted in front (start_offset)
    priming = round(encoder.start_offset * RATE)
    assert priming == 1024
    assert samples.shape[0] + priming <= heard < samples.shape[0] + priming + 1024
    # both tracks are shifted alike: frame k shows at k / fps + start_offset
    times = [float(f.pts * f.time_base) for f in video]
    assert times[1] == pytest.approx(1 / FPS + encoder.start_offset, abs=1e-3)
    assert times[-1] == pytest.approx((frames - 1) / FPS + encoder.start_offset, abs=1e-3)


def test_audio_only_replies_stream_as_audio_mp4() -> None:
    encoder = LiveMp4Encoder(fps=None)
    samples = _reply()
    early = b"".join(_feed(encoder, samples[: RATE // 2], video=False))
    assert encoder.mime_type == 'audio/mp4; codecs="mp4a.40.2"'
    assert "moof" in _boxes(early)
    data = early + b"".join(_feed(encoder, samples[RATE // 2 :], video=False)) + encoder.close()
    with av.open(io.BytesIO(data)) as container:
        assert [s.type for s in container.streams] == ["audio"]


def test_frames_before_any_audio_wait_for_it() -> None:
    encoder = LiveMp4Encoder(fps=FPS)
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    assert encoder.add_frame(VideoFrame(image, 0, FPS)) == b""  # the audio rate is not known yet
    data = encoder.add_audio(AudioChunk(_reply()[:RATE], RATE))
    assert _boxes(data)[:2] == ["ftyp", "moov"]
    data += encoder.add_frame(VideoFrame(image, 1, FPS)) + encoder.close()
    with av.open(io.BytesIO(data)) as container:
        assert len(list(container.decode(video=0))) == 2


def test_bad_input_is_refused_with_typed_errors() -> None:
    encoder = LiveMp4Encoder(fps=FPS)
    encoder.add_audio(AudioChunk(_reply()[:RATE], RATE))
    image = np.zeros((32, 32, 3), dtype=np.uint8)
    encoder.add_frame(VideoFrame(image, 0, FPS))
    with pytest.raises(InvalidInputError, match="in order"):
        encoder.add_frame(VideoFrame(image, 5, FPS))
    with pytest.raises(InvalidInputError, match="earlier frames"):
        encoder.add_frame(VideoFrame(np.zeros((40, 40, 3), dtype=np.uint8), 1, FPS))
    encoder.abort()
    with pytest.raises(InvalidInputError, match="closed"):
        encoder.add_audio(AudioChunk(_reply()[:100], RATE))
    with pytest.raises(InvalidInputError):
        LiveMp4Encoder(fps=0)


def test_codec_strings_come_from_the_sps() -> None:
    assert _avc_profile(bytes([1, 0x64, 0x00, 0x1F, 0xFF])) == "64001F"  # avcC record
    annex_b = b"\x00\x00\x00\x01\x67\x4d\x40\x1e\xaa\x00\x00\x00\x01\x68\xee"
    assert _avc_profile(annex_b) == "4D401E"
    assert _avc_profile(b"") == "42E01E"
