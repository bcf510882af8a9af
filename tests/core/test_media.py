from __future__ import annotations

import io
import struct

import numpy as np
import pytest

from lexperience import Audio, AudioChunk, InvalidInputError, VideoFrame
from lexperience.audio_io import encode_wav, sniff_format


def tone(freq: float, seconds: float, rate: int, amp: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    return (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(x: np.ndarray, rate: int) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.fft.rfftfreq(len(x), 1 / rate)[np.argmax(spec)])


@pytest.mark.parametrize(
    ("array", "expected_peak"),
    [
        (np.array([0, 16384, -32768], dtype=np.int16), 1.0),
        (np.array([0, 2**30, -(2**31)], dtype=np.int32), 1.0),
        (np.array([128, 192, 0], dtype=np.uint8), 1.0),
        (np.array([0.0, 0.5, -1.0], dtype=np.float64), 1.0),
    ],
)
def test_from_numpy_normalises_dtypes(array: np.ndarray, expected_peak: float) -> None:
    audio = Audio.from_numpy(array, 16_000)
    assert audio.samples.dtype == np.float32
    assert np.max(np.abs(audio.samples)) == pytest.approx(expected_peak, abs=1e-6)


def test_from_numpy_mixes_channels_both_layouts() -> None:
    left, right = np.ones(100, np.float32) * 0.2, np.ones(100, np.float32) * 0.6
    a = Audio.from_numpy(np.stack([left, right], axis=1), 8000)  # (frames, channels)
    b = Audio.from_numpy(np.stack([left, right], axis=0), 8000)  # (channels, frames)
    assert len(a) == len(b) == 100
    assert np.allclose(a.samples, 0.4) and np.allclose(b.samples, 0.4)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_nan_and_inf_are_rejected(bad: float) -> None:
    x = np.zeros(100, np.float32)
    x[10] = bad
    with pytest.raises(InvalidInputError, match="NaN or infinite"):
        Audio.from_numpy(x, 16_000)


@pytest.mark.parametrize("rate", [0, 500, 10**6, 16_000.5, True])
def test_bad_sample_rates(rate: object) -> None:
    with pytest.raises(InvalidInputError, match="sample_rate"):
        Audio.from_numpy(np.zeros(10), rate)  # type: ignore[arg-type]


def test_non_numeric_and_3d_arrays_rejected() -> None:
    with pytest.raises(InvalidInputError):
        Audio.from_numpy(np.array(["a", "b"]), 16_000)
    with pytest.raises(InvalidInputError, match="1-D"):
        Audio.from_numpy(np.zeros((2, 2, 2)), 16_000)


def test_wav_round_trip_16bit(tmp_path) -> None:
    audio = Audio(tone(440, 0.5, 22_050), 22_050)
    path = audio.save(tmp_path / "a.wav")
    back = Audio.load(path)
    assert back.sample_rate == 22_050 and len(back) == len(audio)
    assert np.max(np.abs(back.samples - audio.samples)) < 1e-3


def _wav(payload: bytes, *, tag: int, bits: int, rate: int = 8000, channels: int = 1) -> bytes:
    block = channels * bits // 8
    fmt = struct.pack("<HHIIHH", tag, channels, rate, rate * block, block, bits)
    return (
        b"RIFF" + struct.pack("<I", 4 + 8 + len(fmt) + 8 + len(payload)) + b"WAVE"
        + b"fmt " + struct.pack("<I", len(fmt)) + fmt
        + b"data" + struct.pack("<I", len(payload)) + payload
    )  # fmt: skip


def test_wav_float32_24bit_and_stereo() -> None:
    x = np.array([0.0, 0.5, -0.5, 0.25], dtype="<f4")
    assert np.allclose(Audio.load(_wav(x.tobytes(), tag=3, bits=32)).samples, x)
    ints = [0, 2**22, -(2**22), 2**23 - 1]
    raw = b"".join(int(v).to_bytes(3, "little", signed=True) for v in ints)
    got = Audio.load(_wav(raw, tag=1, bits=24)).samples
    assert np.allclose(got, np.array(ints) / 2**23, atol=1e-6)
    stereo = np.array([[1000, 3000], [-1000, -3000]], dtype="<i2").tobytes()
    mixed = Audio.load(_wav(stereo, tag=1, bits=16, channels=2)).samples
    assert np.allclose(mixed, [2000 / 32768, -2000 / 32768])


def test_load_from_file_object_and_bytes() -> None:
    data = Audio(tone(300, 0.2, 16_000), 16_000).to_wav_bytes()
    assert len(Audio.load(io.BytesIO(data))) == 3200
    assert len(Audio.load(bytearray(data))) == 3200


@pytest.mark.parametrize(
    ("data", "match"),
    [
        (b"", "empty"),
        (b"this is plainly not audio, just some text " * 10, "not"),
        (b"RIFF\x10\x00\x00\x00WAVEjunkjunk", "corrupt WAV"),
        (encode_wav(b"", 16_000), "no audio samples"),
    ],
)
def test_bad_audio_bytes(data: bytes, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        Audio.load(data)


def test_missing_file_and_text_file(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="not found"):
        Audio.load(tmp_path / "nope.wav")
    txt = tmp_path / "notes.txt"
    txt.write_text("hello " * 100)
    with pytest.raises(InvalidInputError):
        Audio.load(txt)


def test_two_hour_file_fails_fast_with_max_seconds() -> None:
    two_hours = _wav(bytes(1000 * 7200), tag=1, bits=8, rate=1000)
    with pytest.raises(InvalidInputError, match="7200 s long"):
        Audio.load(two_hours, max_seconds=600)


@pytest.mark.parametrize(("codec", "fmt", "magic"), [("libmp3lame", "mp3", "mp3"),
                                                      ("libopus", "ogg", "ogg"),
                                                      ("aac", "mp4", "mp4"),
                                                      ("flac", "flac", "flac")])  # fmt: skip
def test_compressed_formats_decode_with_media_extra(codec: str, fmt: str, magic: str) -> None:
    av = pytest.importorskip("av")
    rate = 48_000
    buf = io.BytesIO()
    with av.open(buf, mode="w", format=fmt) as out:
        stream = out.add_stream(codec, rate=rate)
        stream.layout = "mono"
        samples = tone(1000, 1.0, rate)
        for i in range(0, len(samples), 960):
            frame = av.AudioFrame.from_ndarray(
                samples[i : i + 960].reshape(1, -1), format="flt", layout="mono"
            )
            frame.sample_rate = rate
            frame.pts = i
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)
    data = buf.getvalue()
    assert sniff_format(data) == magic
    audio = Audio.load(data)
    assert audio.duration == pytest.approx(1.0, abs=0.08)
    assert dominant_freq(audio.samples, audio.sample_rate) == pytest.approx(1000, abs=15)


def test_resample_keeps_pitch_and_length() -> None:
    src = Audio(tone(440, 1.0, 22_050), 22_050)
    out = src.resample(16_000)
    assert out.sample_rate == 16_000 and len(out) == 16_000
    assert dominant_freq(out.samples, 16_000) == pytest.approx(440, abs=2)
    up = src.resample(48_000)
    assert len(up) == 48_000
    assert dominant_freq(up.samples, 48_000) == pytest.approx(440, abs=2)
    assert src.resample(22_050) is src


def test_resample_filters_what_would_alias() -> None:
    # a 10 kHz tone cannot exist at 16 kHz (Nyquist 8 kHz): it must be removed, not folded to 6 kHz
    src = Audio(tone(10_000, 0.5, 48_000), 48_000)
    out = src.resample(16_000)
    assert np.sqrt(np.mean(out.samples[200:-200] ** 2)) < 0.01


def test_levels_and_silence() -> None:
    assert Audio.silence(1.0).is_silent()
    assert Audio.silence(1.0).rms_dbfs() == float("-inf")
    loud = Audio(tone(200, 1.0, 16_000, amp=0.5), 16_000)
    assert not loud.is_silent()
    assert loud.peak_dbfs() == pytest.approx(-6.02, abs=0.05)
    quiet_noise = Audio(np.random.default_rng(0).normal(0, 1e-4, 16_000).astype(np.float32), 16_000)
    assert quiet_noise.is_silent()


def test_slice_concatenate_and_pcm() -> None:
    a = Audio(tone(200, 1.0, 16_000), 16_000)
    b = Audio(tone(200, 0.5, 8_000), 8_000)
    joined = Audio.concatenate([a, b])
    assert joined.sample_rate == 16_000 and joined.duration == pytest.approx(1.5)
    assert a.slice(0.25, 0.5).duration == pytest.approx(0.25)
    pcm = a.to_pcm16()
    assert len(pcm) == 2 * len(a)
    with pytest.raises(InvalidInputError):
        Audio.concatenate([])


def test_save_refuses_other_extensions(tmp_path) -> None:
    with pytest.raises(InvalidInputError, match="WAV"):
        Audio.silence(0.1).save(tmp_path / "a.mp3")


def test_chunk_and_frame_validation() -> None:
    chunk = AudioChunk(np.zeros(160, np.int16), 16_000)
    assert chunk.samples.dtype == np.float32 and chunk.duration == pytest.approx(0.01)
    with pytest.raises(InvalidInputError):
        VideoFrame(np.zeros((4, 4), np.uint8), 0, 25)
    with pytest.raises(InvalidInputError):
        VideoFrame(np.zeros((4, 4, 3), np.float32), 0, 25)
    frame = VideoFrame(np.zeros((4, 6, 3), np.uint8), 50, 25)
    assert frame.timestamp == 2.0 and (frame.width, frame.height) == (6, 4)
