from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import pytest

from lexperience import (
    Audio,
    AudioChunk,
    AudioEvent,
    BackendError,
    BackendTimeoutError,
    ConfigurationError,
    Conversation,
    ConversationBusyError,
    ErrorEvent,
    HookError,
    Hooks,
    InvalidInputError,
    Message,
    Persona,
    SentenceEvent,
    StaticContext,
    TextDelta,
    TranscriptEvent,
    TurnCancelledError,
    TurnContext,
    TurnDone,
    TurnInterrupted,
    TurnOptions,
    TurnStarted,
    VideoEvent,
)
from lexperience.testing import FakeAvatar, FakeLLM, FakeSTT, FakeTTS

LONG_REPLY = (
    "Black holes are places where gravity wins. Nothing escapes them, not even light. "
    "They form when huge stars collapse. Some weigh billions of suns. They still obey physics."
)


def speech(seconds: float = 1.0, rate: int = 16_000) -> Audio:
    rng = np.random.default_rng(1)
    return Audio(rng.normal(0, 0.1, int(seconds * rate)).astype(np.float32), rate)


def make(**kw: object) -> Conversation:
    defaults: dict[str, object] = {"stt": FakeSTT(), "llm": FakeLLM(), "tts": FakeTTS()}
    defaults.update(kw)
    return Conversation(**defaults)  # type: ignore[arg-type]


def assert_no_tasks_left() -> None:
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == [], others


async def test_event_order_and_reply_contents() -> None:
    conv = make(avatar=FakeAvatar())
    events = [e async for e in conv.stream(speech())]
    assert isinstance(events[0], TurnStarted) and events[0].input == "audio"
    assert isinstance(events[1], TranscriptEvent)
    assert isinstance(events[-1], TurnDone)
    kinds = {type(e) for e in events}
    assert {TextDelta, SentenceEvent, AudioEvent, VideoEvent} <= kinds
    reply = events[-1].reply
    assert reply.transcript is not None and reply.transcript.text == "What is a black hole?"
    assert reply.text == " ".join(reply.sentences)
    assert reply.audio is not None and reply.fps == 25
    frames = [e for e in events if isinstance(e, VideoEvent)]
    assert len(frames) == round(reply.audio.duration * 25)
    assert [f.frame.index for f in frames] == list(range(len(frames)))
    offsets = [e.offset for e in events if isinstance(e, AudioEvent)]
    assert offsets == sorted(offsets) and offsets[0] == 0.0
    assert all(e.turn_id == 1 for e in events)
    assert [e.t for e in events] == sorted(e.t for e in events)
    assert reply.frames == []  # stream() keeps no frames unless asked


async def test_streaming_overlap_first_audio_before_last_token() -> None:
    llm = FakeLLM(LONG_REPLY, first_token_latency=0.05, token_interval=0.03)
    conv = make(llm=llm, tts=FakeTTS(first_chunk_latency=0.02), avatar=FakeAvatar(),
                persona=Persona(name="T", prompt="p", max_sentences=10))  # fmt: skip
    tokens_at_first_audio = None
    frame_seen_before_done = False
    async for event in conv.stream("tell me"):
        if isinstance(event, AudioEvent) and tokens_at_first_audio is None:
            tokens_at_first_audio = llm.tokens_sent
        if isinstance(event, VideoEvent) and llm.tokens_sent < len(LONG_REPLY.split()):
            frame_seen_before_done = True
        if isinstance(event, TurnDone):
            metrics = event.reply.metrics
    total_tokens = len(LONG_REPLY.split())
    assert tokens_at_first_audio is not None and tokens_at_first_audio < total_tokens / 2
    assert frame_seen_before_done
    assert metrics.first_audio_s is not None and metrics.first_audio_s < metrics.total_s / 2
    assert metrics.first_token_s <= metrics.first_sentence_s <= metrics.first_audio_s
    assert metrics.first_video_s is not None and metrics.first_video_s >= metrics.first_audio_s


async def test_metrics_are_filled() -> None:
    conv = make(stt=FakeSTT(latency=0.05), avatar=FakeAvatar())
    reply = await conv.areply(speech(2.0))
    m = reply.metrics
    assert m.input_audio_s == pytest.approx(2.0)
    assert m.transcript_s is not None and m.transcript_s >= 0.05
    assert m.stt_rtf == pytest.approx(0.05 / 2.0, rel=0.5)
    assert m.tts_rtf is not None and m.avatar_rtf is not None
    assert reply.video is not None and reply.frames == []  # encoded, not kept raw
    assert m.video_frames == reply.video.frames > 0
    assert m.reply_audio_s == pytest.approx(reply.audio.duration)
    assert "first audio" in m.summary()


async def test_history_and_limit() -> None:
    conv = make(history_limit=4)
    await conv.areply("one")
    await conv.areply("two")
    await conv.areply("three")
    history = conv.history
    assert len(history) == 4
    assert [m.role for m in history] == ["user", "assistant", "user", "assistant"]
    assert history[0].content == "two"
    llm = conv.backends.llm
    assert isinstance(llm, FakeLLM)
    sent = llm.calls[-1]
    assert sent[0].role == "system" and sent[-1] == Message.user("three")
    assert Message.user("one") in sent  # turns 1-2 were within the limit then
    await conv.areply("four")
    sent = llm.calls[-1]
    assert Message.user("two") in sent and Message.user("one") not in sent


async def test_sentence_budget_stops_the_llm() -> None:
    llm = FakeLLM(LONG_REPLY, token_interval=0.001)
    conv = make(llm=llm, persona=Persona(name="T", prompt="p", max_sentences=2))
    reply = await conv.areply("go")
    assert reply.sentences == ["Black holes are places where gravity wins.",
                               "Nothing escapes them, not even light."]  # fmt: skip
    assert llm.tokens_sent < len(LONG_REPLY.split())  # generation stopped early
    assert llm.active == 0


async def test_interrupt_leaves_no_task_and_keeps_what_was_heard() -> None:
    llm = FakeLLM(LONG_REPLY, token_interval=0.02)
    tts = FakeTTS(realtime_factor=1.0, chunk_seconds=0.1)
    avatar = FakeAvatar()
    conv = make(llm=llm, tts=tts, avatar=avatar, persona=Persona(name="T", prompt="p",
                                                                 max_sentences=10))  # fmt: skip
    seen: list[object] = []

    async def consume() -> None:
        async for event in conv.stream("story please"):
            seen.append(event)

    task = asyncio.create_task(consume())
    while not any(isinstance(e, AudioEvent) and e.offset >= 1.3 for e in seen):
        await asyncio.sleep(0.01)
    await conv.interrupt(played_seconds=1.2)
    await task
    last = seen[-1]
    assert isinstance(last, TurnInterrupted)
    assert last.played_seconds == pytest.approx(1.2)
    assert llm.active == tts.active == avatar.active == 0
    assert_no_tasks_left()
    assert not conv.busy
    user, assistant = conv.history
    assert user == Message.user("story please")
    assert assistant.interrupted and assistant.content == last.heard_text
    # 1.2 s of audio covers only part of the first sentence: fewer words than the sentence has
    first = "Black holes are places where gravity wins."
    assert assistant.content.endswith("…")
    assert 0 < len(assistant.content.split()) - 1 < len(first.split())
    assert first.startswith(assistant.content.removesuffix(" …"))
    # the conversation goes on normally afterwards
    tts.realtime_factor = 0.0
    reply = await conv.areply("next")
    assert not reply.interrupted and len(conv.history) == 4


async def test_interrupt_defaults_to_audio_delivered() -> None:
    tts = FakeTTS(realtime_factor=0.5, chunk_seconds=0.1)
    conv = make(llm=FakeLLM(LONG_REPLY), tts=tts)
    second_sentence_chunks = 0

    async def on_audio(event: AudioEvent) -> None:
        nonlocal second_sentence_chunks
        if event.chunk.sentence_index == 1:
            second_sentence_chunks += 1
            if second_sentence_chunks == 4:  # a few chunks into the second sentence
                await conv.interrupt()

    conv.hooks = Hooks(on_audio=on_audio)
    with pytest.raises(TurnCancelledError) as info:
        await conv.areply("go")
    heard = info.value.heard_text
    assert heard.startswith("Black holes are places where gravity wins.")
    assert heard != " ".join(info.value.reply.sentences)  # type: ignore[attr-defined]
    assert conv.history[-1].interrupted and conv.history[-1].content == heard
    assert tts.active == 0
    assert_no_tasks_left()


async def test_interrupt_from_outside_areply() -> None:
    conv = make(llm=FakeLLM(LONG_REPLY, token_interval=0.05))
    task = asyncio.create_task(conv.areply("go"))
    await asyncio.sleep(0.1)
    await conv.interrupt()
    with pytest.raises(TurnCancelledError):
        await task
    assert_no_tasks_left()
    await conv.interrupt()  # no turn: a no-op


async def test_abandoning_the_stream_cancels_the_turn() -> None:
    llm = FakeLLM(LONG_REPLY, token_interval=0.02)
    conv = make(llm=llm)
    async with contextlib.aclosing(conv.stream("go")) as events:
        async for event in events:
            if isinstance(event, TextDelta):
                break
    assert llm.active == 0 and not conv.busy
    assert conv.history[0] == Message.user("go")
    assert_no_tasks_left()


async def test_backend_failure_leaves_history_unchanged_and_usable() -> None:
    errors: list[ErrorEvent] = []
    conv = make(llm=FakeLLM(fail_after=3), hooks=Hooks(on_error=errors.append))
    await_ok = make()
    with pytest.raises(BackendError) as info:
        await conv.areply("hi")
    assert info.value.stage == "llm" and info.value.retryable
    assert conv.history == []
    assert len(errors) == 1 and errors[0].stage == "llm"
    conv.backends.llm = FakeLLM()
    assert (await conv.areply("hi")).text
    assert (await await_ok.areply("x")).text


async def test_stream_yields_error_event_then_raises() -> None:
    conv = make(tts=FakeTTS(fail_on="fine"))
    seen = []
    with pytest.raises(BackendError, match="scripted TTS failure"):
        async for event in conv.stream("q"):
            seen.append(event)
    assert isinstance(seen[-1], ErrorEvent) and seen[-1].stage == "tts"
    assert_no_tasks_left()


async def test_foreign_exceptions_become_backend_errors() -> None:
    conv = make(llm=FakeLLM(fail_after=1, error=RuntimeError("socket closed")))
    with pytest.raises(BackendError, match="RuntimeError: socket closed") as info:
        await conv.areply("q")
    assert info.value.stage == "llm" and info.value.backend == "fake"
    assert isinstance(info.value.__cause__, RuntimeError)


async def test_stage_timeout() -> None:
    conv = make(stt=FakeSTT(latency=5), options=TurnOptions(stage_timeout=0.1))
    with pytest.raises(BackendTimeoutError, match=r"within 0\.1 s") as info:
        await conv.areply(speech())  # without the deadline this would return a transcript
    assert info.value.retryable and info.value.stage == "stt"
    conv2 = make(llm=FakeLLM(token_interval=5), options=TurnOptions(stage_timeout=0.1))
    with pytest.raises(BackendTimeoutError, match=r"within 0\.1 s"):
        await conv2.areply("q")
    assert_no_tasks_left()


async def test_hooks_receive_typed_events_in_order() -> None:
    calls: list[str] = []

    async def rec(event: object) -> None:
        calls.append(type(event).__name__)

    hooks = Hooks(on_transcript=rec, on_text_delta=rec, on_sentence=rec, on_audio=rec,
                  on_video_frame=rec, on_reply=rec)  # fmt: skip
    conv = make(avatar=FakeAvatar(), hooks=hooks)
    await conv.areply(speech())
    assert calls[0] == "TranscriptEvent" and calls[-1] == "Reply"
    assert {"TextDelta", "SentenceEvent", "AudioEvent", "VideoEvent"} <= set(calls)


async def test_failing_hook_surfaces_and_conversation_stays_usable() -> None:
    def boom(event: object) -> None:
        raise ValueError("my hook broke")

    conv = make(hooks=Hooks(on_sentence=boom))
    with pytest.raises(HookError, match="on_sentence raised ValueError: my hook broke") as info:
        await conv.areply("q")
    assert isinstance(info.value.__cause__, ValueError)
    assert_no_tasks_left()
    conv.hooks = Hooks()
    assert (await conv.areply("again")).text
    with pytest.raises(TypeError):
        Hooks(on_audio="not callable")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("question", "match"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("x" * 100_000, "100000 characters"),
        (Audio(np.zeros(0, np.float32), 16_000), "empty"),
        (Audio.silence(2.0), "silence only"),
        (Audio(np.full(16_000 * 400, 0.1, np.float32), 16_000), "400 s long"),
        (b"not audio at all, really not", "not"),
        (np.zeros(10), "sample rate"),
        (12345, "cannot answer"),
    ],
)
async def test_bad_input_is_typed_and_loses_nothing(question: object, match: str) -> None:
    conv = make()
    await conv.areply("first")
    before = conv.history
    with pytest.raises(InvalidInputError, match=match):
        await conv.areply(question)  # type: ignore[arg-type]
    assert conv.history == before
    assert (await conv.areply("still works")).text


async def test_live_microphone_stream_input() -> None:
    stt = FakeSTT()
    transcribed_at: list[float] = []
    conv = make(
        stt=stt, hooks=Hooks(on_transcript=lambda e: transcribed_at.append(time.perf_counter()))
    )
    clip = speech(1.0)
    began = ended = 0.0

    async def microphone():
        nonlocal began, ended
        began = time.perf_counter()
        for start in range(0, len(clip), 1600):  # 100 ms chunks, as a sound card delivers them
            await asyncio.sleep(0.01)
            yield AudioChunk(clip.samples[start : start + 1600], clip.sample_rate)
        ended = time.perf_counter()

    reply = await conv.areply(microphone())
    assert reply.transcript is not None and reply.metrics.input_audio_s == pytest.approx(1.0)
    assert np.array_equal(stt.calls[0].samples, clip.samples)
    # latencies count from the end of the stream (end of speech), not from when it began: the
    # clock started no earlier than the stream's end
    assert reply.metrics.transcript_s is not None
    assert reply.metrics.transcript_s <= transcribed_at[0] - ended < transcribed_at[0] - began

    async def endless():
        while True:
            yield AudioChunk(np.full(16_000, 0.1, np.float32), 16_000)

    with pytest.raises(InvalidInputError, match="ran past 300 s"):
        await conv.areply(endless())

    async def nothing():
        return
        yield

    with pytest.raises(InvalidInputError, match="without any audio"):
        await conv.areply(nothing())
    assert len(conv.history) == 2


async def test_no_speech_recognised() -> None:
    conv = make(stt=FakeSTT(""))
    with pytest.raises(InvalidInputError, match="no speech was recognised"):
        await conv.areply(speech())


async def test_audio_without_stt_is_refused() -> None:
    conv = Conversation(llm=FakeLLM(), tts=FakeTTS())
    with pytest.raises(InvalidInputError, match="no STT backend"):
        await conv.areply(speech())


async def test_two_hour_file_is_refused_before_decoding(tmp_path) -> None:
    rate = 1000
    path = Audio(np.full(rate * 7200, 0.1, np.float32), rate).save(tmp_path / "long.wav")
    conv = make()
    with pytest.raises(InvalidInputError, match="7200 s long; the limit is 300 s"):
        await conv.areply(path)
    assert conv.history == []


async def test_wav_path_and_bytes_inputs(tmp_path) -> None:
    path = speech().save(tmp_path / "q.wav")
    conv = make()
    assert (await conv.areply(path)).transcript is not None
    assert (await conv.areply(path.read_bytes())).transcript is not None


async def test_context_providers_and_budget() -> None:
    class Episode:
        def __init__(self) -> None:
            self.seen: list[TurnContext] = []

        async def provide(self, turn: TurnContext) -> str:
            self.seen.append(turn)
            return "EPISODE: " + "words " * 1000

    episode = Episode()
    llm = FakeLLM()
    persona = Persona(name="H", prompt="host", knowledge="The show is about owls.")
    conv = make(llm=llm, persona=persona, context=[episode],
                options=TurnOptions(context_budget_tokens=300))  # fmt: skip
    await conv.areply("who?")
    messages = llm.calls[0]
    assert messages[0].role == "system" and "host" in messages[0].content
    assert messages[1].content == "Background:\nThe show is about owls."
    assert messages[2].content.startswith("EPISODE:") and messages[2].content.endswith("…")
    assert sum(len(m.content) for m in messages[1:3]) <= 300 * 4 + 10
    assert episode.seen[0].user_text == "who?" and episode.seen[0].turn_id == 1


async def test_failing_context_provider_is_a_backend_error() -> None:
    class Broken:
        async def provide(self, turn: TurnContext) -> None:
            raise KeyError("index missing")

    conv = make(context=[Broken()])
    with pytest.raises(BackendError) as info:
        await conv.areply("q")
    assert info.value.stage == "context"


async def test_static_context_provider() -> None:
    ctx = StaticContext("facts", heading="Notes:")
    assert await ctx.provide(TurnContext(1, "q", (), Persona(name="a", prompt="b"))) == (
        "Notes:\nfacts"
    )


async def test_busy_policies() -> None:
    slow = dict(llm=FakeLLM(LONG_REPLY, token_interval=0.05))
    conv = make(on_busy="error", **slow)
    first = asyncio.create_task(conv.areply("one"))
    await asyncio.sleep(0.05)
    with pytest.raises(ConversationBusyError):
        await conv.areply("two")
    await conv.interrupt()
    with pytest.raises(TurnCancelledError):
        await first

    conv = make(on_busy="interrupt", **slow)
    first = asyncio.create_task(conv.areply("one"))
    await asyncio.sleep(0.05)
    second = await conv.areply("two")
    with pytest.raises(TurnCancelledError):
        await first
    assert second.user_text == "two"
    assert [m.content for m in conv.history if m.role == "user"] == ["one", "two"]

    conv = make(on_busy="wait")
    a, b = await asyncio.gather(conv.areply("a"), conv.areply("b"))
    assert {a.turn_id, b.turn_id} == {1, 2}


async def test_watermark_on_by_default_and_removable() -> None:
    marked = await make(avatar=FakeAvatar(size=(128, 128))).areply("q", keep_frames=True)
    plain = await make(avatar=FakeAvatar(size=(128, 128)), watermark=False).areply(
        "q", keep_frames=True
    )
    corner = (slice(100, 128), slice(60, 128))
    m, p = marked.frames[0].image, plain.frames[0].image
    assert len(np.unique(p)) == 1  # the fake draws one flat colour
    assert not np.array_equal(m[corner], p[corner])
    assert np.array_equal(m[:60, :60], p[:60, :60])  # the rest is untouched
    with pytest.raises(ConfigurationError):
        make(watermark="yes")


def test_sync_reply_in_a_script() -> None:
    conv = make(avatar=FakeAvatar())
    reply = conv.reply("hello")
    assert reply.text and reply.video is not None and reply.video.frames > 0
    assert conv.reply("again").turn_id == 2
    conv.close()


async def test_sync_reply_inside_a_running_loop() -> None:
    # what a Jupyter cell does: call the blocking API while an event loop runs in this thread
    conv = make()
    reply = conv.reply("from a notebook")
    assert reply.user_text == "from a notebook"
    conv.close()


def test_protocol_check_and_string_backends() -> None:
    with pytest.raises(ConfigurationError, match="does not implement the TTS protocol"):
        Conversation(llm=FakeLLM(), tts=object())  # type: ignore[arg-type]
    conv = Conversation(stt="fake", llm="fake", tts="fake", avatar="fake")
    assert conv.backends.names == {"stt": "fake", "llm": "fake", "tts": "fake", "avatar": "fake"}
    with pytest.raises(ConfigurationError):
        Conversation(llm="fake", tts="fake", on_busy="sometimes")  # type: ignore[arg-type]


async def test_async_context_manager_calls_lifecycle() -> None:
    class Tracked(FakeTTS):
        opened = closed = 0

        async def aopen(self) -> None:
            self.opened += 1

        async def aclose(self) -> None:
            self.closed += 1

    class Priming(FakeLLM):
        primed: ClassVar[list[list[Message]]] = []

        async def aprime(self, messages: list[Message]) -> None:
            self.primed.append(list(messages))

    tts, llm = Tracked(), Priming()
    async with make(tts=tts, llm=llm) as conv:
        await conv.areply("a")
        await conv.areply("b")
    assert (tts.opened, tts.closed) == (1, 1)
    # the system prompt is handed to an LLM that can pre-evaluate it, once, before turn 1
    assert llm.primed == [conv.persona.prompt_messages()]  # system message and examples


async def test_tts_with_no_audio_is_an_error() -> None:
    class Mute(FakeTTS):
        async def stream(self, text: str):  # type: ignore[override]
            if False:
                yield

    with pytest.raises(BackendError, match="no audio came back") as info:
        await make(tts=Mute()).areply("q")
    assert info.value.retryable


async def test_llm_with_only_unspeakable_output_is_an_error() -> None:
    with pytest.raises(BackendError, match="no speakable text"):
        await make(llm=FakeLLM("🙂 🙂")).areply("q")


async def test_mixed_sample_rates_are_resampled_to_the_first() -> None:
    class Mixed(FakeTTS):
        calls = 0

        async def stream(self, text: str):  # type: ignore[override]
            self.sample_rate = 16_000 if self.calls == 0 else 24_000
            self.calls += 1
            async for chunk in super().stream(text):
                yield chunk

    reply = await make(tts=Mixed(), llm=FakeLLM("One sentence here. Another one there.")).areply(
        "q"
    )
    assert reply.audio is not None and reply.audio.sample_rate == 16_000


def test_custom_history_messages_types() -> None:
    msgs: Sequence[Message] = [Message.system("s"), Message.assistant("a", interrupted=True)]
    assert msgs[1].to_openai() == {"role": "assistant", "content": "a"}
