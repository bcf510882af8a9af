"""Episode.transcribe: long audio in pieces cut at quiet moments, word timings kept, progress,
resuming from a checkpoint after a failure."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lexperience import Audio, BackendError, ConfigurationError, Episode, InvalidInputError
from lexperience.episode import TranscriptionProgress
from lexperience.testing import FakeSTT
from lexperience.transcript import Transcript, Word

RATE = 16_000
ROOT = Path(__file__).resolve().parents[2]


def tone_episode(
    n: int = 60, *, silence_at: int | None = 30
) -> tuple[Audio, list[tuple[float, float]]]:
    """``n`` tone bursts, burst i at 300 + 20 i Hz, with pauses; 12 s of silence before burst
    ``silence_at``. Returns the audio and each burst's (start, end)."""
    rng = np.random.default_rng(0)
    parts, spans, t = [np.zeros(int(0.5 * RATE), np.float32)], [], 0.5
    for i in range(n):
        if i == silence_at:
            parts.append(np.zeros(12 * RATE, np.float32))
            t += 12
        length = 0.4
        tt = np.arange(int(length * RATE)) / RATE
        parts.append((0.3 * np.sin(2 * np.pi * (300 + 20 * i) * tt)).astype(np.float32))
        spans.append((t, t + length))
        gap = float(rng.uniform(0.3, 0.6))
        parts.append(np.zeros(int(gap * RATE), np.float32))
        t += length + gap
    return Audio(np.concatenate(parts), RATE), spans


class ToneSTT:
    """Hears each tone burst as the word ``w<i>`` (from its pitch), timed where it sounds;
    every fourth word ends a sentence. Can fail on a given call."""

    name = "tones"

    def __init__(self, *, words: bool = True, fail_on_call: int | None = None) -> None:
        self.words, self.fail_on_call, self.calls = words, fail_on_call, 0

    async def transcribe(self, audio: Audio, *, language: str | None = None) -> Transcript:
        self.calls += 1
        if self.calls == self.fail_on_call:
            raise BackendError("the STT service went away", backend="tones", retryable=True)
        x, frame = audio.samples, RATE // 100
        loud = np.sqrt(np.mean(x[: len(x) // frame * frame].reshape(-1, frame) ** 2, 1)) > 0.05
        found, i = [], 0
        while i < len(loud):
            if loud[i]:
                j = i
                while j < len(loud) and loud[j]:
                    j += 1
                seg = x[i * frame : j * frame]
                pitch = np.argmax(np.abs(np.fft.rfft(seg))) * RATE / len(seg)
                k = round((pitch - 300) / 20)
                found.append(
                    Word(
                        text=f"w{k}" + ("." if k % 4 == 3 else ""),
                        start=i * frame / RATE,
                        end=j * frame / RATE,
                    )
                )
                i = j
            i += 1
        return Transcript(
            text=" ".join(w.text for w in found),
            duration=audio.duration,
            words=tuple(found) if self.words else (),
        )


def words_of(ep: Episode) -> list[Word]:
    return [w for s in ep.segments for w in s.words]


async def test_pieces_are_cut_at_quiet_moments_and_word_timings_are_kept() -> None:
    audio, spans = tone_episode()
    stt = ToneSTT()
    seen: list[TranscriptionProgress] = []
    ep = await Episode.atranscribe(
        audio,
        stt=stt,
        chunk_seconds=8,
        progress=seen.append,
        title="Tones",
        speaker="Theo Calloway",
    )
    words = words_of(ep)
    assert [w.text.rstrip(".") for w in words] == [f"w{i}" for i in range(60)]  # none lost or split
    for w, (start, end) in zip(words, spans, strict=True):
        assert abs(w.start - start) < 0.02 and abs(w.end - end) < 0.02
    for seg in ep.segments:  # split at sentence ends (of 3+ words) and at the pieces' ends
        assert not any(w.text.endswith(".") for w in seg.words[2:-1])
    assert len(ep.segments) >= 12
    assert ep.title == "Tones" and ep.speakers == ["Theo Calloway"]
    assert ep.duration == pytest.approx(audio.duration)
    assert len(seen) >= 8 and seen[-1].done == pytest.approx(audio.duration)
    assert [p.done for p in seen] == sorted(p.done for p in seen) and seen[-1].fraction == 1.0
    assert stt.calls == len(seen) - 1  # the piece of pure silence is not sent to the STT


async def test_without_word_timings_each_piece_is_one_trimmed_segment() -> None:
    audio, spans = tone_episode(20, silence_at=None)
    ep = await Episode.atranscribe(audio, stt=ToneSTT(words=False), chunk_seconds=8)
    assert all(not s.words for s in ep.segments) and len(ep.segments) >= 2
    assert ep.segments[0].start == pytest.approx(spans[0][0], abs=0.03)  # leading silence cut
    assert ep.segments[-1].end == pytest.approx(spans[-1][1], abs=0.03)
    assert " ".join(s.text for s in ep.segments).replace(".", "").split() == [
        f"w{i}" for i in range(20)
    ]


async def test_a_failed_transcription_resumes_from_its_checkpoint(tmp_path) -> None:
    audio, _ = tone_episode()
    first = ToneSTT()
    whole = await Episode.atranscribe(audio, stt=first, chunk_seconds=8)
    checkpoint = tmp_path / "ep.partial"
    with pytest.raises(BackendError, match="went away"):
        await Episode.atranscribe(
            audio, stt=ToneSTT(fail_on_call=4), chunk_seconds=8, checkpoint=checkpoint
        )
    saved = json.loads(checkpoint.read_text())
    assert saved["done_samples"] > 0 and saved["segments"]
    again = ToneSTT()
    seen: list[TranscriptionProgress] = []
    resumed = await Episode.atranscribe(
        audio, stt=again, chunk_seconds=8, checkpoint=checkpoint, progress=seen.append
    )
    assert resumed.segments == whole.segments  # the same cuts as an uninterrupted run
    assert again.calls == first.calls - 3  # the 3 pieces done before the failure are kept
    assert seen[0].resumed_from == pytest.approx(saved["done_samples"] / RATE)
    assert not checkpoint.exists()  # done: the checkpoint is removed


async def test_a_checkpoint_of_other_audio_or_settings_is_refused(tmp_path) -> None:
    audio, _ = tone_episode(20, silence_at=None)
    checkpoint = tmp_path / "ep.partial"
    with pytest.raises(BackendError):
        await Episode.atranscribe(
            audio, stt=ToneSTT(fail_on_call=2), chunk_seconds=8, checkpoint=checkpoint
        )
    other, _ = tone_episode(21, silence_at=None)
    with pytest.raises(InvalidInputError, match="made from other audio"):
        await Episode.atranscribe(other, stt=ToneSTT(), chunk_seconds=8, checkpoint=checkpoint)
    with pytest.raises(InvalidInputError, match="chunk_seconds=8"):
        await Episode.atranscribe(audio, stt=ToneSTT(), chunk_seconds=10, checkpoint=checkpoint)
    checkpoint.write_text("{}")
    with pytest.raises(InvalidInputError, match="not a transcription checkpoint"):
        await Episode.atranscribe(audio, stt=ToneSTT(), chunk_seconds=8, checkpoint=checkpoint)


async def test_a_wav_file_streams_like_audio_in_memory(tmp_path) -> None:
    audio, _ = tone_episode(24, silence_at=None)
    path = audio.save(tmp_path / "ep.wav")
    from_file = await Episode.atranscribe(path, stt=ToneSTT(), chunk_seconds=8)
    in_memory = await Episode.atranscribe(audio, stt=ToneSTT(), chunk_seconds=8)
    assert from_file.segments == in_memory.segments and from_file.audio == str(path)


async def test_the_sample_episode_audio_decodes_in_pieces() -> None:
    pytest.importorskip("av")
    ogg = ROOT / "examples" / "episode" / "slow-signals-12.ogg"
    stt = FakeSTT(text="something was said")
    seen: list[TranscriptionProgress] = []
    ep = await Episode.atranscribe(ogg, stt=stt, chunk_seconds=30, progress=seen.append)
    reference = Episode.load(ogg.with_suffix(".vtt"))
    assert ep.length == pytest.approx(reference.segments[-1].end, abs=1.5)
    assert seen[-1].total == pytest.approx(ep.length, abs=0.1) and 5 <= len(stt.calls) <= 7
    assert all(24 <= c.duration <= 30 for c in stt.calls[:-1])  # cut early, at a quiet moment


def test_the_blocking_form_and_bad_arguments(tmp_path) -> None:
    audio, _ = tone_episode(8, silence_at=None)
    ep = Episode.transcribe(audio, stt=ToneSTT(), chunk_seconds=4)
    assert len(words_of(ep)) == 8
    with pytest.raises(ConfigurationError, match="chunk_seconds"):
        Episode.transcribe(audio, stt=ToneSTT(), chunk_seconds=1)
    with pytest.raises(ConfigurationError, match="STT protocol"):
        Episode.transcribe(audio, stt=object())  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="not found"):
        Episode.transcribe(tmp_path / "missing.mp3", stt=ToneSTT())
    with pytest.raises(InvalidInputError, match="empty"):
        Episode.transcribe(Audio.silence(0), stt=ToneSTT())

    class Broken:
        async def transcribe(self, audio: Audio, *, language: str | None = None) -> str:
            return "not a transcript"

    with pytest.raises(BackendError, match="not a Transcript"):
        Episode.transcribe(audio, stt=Broken())  # type: ignore[arg-type]
