"""The whole offline stack through ``lexperience.Conversation``: question audio in, spoken reply
out, checked by transcribing the reply again (a round trip through real models only)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from local_support import content_words, recall, word_error_rate, workers_finished

from lexperience import (
    Audio,
    AudioEvent,
    Conversation,
    TurnCancelledError,
    TurnInterrupted,
    registry,
)
from lexperience.backends.faster_whisper_stt import FasterWhisperSTT
from lexperience.backends.llama_cpp_llm import LlamaCppLLM
from lexperience.backends.piper_tts import PiperTTS
from lexperience.text import split_sentences

pytestmark = pytest.mark.local

# The interrupt tests run with the default per-stage timeout: a cancellation that lands just as a
# backend item arrives must still stop the turn (pipeline.guard keeps it; it once did not).


async def test_offline_round_trip(
    stt: FasterWhisperSTT,
    llm: LlamaCppLLM,
    piper: PiperTTS,
    question_wav: Path,
    question_text: str,
    no_leaked_threads: None,
) -> None:
    conversation = Conversation(stt=stt, llm=llm, tts=piper)
    reply = await conversation.areply(Audio.load(question_wav))

    assert reply.transcript is not None
    assert word_error_rate(question_text, reply.transcript.text) <= 0.10, reply.transcript.text
    assert reply.text.strip() and reply.sentences
    # reply.sentences holds the pieces spoken (a first clause may go ahead of its sentence)
    assert 1 <= len(split_sentences(reply.text)) <= conversation.persona.max_sentences
    assert reply.audio is not None and reply.audio.sample_rate == 22_050
    assert reply.audio.duration > 1.0 and not reply.audio.is_silent()

    m = reply.metrics
    assert m.transcript_s is not None and m.first_token_s is not None
    assert m.first_sentence_s is not None and m.first_audio_s is not None
    assert m.transcript_s <= m.first_token_s <= m.first_sentence_s <= m.first_audio_s <= m.total_s
    assert m.total_s < 30

    heard = await stt.transcribe(reply.audio, language="en")
    share = recall(reply.text, heard.text)
    assert share >= 0.6, f"only {share:.0%} of {content_words(reply.text)} heard in {heard.text!r}"
    assert [m.role for m in conversation.history] == ["user", "assistant"]


async def test_interrupting_a_real_turn_stops_every_worker(
    stt: FasterWhisperSTT, llm: LlamaCppLLM, piper: PiperTTS, no_leaked_threads: None
) -> None:
    conversation = Conversation(stt=stt, llm=llm, tts=piper)
    tokens = llm.tokens_generated
    events = []
    async for event in conversation.stream("Tell me everything you know about the planet Mars."):
        events.append(event)
        if isinstance(event, AudioEvent):
            await conversation.interrupt()
    assert isinstance(events[-1], TurnInterrupted)
    assert await workers_finished(), "a worker thread outlived the interrupted turn"
    assert llm.active == 0
    produced = llm.tokens_generated
    await asyncio.sleep(0.3)
    assert llm.tokens_generated == produced > tokens
    history = conversation.history
    assert history[0].role == "user"  # the question is kept; any reply kept is marked cut short
    assert all(m.interrupted for m in history[1:])


async def test_areply_interrupted_from_outside(
    stt: FasterWhisperSTT, llm: LlamaCppLLM, piper: PiperTTS, no_leaked_threads: None
) -> None:
    conversation = Conversation(stt=stt, llm=llm, tts=piper)
    task = asyncio.ensure_future(conversation.areply("Why do stars twinkle at night?"))
    while llm.tokens_generated == 0 or not conversation.busy:
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.05)
    await conversation.interrupt()
    at_interrupt = llm.tokens_generated
    with pytest.raises(TurnCancelledError):
        await task
    assert await workers_finished(), "a worker thread outlived the interrupted turn"
    assert llm.active == 0
    assert llm.tokens_generated - at_interrupt <= 1  # it stopped at its next token


def test_registry_names_build_the_local_backends() -> None:
    assert registry.get_spec("stt", "faster-whisper").load() is FasterWhisperSTT
    assert registry.get_spec("llm", "llama-cpp").load() is LlamaCppLLM
    assert registry.get_spec("tts", "piper").load() is PiperTTS
    from lexperience.backends.espeak_tts import EspeakTTS

    tts = registry.create("tts", "espeak", voice="en-gb", rate=150)
    assert isinstance(tts, EspeakTTS) and tts.voice == "en-gb"
    assert FasterWhisperSTT.name == "faster-whisper" and LlamaCppLLM.name == "llama-cpp"
    assert PiperTTS.name == "piper" and EspeakTTS.name == "espeak"
