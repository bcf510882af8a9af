"""faster-whisper on real speech: accuracy, options, typed errors, and a free event loop."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from local_support import word_error_rate

from lexperience import Audio, ConfigurationError, InvalidInputError
from lexperience.backends import faster_whisper_stt as fws
from lexperience.backends.faster_whisper_stt import FasterWhisperSTT
from lexperience.backends.piper_tts import PiperTTS
from lexperience.testing import LoopProbe

pytestmark = pytest.mark.local

SPOKEN = "How far away is the nearest star, and how long would it take to travel there?"


async def speak(tts: PiperTTS, text: str) -> Audio:
    return Audio.concatenate([c.to_audio() async for c in tts.stream(text)])


@pytest.mark.parametrize("text", [SPOKEN, "Why does the moon look bigger near the horizon?"])
async def test_piper_question_is_transcribed_within_10_percent_wer(
    stt: FasterWhisperSTT, steady_piper: PiperTTS, text: str
) -> None:
    audio = await speak(steady_piper, text)
    assert audio.sample_rate == 22_050  # resampled to 16 kHz inside transcribe()
    transcript = await stt.transcribe(audio, language="en")
    assert word_error_rate(text, transcript.text) <= 0.10, transcript.text
    assert stt.last_decode == "fast"  # a short clip skips Whisper's 30-s padding
    assert transcript.language == "en"
    assert transcript.duration == pytest.approx(audio.duration)


async def test_sample_question_wav_matches_its_text(
    stt: FasterWhisperSTT, question_wav: Path, question_text: str
) -> None:
    audio = Audio.load(question_wav)
    assert audio.sample_rate == 16_000 and 2.5 <= audio.duration <= 5.0
    transcript = await stt.transcribe(audio)
    assert word_error_rate(question_text, transcript.text) <= 0.10, transcript.text


async def test_word_timestamps_and_vad(question_wav: Path, question_text: str) -> None:
    stt = FasterWhisperSTT(word_timestamps=True, vad_filter=True, beam_size=2, cpu_threads=2)
    # Two seconds of silence before the question: the VAD trims it, timings stay absolute.
    question = Audio.load(question_wav)
    audio = Audio.concatenate([Audio.silence(2.0, 16_000), question])
    transcript = await stt.transcribe(audio)
    assert word_error_rate(question_text, transcript.text) <= 0.10, transcript.text
    assert stt.last_decode == "standard"  # word timings and VAD need faster-whisper's decoder
    words = transcript.words
    assert len(words) >= 8
    assert all(w.start <= w.end for w in words)
    assert all(a.start <= b.start for a, b in itertools.pairwise(words))
    assert words[0].start >= 1.8  # the leading silence is not speech
    assert words[-1].end <= audio.duration + 0.05
    assert words[0].text.lower().strip(",.?") == "what"


async def test_a_runaway_fast_decode_falls_back_to_the_standard_decoder(
    stt: FasterWhisperSTT, steady_piper: PiperTTS, monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "Why does the moon look bigger near the horizon?"
    audio = await speak(steady_piper, text)
    # Without padding after the speech, tiny.en loops ("... horizon? Why does the moon ...").
    monkeypatch.setattr(fws, "_FAST_PAD_FRAMES", 0)
    transcript = await stt.transcribe(audio)
    assert stt.last_decode == "fallback"
    assert word_error_rate(text, transcript.text) <= 0.10, transcript.text


async def test_noise_is_not_transcribed_as_words(stt: FasterWhisperSTT) -> None:
    noise = np.random.default_rng(0).normal(0.0, 0.05, 3 * 16_000).astype(np.float32)
    transcript = await stt.transcribe(Audio(noise, 16_000))
    assert transcript.text == ""


async def test_transcription_runs_off_the_event_loop(
    stt: FasterWhisperSTT, question_wav: Path
) -> None:
    audio = Audio.load(question_wav)
    await stt.aopen()
    with LoopProbe() as probe:
        transcript = await stt.transcribe(audio)
    assert transcript.text
    # the decoding (hundreds of milliseconds of CPU) ran in a thread: no step of the loop cost
    # more than a few milliseconds
    assert probe.max_cpu < 0.02, probe.worst(3)


async def test_unsupported_language_is_a_configuration_error(
    stt: FasterWhisperSTT, question_wav: Path
) -> None:
    audio = Audio.load(question_wav)
    with pytest.raises(ConfigurationError, match=r"English-only.*'fr'.*Fix"):
        await stt.transcribe(audio, language="fr")
    forced = FasterWhisperSTT(stt.model_path, language="fr")
    with pytest.raises(ConfigurationError, match="English-only"):
        await forced.aopen()
    with pytest.raises(ConfigurationError, match="ISO 639-1"):
        FasterWhisperSTT(language="French")


def test_missing_or_incomplete_model_dir_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-model"
    with pytest.raises(ConfigurationError, match="not found") as info:
        FasterWhisperSTT(missing)
    assert str(missing) in str(info.value) and "Fix" in str(info.value)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.json").write_text("{}")
    with pytest.raises(ConfigurationError, match=r"model\.bin"):
        FasterWhisperSTT(tmp_path / "half")


def test_model_name_not_in_local_cache_is_never_downloaded(tmp_path: Path) -> None:
    stt = FasterWhisperSTT("base.en", download_root=tmp_path)
    with pytest.raises(ConfigurationError, match="not on this machine") as info:
        stt.load()
    assert str(tmp_path) in str(info.value)
    assert list(tmp_path.rglob("model.bin")) == []
    with pytest.raises(ConfigurationError, match="unknown Whisper model name"):
        FasterWhisperSTT("gigantic-v9", download_root=tmp_path).load()
    repo = FasterWhisperSTT("Systran/faster-whisper-small", download_root=tmp_path)
    with pytest.raises(ConfigurationError, match="huggingface-cli download Systran"):
        repo.load()


async def test_bad_input_is_invalid_input(stt: FasterWhisperSTT) -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        await stt.transcribe(Audio(np.zeros(0, dtype=np.float32), 16_000))
    with pytest.raises(InvalidInputError, match="Audio"):
        await stt.transcribe(b"RIFF....")  # type: ignore[arg-type]
