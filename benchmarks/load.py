"""Load benchmark: N concurrent conversations in one process against the latency server.

For each level N (default 1, 10 and 50), N :class:`Conversation` s, each with its own cloud
backends (``OpenAISTT`` + ``OpenAILLM`` + ``OpenAITTS``, as ``Conversation(stt="openai", ...)``
builds them), run ``--turns`` turns each, concurrently, on one event loop, against the local server
of ``benchmarks/latency_server.py`` with scenario B's latencies (STT 350 ms; LLM first token
400 ms then 50 tokens/s; TTS first audio 150 ms then 4x real time). Before each turn a
conversation waits a random 0 to ``--think`` seconds (seeded), so arrivals spread out a little as
real users' would. The avatar is off by default, to keep the run bounded (``--avatar`` adds the
Replicate avatar at 2 s + 1 s per audio second per clip).

Every question is unique ("Question 1003: what are rainbows?" is encoded in the audio itself) and
every turn is checked: the transcript is its own question, the reply names that question and no
other, the reply audio lasts exactly what its own sentences take to say, no turn fails, and each
conversation's history holds exactly its own questions and answers, in order. Any failure is
counted (``crosstalk``, ``lost``) and fails the run.

Per level it reports p50/p95 time to first audio (over all turns, and over each conversation's
later turns: a conversation's first turn also builds its SDK clients) and total (caller's clock),
throughput (turns per second of wall time, think time included), the worst event-loop stall, the
client's and the server's CPU time per turn and the peak resident memory of the process. Each level
runs in a fresh child process (``--no-isolate`` runs them in this one), so that the peak memory is
that level's own. ``--transport inprocess`` swaps the backends and the server for in-process twins
of the same services (no HTTP, no SDKs), which leaves the library's own cost. ``--baseline-src``
runs every level twice, alternately with the library of an older checkout and with this tree's,
against the same server, and reports both. The question audio is made before the clock starts
(it is the users' work, not the library's).
Target: p95 time to first audio at N=50 within 1.5x of N=1.

    python benchmarks/load.py                          # N = 1, 10, 50 over HTTP
    python benchmarks/load.py --transport inprocess    # the same with in-process twins
    python benchmarks/load.py --levels 1 10 --turns 3 --avatar
    git worktree add /tmp/base <commit>                # before and after, in one run:
    python benchmarks/load.py --baseline-src /tmp/base/src

Prints a table and writes ``benchmarks/results/load.json`` (one entry per transport; the one
not run keeps its previous figures).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import json
import math
import os
import random
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

import latency_server as sim  # noqa: E402
from load_report import ms, print_table, print_target, target_of  # noqa: E402

import lexperience  # noqa: E402
from lexperience import Conversation, Persona  # noqa: E402
from lexperience.events import AudioEvent, ErrorEvent, TurnDone  # noqa: E402

RESULTS = HERE / "results" / "load.json"
TARGET_P95_RATIO = 1.5

PERSONA = Persona(
    name="Theo Calloway",
    prompt="You are Theo Calloway, the fictional host of an invented science podcast.",
    max_sentences=4,
)


@dataclass
class TurnRecord:
    conversation: int
    qid: int
    first_audio_s: float | None = None
    total_s: float | None = None
    problems: list[str] = field(default_factory=list)


def rss_mb() -> float:
    """Resident memory of this process now, in MiB."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def max_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_s() -> float:
    """CPU seconds this process has used (user + system, all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def process_cpu_s(pid: int) -> float:
    """CPU seconds another process has used (Linux ``/proc``; 0 when unreadable)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return 0.0


def check_turn(record: TurnRecord, reply: Any, profile: sim.LatencyProfile) -> None:
    """Does this reply belong to this question, and did all of it arrive?"""
    want = sim.question_text(record.qid)
    heard = reply.transcript.text if reply.transcript is not None else None
    if heard != want:
        record.problems.append(f"crosstalk: transcript {heard!r}, asked {want!r}")
    named = re.findall(r"question (\d+)", reply.text)
    if named != [str(record.qid)]:
        record.problems.append(f"crosstalk: reply names questions {named}, asked {record.qid}")
    if reply.audio is None:
        record.problems.append("lost: no reply audio")
        return
    expected = sum(sim.speech_seconds(s, profile) for s in reply.sentences)
    if not reply.sentences or abs(reply.audio.duration - expected) > 0.01 + 0.002 * expected:
        record.problems.append(
            f"lost: {reply.audio.duration:.3f} s of audio for sentences that take {expected:.3f} s"
        )


async def converse(
    index: int,
    conv: Conversation,
    turns: int,
    think: float,
    rng: random.Random,
    profile: sim.LatencyProfile,
    questions: dict[int, Any],
) -> list[TurnRecord]:
    """One user: ``turns`` unique questions, one after the other (their audio, by question
    number, is made before the clock starts: it is the users' work, not the library's)."""
    records: list[TurnRecord] = []
    for t in range(turns):
        await asyncio.sleep(rng.uniform(0.0, think))
        record = TurnRecord(conversation=index, qid=index * 1000 + t + 1)
        records.append(record)
        audio = questions[record.qid]
        started = time.perf_counter()
        reply = None
        try:
            async with contextlib.aclosing(conv.stream(audio)) as events:
                async for event in events:
                    if isinstance(event, AudioEvent) and record.first_audio_s is None:
                        record.first_audio_s = time.perf_counter() - started
                    elif isinstance(event, TurnDone):
                        reply = event.reply
                    elif isinstance(event, ErrorEvent):
                        raise event.error
        except Exception as exc:  # counted, not raised: the other users go on
            record.problems.append(f"lost: {type(exc).__name__}: {exc}")
            continue
        record.total_s = time.perf_counter() - started
        if reply is None:
            record.problems.append("lost: the turn ended without a reply")
        else:
            check_turn(record, reply, profile)
    # the history holds this user's questions and answers, in order, and nobody else's
    history = conv.history
    asked = [m.content for m in history if m.role == "user"]
    done = [sim.question_text(r.qid) for r in records if not r.problems]
    if asked != done:
        records[-1].problems.append(f"crosstalk: history asks {asked}, expected {done}")
    return records


async def run_level(
    url: str | None,
    profile: sim.LatencyProfile,
    n: int,
    turns: int,
    *,
    think: float,
    seed: int,
    avatar: bool,
    gc_freeze: bool = False,
) -> dict[str, Any]:
    """N conversations, ``turns`` turns each, all at once; the figures of the level.

    ``url`` is the latency server's; ``None`` uses the in-process twins of its services instead
    (no HTTP, no SDKs: what is left is the library itself)."""
    with tempfile.TemporaryDirectory() as folder:
        portrait = sim.fake_portrait(Path(folder)) if avatar else None

        def conversation() -> Conversation:
            if url is None:
                return Conversation(
                    stt=sim.TwinSTT(profile), llm=sim.TwinLLM(profile), tts=sim.TwinTTS(profile),
                    persona=PERSONA,
                )  # fmt: skip
            b = sim.cloud_backends(url, avatar=avatar, portrait=portrait)
            return Conversation(stt=b.stt, llm=b.llm, tts=b.tts, avatar=b.avatar, persona=PERSONA)

        # every question's audio, made now: 5 ms each on the loop would delay the other users
        questions = {
            i * 1000 + t + 1: sim.question_audio(i * 1000 + t + 1)
            for i in [*range(n), 999]
            for t in range(turns)
        }
        # warm-up: imports and first-use costs, not counted
        async with conversation() as warm:
            await converse(999, warm, 1, 0.0, random.Random(seed), profile, questions)
        rss_before = rss_mb()
        convs = [conversation() for _ in range(n)]
        rngs = [random.Random(seed * 100_003 + i) for i in range(n)]
        lag = sim.LoopLag()
        pauses = sim.GcPauses()
        lag.start()
        cpu0, wall0 = cpu_s(), time.perf_counter()
        for conv in convs:
            await conv.aopen()
        if gc_freeze:  # what `lexperience serve` does once its models are loaded
            gc.collect()
            gc.freeze()
        pauses.start()
        results = await asyncio.gather(
            *(
                converse(i, c, turns, think, rngs[i], profile, questions)
                for i, c in enumerate(convs)
            ),
            return_exceptions=True,
        )
        wall = time.perf_counter() - wall0
        cpu = cpu_s() - cpu0
        stall = await lag.stop()
        pauses.stop()
        for conv in convs:
            await conv.aclose()
    records: list[TurnRecord] = []
    crashed = 0
    for result in results:
        if isinstance(result, BaseException):
            crashed += 1
        else:
            records.extend(result)
    first_audio = [r.first_audio_s for r in records if r.first_audio_s is not None]
    # a conversation's first turn also builds its SDK clients; the later ones show steady state
    steady = [r.first_audio_s for r in records if r.first_audio_s is not None and r.qid % 1000 > 1]
    first_turns = [
        r.first_audio_s for r in records if r.first_audio_s is not None and r.qid % 1000 == 1
    ]
    totals = [r.total_s for r in records if r.total_s is not None and not r.problems]
    problems = [f"q{r.qid}: {p}" for r in records for p in r.problems]
    expected = n * turns
    completed = sum(1 for r in records if not r.problems)
    lost = expected - len(records)  # turns of conversations that crashed never ran
    lost += sum(1 for r in records if any(p.startswith("lost") for p in r.problems))
    crosstalk = sum(1 for r in records if any(p.startswith("crosstalk") for p in r.problems))
    return {
        "conversations": n,
        "library": str(Path(lexperience.__file__).resolve().parent),
        "turns_per_conversation": turns,
        "turns_expected": expected,
        "turns_completed": completed,
        "lost": lost,
        "crosstalk": crosstalk,
        "crashed_conversations": crashed,
        "problems": problems[:20],
        "first_audio_s": sim.summarize(first_audio),
        "first_audio_first_turns_s": sim.summarize(first_turns),
        "first_audio_later_turns_s": sim.summarize(steady),
        "total_s": sim.summarize(totals),
        "wall_s": round(wall, 3),
        "throughput_turns_per_s": round(completed / wall, 3) if wall else None,
        "worst_loop_stall_s": round(stall, 4),
        "gc_freeze": gc_freeze,
        "gc_full_collections": len(pauses.full),
        "gc_worst_full_pause_s": round(max(pauses.full, default=0.0), 4),
        "gc_pause_total_s": round(pauses.total, 4),
        "client_cpu_s_per_turn": round(cpu / max(1, completed), 4),
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(max_rss_mb(), 1),
        "peak_rss_per_conversation_mb": round((max_rss_mb() - rss_before) / n, 2),
        "records": [_record(r) for r in records],
    }


def _record(r: TurnRecord) -> dict[str, Any]:
    """One turn as stored in the JSON (the conversation is ``qid // 1000``)."""
    out: dict[str, Any] = {"qid": r.qid, "first_audio_s": r.first_audio_s, "total_s": r.total_s}
    for key in ("first_audio_s", "total_s"):
        if out[key] is not None:
            out[key] = round(out[key], 4)
    if r.problems:
        out["problems"] = r.problems
    return out


def run_child(
    url: str | None,
    profile: sim.LatencyProfile,
    n: int,
    args: argparse.Namespace,
    src: Path | None = None,
) -> Any:
    """Run one level in a fresh Python process (its peak memory is then the level's own);
    ``src``: import lexperience from that ``src`` folder instead (an older checkout)."""
    command = [
        sys.executable, __file__, "--child", url or "inprocess", "--levels", str(n),
        "--profile", json.dumps(profile.to_dict()), "--think", str(args.think),
        "--seed", str(args.seed), "--turns", str(args.turns),
        "--min-samples", str(args.min_samples),
    ]  # fmt: skip
    if args.avatar:
        command.append("--avatar")
    if args.gc_freeze:
        command.append("--gc-freeze")
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = os.pathsep.join([str(src), *filter(None, [env.get("PYTHONPATH")])])
    out = subprocess.run(
        command, capture_output=True, text=True, timeout=args.level_timeout, env=env
    )
    for line in reversed(out.stdout.splitlines()):
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    raise RuntimeError(f"level N={n} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")


def turns_for(n: int, args: argparse.Namespace) -> int:
    turns: int = args.turns
    samples: int = args.min_samples
    return max(turns, math.ceil(samples / n))


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="N concurrent conversations against the server.")
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 10, 50],
                        help="numbers of concurrent conversations")  # fmt: skip
    parser.add_argument("--turns", type=int, default=3, help="turns per conversation")
    parser.add_argument("--min-samples", type=int, default=10,
                        help="at least this many turns per level (N=1 runs more turns)")  # fmt: skip
    parser.add_argument("--think", type=float, default=0.5,
                        help="each turn starts after a random 0..THINK s pause")  # fmt: skip
    parser.add_argument("--seed", type=int, default=6)
    parser.add_argument("--avatar", action="store_true", help="add the Replicate avatar")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.collect() + gc.freeze() once the conversations are open, as "
                             "lexperience serve does after loading its models")  # fmt: skip
    parser.add_argument("--transport", choices=("http", "inprocess"), default="http",
                        help="http: the cloud backends and the latency server; inprocess: "
                             "in-process twins of the services (the library alone)")  # fmt: skip
    parser.add_argument("--scale", type=float, default=1.0, help="scale every latency")
    parser.add_argument("--no-isolate", action="store_true",
                        help="run every level in this process (peak memory is then cumulative)")  # fmt: skip
    parser.add_argument("--level-timeout", type=float, default=900.0,
                        help="give up on a level after this many seconds")  # fmt: skip
    parser.add_argument("--json", type=Path, default=RESULTS, help="where to write the results")
    parser.add_argument("--note", default="", help="a remark stored with the results")
    parser.add_argument("--baseline-src", type=Path, metavar="DIR",
                        help="also run each level with the lexperience of DIR (the src folder of "
                             "an older checkout), alternating with this tree's, against the same "
                             "server: before and after in one run")  # fmt: skip
    parser.add_argument("--child", metavar="URL", help=argparse.SUPPRESS)
    parser.add_argument("--profile", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if min(args.levels) < 1 or args.turns < 1 or args.think < 0 or args.scale <= 0:
        parser.error("levels and --turns must be >= 1, --think >= 0, --scale > 0")
    if args.transport == "inprocess" and args.avatar:
        parser.error("--avatar needs --transport http")
    if args.baseline_src is not None:
        if args.no_isolate:
            parser.error("--baseline-src runs the levels in child processes: drop --no-isolate")
        if not (args.baseline_src / "lexperience" / "__init__.py").is_file():
            parser.error(f"--baseline-src: no lexperience package in {args.baseline_src}")
        args.baseline_src = args.baseline_src.resolve()
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:  # one level, in a child process: print the result as one line
        profile = sim.LatencyProfile.from_dict(json.loads(args.profile))
        n = args.levels[0]
        url = None if args.child == "inprocess" else args.child
        level = asyncio.run(
            run_level(url, profile, n, turns_for(n, args), think=args.think,
                      seed=args.seed, avatar=args.avatar, gc_freeze=args.gc_freeze)
        )  # fmt: skip
        print("RESULT " + json.dumps(level), flush=True)
        return 0

    profile = sim.BENCH_PROFILE.scaled(args.scale)
    machine = sim.machine_info()
    started = datetime.datetime.now(datetime.timezone.utc)
    baseline = args.baseline_src
    levels: list[dict[str, Any]] = []
    before: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        server = stack.enter_context(sim.running(profile)) if args.transport == "http" else None
        url = server.url if server is not None else None
        for k, n in enumerate(args.levels):
            turns = turns_for(n, args)
            print(f"N={n}: {n} conversations x {turns} turns ({args.transport}) ...", flush=True)
            # with a baseline the two take turns going first, so that neither always gets the
            # machine in the state the other left it in
            variants = [None] if baseline is None else [baseline, None][:: 1 if k % 2 else -1]
            for src in variants:
                server_cpu = process_cpu_s(server.process.pid) if server is not None else None
                if args.no_isolate:
                    level = asyncio.run(
                        run_level(url, profile, n, turns, think=args.think, seed=args.seed,
                                  avatar=args.avatar, gc_freeze=args.gc_freeze)
                    )  # fmt: skip
                else:
                    level = run_child(url, profile, n, args, src)
                if server is not None and server_cpu is not None:
                    used = process_cpu_s(server.process.pid) - server_cpu
                    level["server_cpu_s_per_turn"] = round(
                        used / max(1, level["turns_completed"]), 4
                    )
                fa = level["first_audio_s"]
                print(
                    f"  {'baseline' if src else 'this tree'}: first audio p50 "
                    f"{ms(fa['median'])} p95 {ms(fa['p95'])}, "
                    f"{level['turns_completed']}/{level['turns_expected']} turns ok, "
                    f"{level['throughput_turns_per_s']} turns/s, peak {level['peak_rss_mb']} MB, "
                    f"gc: {level.get('gc_full_collections', '?')} full collections, worst "
                    f"{ms(level.get('gc_worst_full_pause_s'))}, "
                    f"{ms(level.get('gc_pause_total_s'))} in all",
                    flush=True,
                )
                (before if src else levels).append(level)
    machine["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    target = target_of(levels, TARGET_P95_RATIO)
    if baseline is not None:
        print_table(before, f"baseline: lexperience from {baseline}")
        print_target(target_of(before, TARGET_P95_RATIO), "baseline: ")
    print_table(levels, "this tree" if baseline is not None else "")
    print_target(target)
    clean = target["no_crosstalk_no_loss"]
    run = {
        "measured_at": started.isoformat(timespec="seconds"),
        "command": "python benchmarks/load.py "
        + " ".join(sys.argv[1:] if argv is None else list(argv)),
        "machine": machine,
        "profile": profile.to_dict(),
        "config": {
            "levels": args.levels,
            "turns": args.turns,
            "min_samples": args.min_samples,
            "think_s": args.think,
            "seed": args.seed,
            "avatar": args.avatar,
            "isolated_levels": not args.no_isolate,
            "transport": args.transport,
            "backends": (
                "OpenAISTT + OpenAILLM + OpenAITTS"
                + (" + ReplicateAvatar" if args.avatar else " (no avatar)")
                if args.transport == "http"
                else "in-process twins of the services (no HTTP, no SDKs)"
            ),
        },
        "target": target,
        "levels": levels,
    }
    if baseline is not None:
        run["baseline"] = {
            "src": str(baseline),
            "target": target_of(before, TARGET_P95_RATIO),
            "levels": before,
        }
    if args.note:
        run["note"] = args.note
    # one file, one entry per transport (a transport not run keeps its previous figures)
    result: dict[str, Any] = {}
    if args.json.is_file():
        with contextlib.suppress(ValueError):
            result = json.loads(args.json.read_text())
    result["benchmark"] = "load"
    result.setdefault("transports", {})[args.transport] = run
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    return 0 if clean else 1


if __name__ == "__main__":
    sys.exit(main())
