"""Piper and espeak-ng: streamed chunks, viseme timings, early stop, typed errors."""

from __future__ import annotations

import itertools
import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from local_support import workers_finished

from lexperience import AudioChunk, ConfigurationError, InvalidInputError
from lexperience.backends._local import VisemeTrack
from lexperience.backends.espeak_tts import EspeakTTS
from lexperience.backends.piper_tts import PiperTTS
from lexperience.visemes import VISEMES

pytestmark = pytest.mark.local

TEXT = "Black holes are regions where gravity wins. Not even light can escape them."


def check_visemes(chunks: list[AudioChunk]) -> None:
    """Every chunk has cues: known shapes, ordered, non-overlapping, inside the chunk."""
    for chunk in chunks:
        cues = chunk.visemes
        assert cues, f"{chunk!r} has no viseme cues"
        assert all(c.viseme in VISEMES for c in cues)
        assert all(0.0 <= c.start < c.end <= chunk.duration + 1e-6 for c in cues), cues
        assert all(a.end <= b.start + 1e-9 for a, b in itertools.pairwise(cues)), cues
    shapes = {c.viseme for chunk in chunks for c in chunk.visemes}
    assert len(shapes - {"sil"}) >= 6, shapes  # a real utterance uses many mouth shapes
    assert shapes & {"PP", "FF", "SS", "DD"}  # closed or narrow consonants are resolved


async def test_piper_streams_short_chunks_with_aligned_visemes(
    piper: PiperTTS, no_leaked_threads: None
) -> None:
    assert piper.aligned is True  # phoneme durations exposed without the onnx package
    started = time.perf_counter()
    chunks: list[AudioChunk] = []
    first_at = None
    async for chunk in piper.stream(TEXT):
        first_at = first_at or time.perf_counter() - started
        chunks.append(chunk)
    total = time.perf_counter() - started
    assert first_at is not None and first_at < total  # the first chunk came before the end
    duration = sum(c.duration for c in chunks)
    assert 3.0 < duration < 8.0
    assert all(c.sample_rate == piper.sample_rate == 22_050 for c in chunks)
    assert all(c.duration <= 0.5 for c in chunks)
    assert all(c.duration >= 0.15 for c in chunks[:-1])
    assert all(c.text == TEXT for c in chunks)
    check_visemes(chunks)


async def test_piper_visemes_follow_the_audio(piper: PiperTTS) -> None:
    """Closed-mouth cues fall where the audio is quiet more often than open ones do."""
    chunks = [c async for c in piper.stream("Mama made a warm pie, papa ate it all.")]
    loud_open, loud_closed = [], []
    for chunk in chunks:
        for cue in chunk.visemes:
            a, b = round(cue.start * chunk.sample_rate), round(cue.end * chunk.sample_rate)
            if b - a < 100:
                continue
            level = float(np.sqrt(np.mean(chunk.samples[a:b] ** 2)))
            (loud_open if cue.viseme in ("aa", "E", "oh") else loud_closed).append(level)
    assert loud_open and loud_closed
    assert np.median(loud_open) > np.median(loud_closed)


async def test_piper_espeak_viseme_fallback(no_leaked_threads: None) -> None:
    tts = PiperTTS(viseme_source="espeak", chunk_seconds=0.25)
    chunks = [c async for c in tts.stream(TEXT)]
    assert tts.aligned is False
    assert all(c.duration <= 0.4 for c in chunks)
    check_visemes(chunks)


async def test_piper_closing_early_stops_the_worker(
    piper: PiperTTS, no_leaked_threads: None
) -> None:
    stream = piper.stream(TEXT + " " + TEXT)
    async for _ in stream:
        break
    await stream.aclose()
    assert await workers_finished(), "the synthesis thread did not end"


async def test_espeak_streams_chunks_with_timed_visemes(
    espeak: EspeakTTS, no_leaked_threads: None
) -> None:
    chunks = [c async for c in espeak.stream(TEXT)]
    assert espeak.sample_rate == 22_050
    assert len(chunks) >= 10
    assert all(abs(c.duration - 0.2) < 1e-3 for c in chunks[:-1])
    assert 2.5 < sum(c.duration for c in chunks) < 8.0
    assert max(float(np.abs(c.samples).max()) for c in chunks) > 0.1
    check_visemes(chunks)


async def test_espeak_voice_options() -> None:
    slow = EspeakTTS(rate=100, with_visemes=False, chunk_seconds=0.5)
    fast = EspeakTTS(rate=300, with_visemes=False, chunk_seconds=0.5)
    slow_s = sum([c.duration async for c in slow.stream("one two three four five")])
    fast_s = sum([c.duration async for c in fast.stream("one two three four five")])
    assert slow_s > 1.5 * fast_s
    assert all([not c.visemes async for c in fast.stream("hello")])
    with pytest.raises(ConfigurationError, match="no voice 'xx-nowhere'"):
        await EspeakTTS("xx-nowhere").aopen()
    with pytest.raises(ConfigurationError, match="rate"):
        EspeakTTS(rate=5)


async def test_empty_text_is_invalid_input(piper: PiperTTS, espeak: EspeakTTS) -> None:
    for tts in (piper, espeak):
        with pytest.raises(InvalidInputError, match="empty"):
            _ = [c async for c in tts.stream("   ")]


def test_piper_voice_errors_name_the_file(tmp_path: Path, piper: PiperTTS) -> None:
    missing = tmp_path / "nobody.onnx"
    with pytest.raises(ConfigurationError, match="not found") as info:
        PiperTTS(missing)
    assert str(missing) in str(info.value)

    no_config = tmp_path / "voice.onnx"
    shutil.copyfile(piper.model_path, no_config)  # a real model, but its .onnx.json is missing
    with pytest.raises(ConfigurationError, match=r"voice\.onnx\.json is missing") as info:
        PiperTTS(no_config)
    assert "Fix" in str(info.value)

    text = tmp_path / "notes.onnx"
    text.write_text("not a neural network\n")
    shutil.copyfile(piper.config_path, tmp_path / "notes.onnx.json")
    with pytest.raises(ConfigurationError, match="not a Piper voice") as info:
        PiperTTS(text)
    assert str(text) in str(info.value)

    garbage = tmp_path / "garbage.onnx"
    garbage.write_bytes(b"\x08\x07" + bytes(range(256)) * 8)  # starts like ONNX, is not
    shutil.copyfile(piper.config_path, tmp_path / "garbage.onnx.json")
    with pytest.raises(ConfigurationError, match="not a Piper voice"):
        PiperTTS(garbage).load()

    bad_config = tmp_path / "cfg.onnx"
    shutil.copyfile(piper.model_path, bad_config)
    (tmp_path / "cfg.onnx.json").write_text(json.dumps({"audio": {}}))
    with pytest.raises(ConfigurationError, match="not a Piper voice config"):
        PiperTTS(bad_config)
    with pytest.raises(ConfigurationError, match="speaker_id"):
        PiperTTS(speaker_id=3)


def test_viseme_track_cuts_chunks() -> None:
    track = VisemeTrack(100)
    track.add(10, "PP")
    track.add(30, "aa")
    track.add(30, "E")  # replaces
    track.add(80, "sil")
    cues = track.cues(0, 50)
    assert [(c.start, c.end, c.viseme) for c in cues] == [
        (0.0, 0.1, "sil"),
        (0.1, 0.3, "PP"),
        (0.3, 0.5, "E"),
    ]
    cues = track.cues(50, 100)
    assert [(c.start, c.end, c.viseme) for c in cues] == [(0.0, 0.3, "E"), (0.3, 0.5, "sil")]
    track.forget_before(60)
    assert [c.viseme for c in track.cues(60, 90)] == ["E", "sil"]
    assert track.cues(5, 5) == ()


async def test_piper_speed_and_language_options(piper: PiperTTS) -> None:
    text = "One two three four five six."
    fast = PiperTTS(speed=1.5, noise_scale=0.0, noise_w_scale=0.0, with_visemes=False)
    slow = PiperTTS(speed=0.75, noise_scale=0.0, noise_w_scale=0.0, with_visemes=False)
    fast_s = sum([c.duration async for c in fast.stream(text)])
    slow_s = sum([c.duration async for c in slow.stream(text)])
    assert slow_s > 1.6 * fast_s
    assert fast.length_scale == pytest.approx(1 / 1.5)
    assert PiperTTS(language="en").language == "en" == piper.language
    assert PiperTTS(language="en-US").language == "en"
    with pytest.raises(ConfigurationError, match="speaks 'en_US', not 'fr'") as info:
        PiperTTS(language="fr")
    assert "Fix" in str(info.value)
    with pytest.raises(ConfigurationError, match="not both"):
        PiperTTS(speed=1.2, length_scale=0.8)
    with pytest.raises(ConfigurationError, match="speed"):
        PiperTTS(speed=5)


async def test_espeak_language_and_speed_options() -> None:
    assert EspeakTTS().voice == "en-us"
    assert EspeakTTS(language="en").voice == "en-us"
    assert EspeakTTS(language="fr").voice == "fr"
    assert EspeakTTS("en-gb", language="en").voice == "en-gb"  # an explicit voice wins
    assert EspeakTTS(speed=2.0).rate == 330
    slow = EspeakTTS(speed=0.6, with_visemes=False, chunk_seconds=0.5)
    fast = EspeakTTS(speed=1.8, with_visemes=False, chunk_seconds=0.5)
    slow_s = sum([c.duration async for c in slow.stream("one two three four five")])
    fast_s = sum([c.duration async for c in fast.stream("one two three four five")])
    assert slow_s > 1.5 * fast_s
    chunks = [c async for c in EspeakTTS(language="fr").stream("Bonjour tout le monde.")]
    assert sum(c.duration for c in chunks) > 0.5
    with pytest.raises(ConfigurationError, match="speed"):
        EspeakTTS(speed=0.1)
