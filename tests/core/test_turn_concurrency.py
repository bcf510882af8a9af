"""One conversation runs one turn at a time, whatever mix of loops, threads and entry points
asks; interrupts work from anywhere; no task outlives its turn."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Sequence

import numpy as np
import pytest

from lexperience import (
    Audio,
    BackendError,
    BackendTimeoutError,
    Conversation,
    ConversationBusyError,
    Hooks,
    Message,
    TurnCancelledError,
    TurnOptions,
)
from lexperience._aio import CrossLoopLock
from lexperience._portal import Portal
from lexperience.context import TurnContext
from lexperience.events import AudioEvent
from lexperience.testing import FakeLLM, FakeSTT, FakeTTS
from lexperience.transcript import Transcript

LONG = " ".join(f"Sentence number {i} goes on for a while." for i in range(12))


class CountingLLM(FakeLLM):
    """A FakeLLM that records how many of its streams ever ran at the same time."""

    def __init__(self, **kw: object) -> None:
        super().__init__(**kw)  # type: ignore[arg-type]
        self.running = 0
        self.max_running = 0
        self.lock = threading.Lock()

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        with self.lock:
            self.running += 1
            self.max_running = max(self.max_running, self.running)
        try:
            async for delta in super().stream(messages, max_tokens=max_tokens):
                yield delta
        finally:
            with self.lock:
                self.running -= 1


def speech(seconds: float = 1.0) -> Audio:
    t = np.arange(int(16_000 * seconds)) / 16_000
    return Audio((0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32), 16_000)


def others() -> list[asyncio.Task[object]]:
    return [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]


async def test_reply_and_areply_on_two_loops_never_overlap() -> None:
    llm = CountingLLM(token_interval=0.005)
    conv = Conversation(llm=llm, tts=FakeTTS())
    results: list[str] = []
    thread = threading.Thread(target=lambda: results.append(conv.reply("from a thread").user_text))
    thread.start()
    await asyncio.sleep(0.02)  # the thread's turn is running on the portal loop now
    mine = await conv.areply("from the main loop")
    await asyncio.to_thread(thread.join, 10)
    assert results == ["from a thread"] and mine.user_text == "from the main loop"
    assert llm.max_running == 1  # one turn at a time
    users = [m.content for m in conv.history if m.role == "user"]
    assert users == ["from a thread", "from the main loop"]
    assert [m.role for m in conv.history] == ["user", "assistant", "user", "assistant"]
    conv.close()


async def test_on_busy_error_holds_across_loops() -> None:
    conv = Conversation(llm=FakeLLM(LONG, token_interval=0.02), tts=FakeTTS(), on_busy="error")
    started = threading.Event()
    conv.hooks = Hooks(on_turn_started=lambda e: started.set())
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            conv.reply("first")
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert await asyncio.to_thread(started.wait, 5)
    with pytest.raises(ConversationBusyError):
        await conv.areply("second")
    await conv.interrupt()  # from this loop, stopping the turn on the portal loop
    await asyncio.to_thread(thread.join, 10)
    assert len(outcome) == 1 and isinstance(outcome[0], TurnCancelledError)
    assert conv.history[0] == Message.user("first")
    assert all(m.interrupted for m in conv.history[1:])  # only what was heard, marked as such
    conv.close()


async def test_on_busy_interrupt_holds_across_loops() -> None:
    conv = Conversation(llm=FakeLLM(LONG, token_interval=0.02), tts=FakeTTS(), on_busy="interrupt")
    started = threading.Event()

    def heard_some(event: AudioEvent) -> None:
        # a second of the reply was delivered, so some of its words were heard: one 0.2 s chunk
        # is less than a word, and a reply of which nothing was heard leaves no assistant message
        if event.offset + event.chunk.duration >= 1.0:
            started.set()

    conv.hooks = Hooks(on_audio=heard_some)
    outcome: list[BaseException] = []

    def run() -> None:
        try:
            conv.reply("first")
        except BaseException as exc:
            outcome.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert await asyncio.to_thread(started.wait, 5)
    conv.hooks = Hooks()
    second = await conv.areply("second")  # barges in on the turn running on the other loop
    await asyncio.to_thread(thread.join, 10)
    assert isinstance(outcome[0], TurnCancelledError)
    assert second.user_text == "second" and not second.interrupted
    roles = [(m.role, m.interrupted) for m in conv.history]
    assert roles == [("user", False), ("assistant", True), ("user", False), ("assistant", False)]
    conv.close()


async def test_interrupt_from_a_thread_without_a_loop() -> None:
    conv = Conversation(llm=FakeLLM(LONG, token_interval=0.02), tts=FakeTTS())
    started = asyncio.Event()
    conv.hooks = Hooks(on_audio=lambda e: started.set())
    task = asyncio.ensure_future(conv.areply("go"))
    await started.wait()
    # a UI's Stop button handler running in a worker thread, on a loop of its own
    await asyncio.to_thread(lambda: asyncio.run(conv.interrupt(played_seconds=0.0)))
    with pytest.raises(TurnCancelledError) as info:
        await task
    assert info.value.heard_text == ""
    assert conv.history == [Message.user("go")]  # nothing of the reply was heard
    assert others() == []


async def test_a_turn_cannot_start_from_its_own_hook() -> None:
    conv = Conversation(llm=FakeLLM(), tts=FakeTTS())

    async def reenter(event: object) -> None:
        await conv.areply("nested")

    conv.hooks = Hooks(on_sentence=reenter)
    with pytest.raises(Exception) as info:
        await conv.areply("outer")
    assert isinstance(info.value.__cause__, ConversationBusyError)  # raised inside the hook
    conv.hooks = Hooks()
    assert (await conv.areply("after")).text  # not deadlocked


async def test_a_failing_context_provider_cancels_the_others() -> None:
    ended: list[str] = []

    class Slow:
        async def provide(self, turn: TurnContext) -> str:
            try:
                await asyncio.sleep(10)
            finally:
                await asyncio.sleep(0.01)  # its clean-up takes a moment
                ended.append("slow")
            return "never"

    class Broken:
        async def provide(self, turn: TurnContext) -> str:
            await asyncio.sleep(0.01)
            raise RuntimeError("index unavailable")

    conv = Conversation(llm=FakeLLM(), tts=FakeTTS(), context=[Slow(), Broken()])
    with pytest.raises(BackendError, match="index unavailable") as info:
        await conv.areply("q")
    assert info.value.stage == "context"
    assert ended == ["slow"]  # cancelled, and finished before the error came out
    assert others() == [] and conv.history == []


async def test_a_backends_own_timeout_is_not_the_stage_deadline() -> None:
    llm = FakeLLM(fail_after=0, error=TimeoutError("read timed out"))
    conv = Conversation(llm=llm, tts=FakeTTS(), options=TurnOptions(stage_timeout=60))
    with pytest.raises(BackendTimeoutError) as info:
        await conv.areply("q")
    assert "the backend timed out" in str(info.value) and "read timed out" in str(info.value)
    assert "within 60" not in str(info.value)
    slow = Conversation(
        llm=FakeLLM(first_token_latency=5), tts=FakeTTS(), options=TurnOptions(stage_timeout=0.05)
    )
    with pytest.raises(BackendTimeoutError, match=r"no result within 0\.05 s"):
        await slow.areply("q")


class BlockingSTT:
    """An STT whose work runs in a thread that cannot be cancelled (like faster-whisper)."""

    name = "blocking"

    def __init__(self) -> None:
        self.release = threading.Event()
        self.started = threading.Event()
        self.finished = threading.Event()

    async def transcribe(self, audio: Audio, *, language: str | None = None) -> Transcript:
        def work() -> Transcript:
            self.started.set()
            self.release.wait(10)
            self.finished.set()
            return Transcript(text="the late transcript")

        return await asyncio.to_thread(work)


async def test_interrupting_during_stt_returns_promptly_and_drops_the_late_result() -> None:
    stt = BlockingSTT()
    conv = Conversation(stt=stt, llm=FakeLLM(), tts=FakeTTS())
    task = asyncio.ensure_future(conv.areply(speech()))
    assert await asyncio.to_thread(stt.started.wait, 5)
    await conv.interrupt()
    assert not stt.finished.is_set()  # interrupt() returned while the thread still ran
    with pytest.raises(TurnCancelledError):
        await task
    stt.release.set()
    await asyncio.to_thread(stt.finished.wait, 5)
    await asyncio.sleep(0.05)  # give a late result every chance to leak in
    assert conv.history == [] and not conv.busy
    conv.backends.stt = FakeSTT("the next question")
    reply = await conv.areply(speech())
    assert reply.user_text == "the next question"
    assert [m.content for m in conv.history if m.role == "user"] == ["the next question"]


def test_portal_close_cancels_and_awaits_its_tasks() -> None:
    portal = Portal()
    cleaned = threading.Event()

    async def forever() -> None:
        try:
            await asyncio.sleep(3600)
        finally:
            await asyncio.sleep(0.02)  # asynchronous clean-up must get to run
            cleaned.set()

    portal.submit(forever())
    time.sleep(0.05)
    loop = portal.loop
    assert loop is not None
    portal.close()
    assert cleaned.is_set() and loop.is_closed()


async def test_cross_loop_lock_hands_over_in_order_and_survives_cancelled_waiters() -> None:
    lock = CrossLoopLock()
    await lock.acquire()
    order: list[str] = []

    async def waiter(name: str) -> None:
        async with lock:
            order.append(name)

    first = asyncio.ensure_future(waiter("a"))
    cancelled = asyncio.ensure_future(waiter("b"))
    last = asyncio.ensure_future(waiter("c"))
    await asyncio.sleep(0)
    cancelled.cancel()
    lock.release()
    await asyncio.gather(first, last)
    assert order == ["a", "c"] and not lock.locked()
    # a waiter on another loop, in another thread
    await lock.acquire()
    got = threading.Event()

    def other_loop() -> None:
        async def take() -> None:
            async with lock:
                got.set()

        asyncio.run(take())

    thread = threading.Thread(target=other_loop)
    thread.start()
    await asyncio.sleep(0.05)
    assert not got.is_set()
    lock.release()
    await asyncio.to_thread(thread.join, 5)
    assert got.is_set() and not lock.locked()
    assert lock.try_acquire() and not lock.try_acquire()
    lock.release()
