"""Live-mode benchmark: how soon the reply starts after the user stops speaking, and how fast a
barge-in stops it.

Same inputs, same run, the same conversation object (models loaded once), for each stack:

* **(a) reply()**: ``areply(clip)`` on the finished question clip: the time to the first reply
  audio, counted from the call. The clip is exactly the audio live mode gave its STT (the speech
  with 0.25 s before and 0.1 s after it), so that every mode answers the same words through the
  same decoding (faster-whisper decodes short clips a faster way); the local LLM decodes greedily
  for the same reason;
* **(b) live**: :meth:`Conversation.live` without preemption, fed in real time by a
  :class:`~lexperience.live.room.SimulatedRoom` (0.5 s of silence, the same question, silence,
  then a second utterance over the reply): from the moment the last sample of speech was
  delivered to the first reply audio received. Target: at most (a) + the end-of-turn silence +
  50 ms;
* **(c) live, preemptive**: the same with preemptive generation. Target: below (b) by most of
  the STT + first-token time;
* **(d) live, preemptive, shorter pause** (with ``--preemptive-silence S``): (c) with
  ``LiveOptions.preemptive_silence=S``, in the same run, to compare the pause that starts the
  speculative reply;
* **barge-in**: from the moment the second utterance has lasted ``barge_in_min_speech`` (the
  sample that makes it an interruption was delivered) to the ``TurnInterrupted`` received.

Stacks: ``local`` (faster-whisper tiny.en + llama.cpp SmolLM2-135M + Piper, no avatar),
``cloud`` (OpenAI STT, LLM and TTS through the real SDK against the local wire server,
:mod:`lexperience.testing.wire`, with its typical latencies: STT 350 ms, first token 400 ms, TTS
first audio 150 ms; (c) is compared with the sum of those first-byte latencies), and ``fake``
(in-process fakes with the same latencies, for a quick check of this script).

    python benchmarks/live.py --runs 5                  # local and cloud
    python benchmarks/live.py --runs 5 --stack cloud
    python benchmarks/live.py --runs 1 --stack fake     # the smoke test's run

Prints a table per stack and writes ``benchmarks/results/live.json`` (merged per stack).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

from latency_server import machine_info, summarize  # noqa: E402

from lexperience import Conversation, Persona  # noqa: E402
from lexperience.events import (  # noqa: E402
    AudioEvent,
    SpeechEnded,
    SpeechStarted,
    TurnInterrupted,
    TurnStarted,
)
from lexperience.live import LiveOptions, LiveSession  # noqa: E402
from lexperience.live.room import SimulatedRoom, Track  # noqa: E402
from lexperience.media import Audio, AudioChunk  # noqa: E402

RESULTS = HERE / "results" / "live.json"
QUESTION = "What is the biggest planet in our solar system?"
BARGE = "How big is it exactly?"
PERSONA = Persona(name="Theo", prompt="You are a friendly science host. Answer in a few sentences.",
                  max_sentences=3)  # fmt: skip
FIRST_BYTES = {"stt": 0.35, "llm": 0.40, "tts": 0.15}  # the typical wire profile


async def speech(text: str) -> Audio:
    from lexperience.backends.piper_tts import PiperTTS

    tts = PiperTTS(noise_scale=0.0, noise_w_scale=0.0, with_visemes=False)
    parts = [c.to_audio() async for c in tts.stream(text)]
    await tts.aclose()
    return Audio.concatenate(parts).resample(16_000)


class Recorded:
    """The conversation's STT, remembering the last clip it was given: (a) then answers exactly
    the audio live mode transcribed (the same words, the same STT decoding path)."""

    def __init__(self, stt: Any) -> None:
        self._stt = stt
        self.calls: list[Audio] = []
        self.answered: Audio | None = None  # the clip the first live turn answered

    async def transcribe(self, audio: Audio, *, language: str | None = None) -> Any:
        self.calls.append(audio)
        return await self._stt.transcribe(audio, language=language)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stt, name)


# -- stacks -------------------------------------------------------------------------------------
@contextlib.contextmanager
def stack(name: str) -> Any:
    if name == "local":
        from lexperience.backends.llama_cpp_llm import LlamaCppLLM

        # greedy decoding: the same transcript gives the same reply in every mode
        llm = LlamaCppLLM(temperature=0.0, seed=7)
        yield Conversation(stt="faster-whisper", llm=llm, tts="piper", persona=PERSONA)
    elif name == "cloud":
        from lexperience.backends.openai_llm import OpenAILLM
        from lexperience.backends.openai_stt import OpenAISTT
        from lexperience.backends.openai_tts import OpenAITTS
        from lexperience.testing import wire

        with wire.spawn(wire.LatencyProfile.typical(), dialogue="fixed") as server:
            url = f"{server.url}/v1"
            yield Conversation(
                stt=OpenAISTT(api_key=wire.OPENAI_KEY, base_url=url),
                llm=OpenAILLM(api_key=wire.OPENAI_KEY, base_url=url),
                tts=OpenAITTS(api_key=wire.OPENAI_KEY, base_url=url), persona=PERSONA,
            )  # fmt: skip
    elif name == "fake":
        from lexperience.testing import FakeLLM, FakeSTT, FakeTTS

        yield Conversation(
            stt=FakeSTT(QUESTION, latency=FIRST_BYTES["stt"]),
            llm=FakeLLM("Jupiter is the biggest planet of them all. It is many times wider than "
                        "the Earth. It is mostly made of hydrogen and helium gas.",
                        first_token_latency=FIRST_BYTES["llm"], token_interval=0.02),
            tts=FakeTTS(first_chunk_latency=FIRST_BYTES["tts"], realtime_factor=0.2),
            persona=PERSONA,
        )  # fmt: skip
    else:
        raise SystemExit(f"unknown stack {name!r}")


# -- one measurement of each kind ----------------------------------------------------------------
async def reply_first_audio(conv: Conversation, clip: Audio) -> float:
    conv.clear_history()
    reply = await conv.areply(clip)
    assert reply.metrics.first_audio_s is not None
    return reply.metrics.first_audio_s


async def timed(room: SimulatedRoom, timeline: list[tuple[int, float]]) -> AsyncIterator[Any]:
    async for chunk in room.microphone():
        timeline.append((room.position, time.perf_counter()))  # this sample is now available
        yield chunk


def wall_at(timeline: list[tuple[int, float]], seconds: float) -> float:
    sample = int(seconds * 16_000)
    return next(wall for position, wall in timeline if position >= sample)


async def live_run(conv: Conversation, track: Track, options: LiveOptions) -> dict[str, float]:
    conv.clear_history()
    speech_end = track.marks[0][2]
    room = SimulatedRoom(track.audio(), speed=1.0, reference=False, tail_seconds=2.0)
    session = LiveSession(conv, options, played=room.played)
    timeline: list[tuple[int, float]] = []
    found: dict[str, float] = {}
    over: list[SpeechStarted] = []

    async def listen() -> None:
        async for event in session.run(timed(room, timeline)):
            room.hear(event)
            now = time.perf_counter()
            if isinstance(event, TurnStarted) and isinstance(conv.backends.stt, Recorded):
                stt = conv.backends.stt
                if stt.answered is None and stt.calls:
                    stt.answered = stt.calls[-1]  # the transcript the turn answers
            if isinstance(event, AudioEvent) and "first_audio" not in found:
                found["first_audio"] = now - wall_at(timeline, speech_end)
            elif isinstance(event, SpeechStarted) and event.while_replying:
                over.append(event)
            elif isinstance(event, SpeechEnded) and "vad_end_lag" not in found:
                found["vad_end_lag"] = event.at - speech_end  # the VAD's end after the truth
            elif isinstance(event, TurnInterrupted) and over:
                detected = over[0].at + options.barge_in_min_speech
                found["barge_in"] = now - wall_at(timeline, detected)
                return

    task = asyncio.ensure_future(listen())
    try:
        await asyncio.wait_for(task, timeout=track.seconds + 30)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    return found


# -- the benchmark --------------------------------------------------------------------------------
async def bench(name: str, runs: int, short_pause: float | None = None) -> dict[str, Any]:
    question, barge = await speech(QUESTION), await speech(BARGE)
    options = LiveOptions()
    eot = options.end_of_turn_silence

    def session_track() -> Track:
        track = Track()
        track.silence(0.5)
        track.add(question, "question")
        track.silence(3.0)  # the barge-in comes 1-2 s into the reply
        track.add(barge, "barge-in")
        track.silence(1.0)
        return track

    with stack(name) as conv:
        stt = conv.backends.stt = Recorded(conv.backends.stt)
        async with conv:
            # warm-up (caches, first calls), and the clip live mode's STT gets for (a)
            await live_run(conv, session_track(), options.model_copy(update={"preemptive": False}))
            clip = stt.answered
            assert clip is not None, "the warm-up session ran no turn"
            await reply_first_audio(conv, clip)
            a: list[float] = []
            modes: dict[str, list[float]] = {"b": [], "c": [], "d": []}
            kinds = ("b", "c", "d") if short_pause is not None else ("b", "c")
            barge_in: list[float] = []
            lags: list[float] = []
            for run in range(runs):
                a.append(await reply_first_audio(conv, clip))
                order = kinds if run % 2 == 0 else kinds[::-1]
                for mode in order:
                    track = session_track()
                    update: dict[str, Any] = {"preemptive": mode != "b"}
                    if mode == "d":
                        update["preemptive_silence"] = short_pause
                    opts = options.model_copy(update=update)
                    found = await live_run(conv, track, opts)
                    if "first_audio" in found:
                        modes[mode].append(found["first_audio"])
                    if "barge_in" in found:
                        barge_in.append(found["barge_in"])
                    if "vad_end_lag" in found:
                        lags.append(found["vad_end_lag"])
                print(f"  run {run + 1}/{runs}: a {a[-1] * 1e3:.0f} ms, b "
                      f"{_ms(modes['b'][-1:])}, c {_ms(modes['c'][-1:])}, d {_ms(modes['d'][-1:])}",
                      flush=True)  # fmt: skip
    result: dict[str, Any] = {
        "a_reply": summarize(a), "b_live": summarize(modes["b"]),
        "c_live_preemptive": summarize(modes["c"]), "barge_in": summarize(barge_in),
        "vad_end_lag": summarize(lags),
        "end_of_turn_silence": eot, "barge_in_min_speech": options.barge_in_min_speech,
        "runs": runs,
    }  # fmt: skip
    if short_pause is not None:
        result["d_live_preemptive_short_pause"] = summarize(modes["d"])
        result["short_pause"] = short_pause
    if name in ("cloud", "fake"):
        result["first_bytes_sum"] = round(sum(FIRST_BYTES.values()), 3)
    return result


def _ms(values: list[float]) -> str:
    return f"{values[0] * 1e3:.0f} ms" if values else "-"


def report(name: str, r: dict[str, Any]) -> None:
    def med(key: str) -> float:
        return float(r[key]["median"] or float("nan"))

    a, b, c = med("a_reply"), med("b_live"), med("c_live_preemptive")
    eot = r["end_of_turn_silence"]
    print(f"\n{name}: end of user speech -> first reply audio (median of {r['runs']}, p95)")
    for label, key in (("(a) reply() on the clip", "a_reply"), ("(b) live", "b_live"),
                       ("(c) live, preemptive", "c_live_preemptive")):  # fmt: skip
        print(f"  {label:<26} {r[key]['median'] * 1e3:7.0f} ms   p95 {r[key]['p95'] * 1e3:7.0f} ms")
    if r["barge_in"]["n"]:
        print(f"  barge-in to interrupted    {r['barge_in']['median'] * 1e3:7.0f} ms   p95 "
              f"{r['barge_in']['p95'] * 1e3:7.0f} ms")  # fmt: skip
    else:
        print("  barge-in: not measured (the reply had ended before the second utterance)")
    print(f"  (b) - (a) = {(b - a) * 1e3:.0f} ms (target <= end of turn {eot * 1e3:.0f} + 50 ms): "
          f"{'ok' if b <= a + eot + 0.05 else 'MISSED'}")  # fmt: skip
    print(f"  (b) - (c) = {(b - c) * 1e3:.0f} ms saved by preemption")
    print(
        f"  the VAD dates the end of speech {med('vad_end_lag') * 1e3:.0f} ms after the truth "
        "(the end of turn counts from there)"
    )
    if "d_live_preemptive_short_pause" in r:
        d = med("d_live_preemptive_short_pause")
        print(f"  (d) preemptive after {r['short_pause'] * 1e3:.0f} ms  {d * 1e3:7.0f} ms   p95 "
              f"{r['d_live_preemptive_short_pause']['p95'] * 1e3:7.0f} ms: {(b - d) * 1e3:.0f} ms "
              "below (b)")  # fmt: skip
    if "first_bytes_sum" in r:
        total = r["first_bytes_sum"]
        print(f"  (c) - services' first bytes ({total * 1e3:.0f} ms) = {(c - total) * 1e3:.0f} ms")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stack", choices=("local", "cloud", "fake", "both"), default="both")
    parser.add_argument("--no-save", action="store_true", help="do not write the JSON")
    parser.add_argument("--preemptive-silence", type=float, default=None, metavar="S",
                        help="also measure (d): preemption after a pause of S seconds")  # fmt: skip
    args = parser.parse_args(argv)
    names = ("local", "cloud") if args.stack == "both" else (args.stack,)
    saved: dict[str, Any] = json.loads(RESULTS.read_text()) if RESULTS.is_file() else {}
    for name in names:
        print(f"{name}: {args.runs} runs", flush=True)
        result = asyncio.run(bench(name, args.runs, args.preemptive_silence))
        report(name, result)
        saved[name] = result
    saved["machine"] = machine_info()
    if not args.no_save:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(json.dumps(saved, indent=2) + "\n")
        print(f"\nwrote {RESULTS}")


_: Callable[..., Any] = AudioChunk  # (the room yields AudioChunks)

if __name__ == "__main__":
    main()
