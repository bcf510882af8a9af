"""llama.cpp with the bundled SmolLM2: streamed replies, early stop, serialisation, typed errors."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest
from local_support import workers_finished

from lexperience import ConfigurationError, InvalidInputError, Message
from lexperience.backends.llama_cpp_llm import LlamaCppLLM
from lexperience.text import split_sentences

pytestmark = pytest.mark.local

QUESTION = [
    Message.system("You are a helpful science podcast host. Answer in one or two short sentences."),
    Message.user("Why is the sky blue?"),
]


async def test_reply_is_non_empty_and_sentence_terminated(
    llm: LlamaCppLLM, no_leaked_threads: None
) -> None:
    pieces = [p async for p in llm.stream(QUESTION, max_tokens=96)]
    assert len(pieces) >= 5  # streamed token by token, not in one piece
    text = "".join(pieces).strip()
    sentences = split_sentences(text)
    assert sentences, text
    assert sentences[0].rstrip("\"')”’").endswith((".", "!", "?")), text
    assert len(sentences[0].split()) >= 3, text


async def test_closing_the_stream_stops_generation(
    llm: LlamaCppLLM, no_leaked_threads: None
) -> None:
    before = llm.tokens_generated
    stream = llm.stream(QUESTION, max_tokens=200)
    got = []
    async for piece in stream:
        got.append(piece)
        if len(got) == 3:
            break
    await stream.aclose()  # what the pipeline does when the persona's sentence budget is spent
    assert await workers_finished(), "the generation thread did not end"
    assert llm.active == 0
    after_close = llm.tokens_generated
    assert after_close - before <= len(got) + 1  # at most the token being computed at close
    await asyncio.sleep(0.3)
    assert llm.tokens_generated == after_close  # nothing runs on in the background


async def test_cancelling_the_consumer_stops_generation(
    llm: LlamaCppLLM, no_leaked_threads: None
) -> None:
    first = asyncio.Event()

    async def consume() -> None:
        async with contextlib.aclosing(llm.stream(QUESTION, max_tokens=200)) as stream:
            async for _ in stream:
                first.set()

    task = asyncio.ensure_future(consume())
    await asyncio.wait_for(first.wait(), 30)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await workers_finished(), "the generation thread did not end"
    count = llm.tokens_generated
    await asyncio.sleep(0.3)
    assert llm.active == 0 and llm.tokens_generated == count


async def test_concurrent_streams_are_serialised(llm: LlamaCppLLM, no_leaked_threads: None) -> None:
    async def reply(question: str) -> str:
        msgs = [QUESTION[0], Message.user(question)]
        return "".join([p async for p in llm.stream(msgs, max_tokens=24)])

    a, b = await asyncio.gather(reply("What is a comet?"), reply("What is a planet?"))
    assert a.strip() and b.strip()


async def test_prime_evaluates_the_system_prompt_ahead(llm: LlamaCppLLM) -> None:
    llm.reset()
    assert llm.load().n_tokens == 0
    await llm.aprime(QUESTION[:1])
    primed = llm.load().n_tokens
    assert primed >= 15  # the system message is in llama.cpp's cache now
    text = "".join([p async for p in llm.stream(QUESTION, max_tokens=16)])
    assert text.strip()
    with pytest.raises(InvalidInputError):
        llm.prime([])


def test_missing_model_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nowhere" / "model.gguf"
    with pytest.raises(ConfigurationError, match="not found") as info:
        LlamaCppLLM(path)
    assert str(path) in str(info.value) and "Fix" in str(info.value)


def test_corrupt_gguf_is_a_configuration_error(tmp_path: Path) -> None:
    text = tmp_path / "notes.gguf"
    text.write_text("these are my notes, not a model\n")
    with pytest.raises(ConfigurationError, match="not a GGUF model file") as info:
        LlamaCppLLM(text)
    assert str(text) in str(info.value)
    truncated = tmp_path / "truncated.gguf"
    truncated.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + b"\x00" * 64)
    with pytest.raises(ConfigurationError, match="cannot load") as info:
        LlamaCppLLM(truncated).load()
    assert str(truncated) in str(info.value)


def test_bad_options_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="temperature"):
        LlamaCppLLM(temperature=-1)
    with pytest.raises(ConfigurationError, match="n_ctx"):
        LlamaCppLLM(n_ctx=0)


async def test_bad_messages_are_invalid_input(llm: LlamaCppLLM) -> None:
    with pytest.raises(InvalidInputError):
        _ = [p async for p in llm.stream([])]
    with pytest.raises(InvalidInputError):
        _ = [p async for p in llm.stream([{"role": "wizard", "content": "hi"}])]  # type: ignore[list-item]
