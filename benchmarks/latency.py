"""Latency benchmark: the streaming library against the prototype's sequential flow.

Two scenarios, each run in both modes with the same backend objects in the same process:

* **A, offline on the CPU**: ``faster-whisper`` (tiny.en) + ``llama-cpp`` (SmolLM2-135M) +
  ``piper`` + the ``portrait`` avatar, answering ``examples/question.wav`` (without the avatar,
  and saying so, when ``lexperience.backends.portrait_avatar`` cannot be imported).
* **B, cloud backends**: ``OpenAISTT`` + ``OpenAILLM`` + ``OpenAITTS`` (or ``ElevenLabsTTS``) +
  ``ReplicateAvatar`` (DreamTalk's protocol), the real SDKs talking to a local server with
  injected latencies (``benchmarks/latency_server.py``): STT 350 ms; LLM first token 400 ms, then
  50 tokens/s; TTS first audio 150 ms, then 4x real time; avatar 2 s + 1 s per audio second per
  clip.

Modes:

* **streaming**: :meth:`Conversation.stream` (the library): the LLM streams, each sentence goes
  to TTS at once, each sentence's audio goes to the avatar at once;
* **sequential**: the prototype's flow: transcribe, then the whole LLM reply, then one TTS call
  for the whole reply, then one avatar call for the whole audio. Its "first audio" is when the
  whole reply audio is ready and its "first video frame" when the whole video is (each stage's
  output exists only once the stage ends). Both modes speak the same sentences (the baseline
  stops the LLM at the same sentence budget).

Times run from the start of the turn (the end of the user's speech) to the first audio chunk, the
first video frame and the end, on the caller's clock. After a warm-up turn in each mode, ``--runs``
turns per mode alternate (streaming first on even runs, sequential first on odd ones); the history
is cleared before every turn (and llama.cpp's prompt cache reset), so every turn is a first turn.

For B it also measures the orchestration overhead: time to first audio minus the services' own
first-byte latencies (STT's transcript + the LLM's tokens up to the end of the first sentence +
TTS's first audio), both as the profile promises them and as the server measured them, and the
same with in-process twins of the services (no HTTP at all).

    python benchmarks/latency.py --runs 5                 # both scenarios
    python benchmarks/latency.py --runs 5 --scenario B    # just the cloud one
    python benchmarks/latency.py --redraw                 # the chart again, from the JSON

Prints tables, writes ``benchmarks/results/latency.json`` (merged: a scenario not run keeps its
previous figures) and the chart ``docs/assets/latency.png``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import json
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import latency_server as sim  # noqa: E402
from latency_modes import Turn, sequential_turn, streaming_turn  # noqa: E402
from latency_report import (  # noqa: E402
    STEPS,
    breakdown,
    chart,
    mode_summary,
    nominal_first_audio,
    print_scenario,
    ratios,
)

from lexperience import Conversation, Persona  # noqa: E402
from lexperience.media import Audio  # noqa: E402
from lexperience.options import TurnOptions  # noqa: E402

T = TypeVar("T")

RESULTS = HERE / "results" / "latency.json"
CHART = ROOT / "docs" / "assets" / "latency.png"
QUESTION_WAV = ROOT / "examples" / "question.wav"
#: Scenario B asks this question every run, so every run does the same work.
QUESTION_ID = 0
#: What issue 6 asks of the orchestration overhead (seconds).
OVERHEAD_TARGET_S = 0.100
#: What issue 5 asks: the orchestration adds no more than this to the services' own latencies.
OVERHEAD_STRICT_S = 0.020

PERSONA = Persona(
    name="Theo Calloway",
    prompt=(
        "You are Theo Calloway, the fictional host of 'Slow Signals', a podcast about curious "
        "ideas in science and everyday life. A listener paused the episode to ask a question: "
        "answer it directly, warmly and briefly, as the host would."
    ),
    max_sentences=4,
)


async def measure(
    conv: Conversation,
    audio: Audio,
    *,
    runs: int,
    warmup: int,
    label: str,
    before_turn: Callable[[], Awaitable[None]] | None = None,
    after_turn: Callable[[Turn], Awaitable[None]] | None = None,
) -> tuple[list[Turn], list[Turn]]:
    """Warm-up turns, then ``runs`` turns per mode, alternating which mode goes first."""
    kept: dict[str, list[Turn]] = {"streaming": [], "sequential": []}
    for i in range(warmup + runs):
        order = ("streaming", "sequential") if i % 2 == 0 else ("sequential", "streaming")
        for mode in order:
            if before_turn is not None:
                await before_turn()
            turn = await (streaming_turn if mode == "streaming" else sequential_turn)(conv, audio)
            if after_turn is not None:
                await after_turn(turn)
            if i >= warmup:
                kept[mode].append(turn)
            tag = "warm-up" if i < warmup else f"run {i - warmup + 1}/{runs}"
            print(
                f"  {label} {tag:>9} {mode:<10} first audio {_ms(turn.first_audio_s):>8}  "
                f"first frame {_ms(turn.first_video_s):>8}  total {_ms(turn.total_s):>8}  "
                f"(worst loop stall {_ms(turn.loop_stall_s)})",
                flush=True,
            )
    return kept["streaming"], kept["sequential"]


def _ms(v: float | None) -> str:
    return "-" if v is None else f"{v * 1000:.0f} ms"


# -- scenario A ----------------------------------------------------------------------------------
async def scenario_a(runs: int, warmup: int) -> dict[str, Any]:
    from lexperience import registry

    notes: list[str] = []
    avatar_name: str | None = "portrait"
    try:
        import lexperience.backends.portrait_avatar  # noqa: F401
    except Exception as exc:  # not finished or OpenCV missing: audio only, said loudly
        avatar_name = None
        notes.append(f"no avatar: lexperience.backends.portrait_avatar cannot be imported ({exc})")
        print(f"note: scenario A runs without an avatar: {notes[-1]}")
    # A fixed seed makes llama.cpp answer the same in both modes (the registry names as usual).
    conv = Conversation(
        stt="faster-whisper",
        llm=registry.create("llm", "llama-cpp", seed=7),
        tts="piper",
        avatar=avatar_name,
        persona=PERSONA,
    )
    audio = Audio.load(QUESTION_WAV)

    async def fresh_prompt() -> None:
        reset = getattr(conv.backends.llm, "reset", None)
        if reset is not None:
            await asyncio.to_thread(reset)  # every turn evaluates its whole prompt

    started = time.perf_counter()
    async with conv:
        load_s = time.perf_counter() - started
        streaming, sequential = await measure(
            conv, audio, runs=runs, warmup=warmup, label="A", before_turn=fresh_prompt
        )
    s, q = mode_summary(streaming), mode_summary(sequential)
    return {
        "name": "offline on the CPU",
        "backends": {
            "stt": "faster-whisper (tiny.en, int8)",
            "llm": "llama-cpp (SmolLM2-135M-Instruct Q4_1, seed 7)",
            "tts": "piper (en_US-joe-medium)",
            "avatar": "portrait (512 px, 25 fps)" if avatar_name else None,
        },
        "question": str(QUESTION_WAV.relative_to(ROOT)),
        "question_s": round(audio.duration, 3),
        "model_load_s": round(load_s, 3),
        "runs": runs,
        "warmup": warmup,
        "notes": notes,
        "streaming": s,
        "sequential": q,
        "ratios": ratios(s, q),
    }


# -- scenario B ----------------------------------------------------------------------------------
async def twins_overhead(
    profile: sim.LatencyProfile, runs: int, warmup: int, tokens: int
) -> list[float]:
    """First audio minus the profile's latencies with in-process twins of the services."""
    conv = Conversation(
        stt=sim.TwinSTT(profile), llm=sim.TwinLLM(profile), tts=sim.TwinTTS(profile),
        persona=PERSONA,
    )  # fmt: skip
    nominal = nominal_first_audio(profile, tokens)
    out: list[float] = []
    audio = sim.question_audio(QUESTION_ID)
    async with conv:
        for i in range(warmup + runs):
            turn = await streaming_turn(conv, audio)
            if i >= warmup and turn.first_audio_s is not None:
                out.append(turn.first_audio_s - nominal)
    return out


async def scenario_b(
    runs: int,
    warmup: int,
    *,
    profile: sim.LatencyProfile,
    tts: str = "openai",
    avatar: bool = True,
    avatar_audio_rate: int = 16_000,
) -> dict[str, Any]:
    # 0.1 s polls (the avatar's default is 0.5 s), scaled with the profile
    poll = max(0.01, 0.1 * profile.avatar_base_s / sim.BENCH_PROFILE.avatar_base_s)
    tokens = sim.first_piece_tokens(
        sim.answer_text(sim.question_text(QUESTION_ID)), TurnOptions().first_clause_words
    )
    with tempfile.TemporaryDirectory() as folder, sim.running(profile) as server:
        b = sim.cloud_backends(
            server.url, tts=tts, avatar=avatar, portrait=sim.fake_portrait(Path(folder)),
            avatar_audio_rate=avatar_audio_rate, poll_interval=poll,
        )  # fmt: skip
        conv = Conversation(stt=b.stt, llm=b.llm, tts=b.tts, avatar=b.avatar, persona=PERSONA)
        audio = sim.question_audio(QUESTION_ID)

        async def clear() -> None:
            await asyncio.to_thread(server.reset)

        async def collect(turn: Turn) -> None:
            turn.server = await asyncio.to_thread(server.stats)

        async with conv:
            streaming, sequential = await measure(
                conv, audio, runs=runs, warmup=warmup, label="B", before_turn=clear,
                after_turn=collect,
            )  # fmt: skip
    steps = [d for d in (breakdown(t, tokens) for t in streaming) if d is not None]
    print("  B in-process twins (no HTTP) for the orchestration overhead ...", flush=True)
    twins = await twins_overhead(profile, runs, warmup, tokens)
    s, q = mode_summary(streaming), mode_summary(sequential)
    nominal = nominal_first_audio(profile, tokens)
    services = ("stt", "llm", "tts")
    measured = [
        t.first_audio_s - sum(d[k] for k in services)
        for t, d in zip(streaming, (breakdown(t, tokens) for t in streaming), strict=True)
        if d is not None and t.first_audio_s is not None
    ]
    overhead = {
        "first_piece_tokens": tokens,
        "services_first_audio_s": round(nominal, 4),
        "vs_profile_s": sim.summarize(
            [t.first_audio_s - nominal for t in streaming if t.first_audio_s is not None]
        ),
        "vs_server_measured_s": sim.summarize(measured),
        "in_process_twins_s": sim.summarize(twins),
        "steps_s": {k: sim.summarize([d[k] for d in steps]) for k, _ in STEPS},
        "steps": dict(STEPS),
        "targets_s": {"issue_6": OVERHEAD_TARGET_S, "issue_5": OVERHEAD_STRICT_S},
    }
    return {
        "name": "cloud backends on the local latency server",
        "backends": {
            "stt": "OpenAISTT (gpt-4o-mini-transcribe, streamed)",
            "llm": "OpenAILLM (Chat Completions, streamed)",
            "tts": "OpenAITTS (pcm 24 kHz)" if tts == "openai" else "ElevenLabsTTS (pcm 24 kHz)",
            "avatar": (
                f"ReplicateAvatar (DreamTalk protocol, {sim.CLIP_SIZE} px, poll {poll:g} s, "
                f"{avatar_audio_rate} Hz upload)"
                if avatar
                else None
            ),
        },
        "profile": profile.to_dict(),
        "question": sim.question_text(QUESTION_ID),
        "runs": runs,
        "warmup": warmup,
        "streaming": s,
        "sequential": q,
        "ratios": ratios(s, q),
        "overhead": overhead,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Time to first audio / first video / total: streaming vs sequential."
    )
    parser.add_argument("--runs", type=int, default=5, help="measured turns per mode (>= 1)")
    parser.add_argument("--warmup", type=int, default=1, help="unmeasured turns per mode first")
    parser.add_argument("--scenario", choices=("A", "B", "all"), default="all")
    parser.add_argument("--tts", choices=("openai", "elevenlabs"), default="openai",
                        help="scenario B's TTS backend")  # fmt: skip
    parser.add_argument("--no-avatar", action="store_true", help="scenario B without the avatar")
    parser.add_argument("--avatar-audio-rate", type=int, default=16_000,
                        help="the rate scenario B's avatar uploads sentences at (its default: "
                             "16000; 24000 matches the TTS and skips resampling)")  # fmt: skip
    parser.add_argument("--scale", type=float, default=1.0,
                        help="scale scenario B's latencies (0.1 for a quick check)")  # fmt: skip
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--chart", type=Path, default=CHART, help="where to draw the chart")
    parser.add_argument("--no-chart", action="store_true", help="do not draw the chart")
    parser.add_argument("--redraw", action="store_true",
                        help="only draw the chart (and print the tables) from the JSON")  # fmt: skip
    parser.add_argument("--note", default="", help="a remark stored with the results")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.warmup < 0 or args.scale <= 0:
        parser.error("--runs must be >= 1, --warmup >= 0 and --scale > 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    results: dict[str, Any] = {}
    if args.json.is_file():
        with contextlib.suppress(ValueError):
            results = json.loads(args.json.read_text())
    results.setdefault("scenarios", {})
    results["benchmark"] = "latency"
    if args.redraw:
        for key, data in sorted(results["scenarios"].items()):
            print_scenario(key, data)
        drawn = chart(results, args.chart)
        print(f"\nwrote {drawn}" if drawn else "nothing to draw")
        return 0
    machine = sim.machine_info()
    started = datetime.datetime.now(datetime.timezone.utc)
    run: dict[str, Any] = {}
    if args.scenario in ("A", "all"):
        print("Scenario A: offline stack on the CPU (loading models) ...", flush=True)
        run["A"] = asyncio.run(scenario_a(args.runs, args.warmup))
    if args.scenario in ("B", "all"):
        profile = sim.BENCH_PROFILE.scaled(args.scale)
        print(f"Scenario B: cloud backends on the latency server {profile} ...", flush=True)
        run["B"] = asyncio.run(
            scenario_b(
                args.runs, args.warmup, profile=profile, tts=args.tts,
                avatar=not args.no_avatar, avatar_audio_rate=args.avatar_audio_rate,
            )
        )  # fmt: skip
    machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    for key, data in run.items():
        data["machine"] = machine
        data["measured_at"] = started.isoformat(timespec="seconds")
        data["command"] = "python benchmarks/latency.py " + " ".join(
            sys.argv[1:] if argv is None else list(argv)
        )
        if args.note:
            data["note"] = args.note
        results["scenarios"][key] = data
        print_scenario(key, data)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\nwrote {args.json}")
    if not args.no_chart:
        drawn = chart(results, args.chart)
        if drawn is not None:
            print(f"wrote {drawn}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
