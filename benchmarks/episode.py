"""Podcast companion: indexing, search latency, retrieval quality, and what the episode context
costs a turn's first audio.

Parts (all in one run, figures side by side):

1. ``index``: building the search index of a synthetic 3-hour episode (lexical; and embedding
   every passage with WordLlama when the ``semantic`` extra is installed), median of
   ``--index-runs``.
2. ``search``: ``Episode.search`` latency p50/p95 over ``--queries`` questions at random
   positions (lexical and hybrid), and recall@5 of the fact passages of the synthetic episode
   (questions, paraphrases, and "hard" paraphrases that share no word with the fact).
3. ``turns`` (needs the ``local`` extra): the first-audio time of a plain turn and of companion
   turns on the same typed question about the sample episode, interleaved in one run, with
   llama.cpp (SmolLM2-135M) and Piper. Every run starts from the same LLM cache: the persona's
   system message evaluated (what ``Conversation.aopen`` leaves). Modes:
   ``plain`` (no episode), ``companion`` (the episode context, evaluated in the turn) and
   ``primed`` (``EpisodeContext.prime`` ran when the listener paused, before the question).
   ``--budgets`` repeats the companion modes for several context budgets.
4. ``answers`` (``--answers``, local extra): how often SmolLM2-135M's answer contains the fact,
   over the sample episode's questions.

    python benchmarks/episode.py                      # everything this machine can run
    python benchmarks/episode.py --runs 7 --budgets 200,360,600
    python benchmarks/episode.py --skip-turns         # index and search only (no models)

Prints tables and writes ``benchmarks/results/episode.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import random
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SAMPLE = ROOT / "examples" / "episode" / "slow-signals-12.json"
os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing may reach the network

from lexperience import Conversation, Episode, EpisodeContext, Message, TurnDone  # noqa: E402
from lexperience._optional import is_installed  # noqa: E402
from lexperience.context import estimate_tokens  # noqa: E402
from lexperience.episode import DEFAULT_BUDGET_TOKENS, EpisodeIndex  # noqa: E402
from lexperience.testing.episodes import synthetic_episode  # noqa: E402

TARGETS = {"lexical_p95_ms": 5.0, "hybrid_p95_ms": 30.0, "companion_added_ms": 50.0}

#: The sample episode's questions and what a right answer contains.
QUESTIONS = (
    ("How much did Tamsin pay for her first cassette recorder?", r"forty|\b40\b"),
    ("What frequency does the storm drain on Harrow Street hum at?", r"fifty[ -]eight|\b58\b"),
    ("When is the city at its quietest?", r"ten past four|4[:.]10|tuesday"),
    ("What is the record for counting layers in one minute?", r"fourteen|\b14\b"),
    ("How many recordings are in the Night Map?", r"two hundred and twelve|\b212\b"),
    ("How much earlier do the ring road blackbirds start singing?", r"forty|\b40\b"),
    ("When was the foundry's last bell cast?", r"sixty[ -]one|1961"),
    ("Where did Tamsin buy her first recorder?", r"lisbon|flea market"),
)
TURN_QUESTION = "What frequency does the storm drain on Harrow Street hum at?"


def stats(values: list[float]) -> dict[str, float]:
    arr = np.asarray(values, dtype=np.float64)
    return {
        "n": len(values),
        "median": float(np.median(arr)),
        "p95": float(np.percentile(arr, 95)),
        "min": float(arr.min()),
        "max": float(arr.max()),
    }


# -- 1 and 2: index and search -----------------------------------------------------------------
def zipf_episode(minutes: float = 180.0, vocabulary: int = 8000, seed: int = 3) -> Episode:
    """Talk with a realistic word distribution: ``vocabulary`` made-up words drawn with Zipf's
    law (s = 1.1), 2.6 words a second, three speakers."""
    from lexperience.episode import Segment

    rng = np.random.default_rng(seed)
    letters = list("abcdefghijklmnopqrstuvwxyz")
    made_up = {
        "".join(rng.choice(letters, size=int(rng.integers(3, 10)))) for _ in range(vocabulary)
    }
    words = sorted(made_up)
    weights = 1.0 / np.arange(1, len(words) + 1) ** 1.1
    weights /= weights.sum()
    segments, t = [], 1.0
    while t < minutes * 60:
        n = int(rng.integers(6, 30))
        text = " ".join(rng.choice(words, size=n, p=weights))
        segments.append(
            Segment(
                start=t,
                end=t + n / 2.6,
                text=text,
                speaker=("A", "B", "C")[int(rng.integers(0, 3))],
            )
        )
        t += n / 2.6 + 0.4
    return Episode(segments=tuple(segments))


def bench_zipf(queries: int) -> dict[str, Any]:
    ep = zipf_episode()
    started = time.perf_counter()
    index = ep.index()
    built = time.perf_counter() - started
    rng = random.Random(4)
    vocab = sorted({w for s in ep.segments[:400] for w in s.text.split()})
    times = []
    for _ in range(queries):
        question = " ".join(rng.choice(vocab) for _ in range(6))
        before = rng.uniform(60, ep.length)
        started = time.perf_counter()
        ep.search(question, before=before, k=5)
        times.append((time.perf_counter() - started) * 1000)
    return {
        "segments": len(ep.segments),
        "passages": len(index.spans),
        "words": sum(len(s.text.split()) for s in ep.segments),
        "vocabulary": index.bm25.vocabulary,
        "index_s": built,
        "lexical_latency_ms": stats(times),
    }


def bench_index(runs: int) -> tuple[dict[str, Any], Any]:
    syn = synthetic_episode(minutes=180)
    ep = syn.episode
    lexical = []
    for _ in range(runs):
        started = time.perf_counter()
        EpisodeIndex(ep.segments)
        lexical.append(time.perf_counter() - started)
    index = EpisodeIndex(ep.segments)
    out: dict[str, Any] = {
        "episode_minutes": round(ep.length / 60, 1),
        "segments": len(ep.segments),
        "passages": len(index.spans),
        "words": sum(len(s.text.split()) for s in ep.segments),
        "vocabulary": index.bm25.vocabulary,
        "lexical_s": stats(lexical),
    }
    if is_installed("wordllama"):
        from lexperience.backends.wordllama_embedder import WordLlamaEmbedder

        embedder = WordLlamaEmbedder()
        started = time.perf_counter()
        embedder.load()
        out["embedder_load_s"] = time.perf_counter() - started
        embed = []
        for _ in range(runs):
            started = time.perf_counter()
            index.set_embedder(embedder)
            embed.append(time.perf_counter() - started)
        out["embed_passages_s"] = stats(embed)
    return out, syn


def bench_search(syn: Any, queries: int) -> dict[str, Any]:
    ep: Episode = syn.episode
    rng = random.Random(1)
    asked = []
    for _ in range(queries):
        fact = rng.choice(syn.facts)
        asked.append((rng.choice((fact.question, fact.paraphrase)), rng.uniform(60, ep.length)))
    out: dict[str, Any] = {}
    modes = ["lexical"] + (["hybrid"] if is_installed("wordllama") else [])
    for mode in modes:
        if mode == "hybrid":
            ep.use_embeddings()
        else:
            ep.use_embeddings(False)
        ep.search("warm up", before=ep.length)
        times = []
        for question, before in asked:
            started = time.perf_counter()
            ep.search(question, before=before, k=5)
            times.append((time.perf_counter() - started) * 1000)
        ctx = EpisodeContext(ep)
        briefs = []
        for question, before in asked:
            ctx.position = before
            started = time.perf_counter()
            ctx.brief(question)
            briefs.append((time.perf_counter() - started) * 1000)
        out[mode] = {
            "latency_ms": stats(times),
            "context_ms": stats(briefs),
            "recall_at_5": recall(syn),
        }
    ep.use_embeddings(False)
    return out


def recall(syn: Any) -> dict[str, str]:
    ep: Episode = syn.episode
    rng = random.Random(5)
    hits: dict[str, list[bool]] = {"question": [], "paraphrase": [], "hard paraphrase": []}
    for i, fact in enumerate(syn.facts):
        seg = syn.fact_segment(i)
        before = min(ep.length, seg.end + rng.uniform(30, 900))
        for kind, text in (("question", fact.question), ("paraphrase", fact.paraphrase)):
            found = any(p.start <= seg.start < p.end for p in ep.search(text, before=before, k=5))
            hits["hard paraphrase" if kind == "paraphrase" and fact.hard else kind].append(found)
    return {k: f"{sum(v)}/{len(v)}" for k, v in hits.items()}


# -- 3 and 4: turns with the real offline models ------------------------------------------------
async def one_turn(
    conv: Conversation, question: str, *, mode: str, ctx: EpisodeContext | None
) -> dict[str, Any]:
    llm: Any = conv.backends.llm
    conv.clear_history()
    conv.context = [ctx] if ctx is not None and mode != "plain" else []
    await asyncio.to_thread(llm.reset)
    # as Conversation.aopen leaves it: the persona's system message and few-shot turns evaluated
    await llm.aprime(conv.persona.prompt_messages())
    if mode == "primed":
        assert ctx is not None
        await ctx.prime(conv)  # the listener paused; they are now asking
    reply = None
    async for event in conv.stream(question):
        if isinstance(event, TurnDone):
            reply = event.reply
    assert reply is not None
    return {
        "first_token_s": reply.metrics.first_token_s,
        "first_audio_s": reply.metrics.first_audio_s,
        "reply": reply.text,
    }


#: Where the listener pauses for the turn benchmark: at the end (the storm drain came up 1:40
#: earlier: found by retrieval) and 20 s after it (it is in the recent minutes).
POSITIONS = {"end": None, "just after": 100.0}


async def bench_turns(runs: int, budgets: list[int], answers: bool, seed: int) -> dict[str, Any]:
    from lexperience.backends.llama_cpp_llm import LlamaCppLLM
    from lexperience.backends.piper_tts import PiperTTS

    episode = Episode.load(SAMPLE)
    llm = LlamaCppLLM(seed=seed)
    conv = Conversation(llm=llm, tts=PiperTTS(with_visemes=False))
    out: dict[str, Any] = {"question": TURN_QUESTION, "cases": {}}
    async with conv:
        model = llm.load()

        def real_tokens(messages: tuple[Message, ...]) -> list[int]:
            return [len(model.tokenize(m.content.encode(), add_bos=False)) for m in messages]

        cases: dict[str, EpisodeContext] = {}
        for where, at in POSITIONS.items():
            for b in budgets:
                ctx = EpisodeContext(
                    episode, position=episode.length if at is None else at, budget_tokens=b
                )
                ctx.prepare()
                cases[f"{where}, budget {b}"] = ctx
        await one_turn(conv, TURN_QUESTION, mode="plain", ctx=None)  # warm-up
        rows: dict[str, list[dict[str, Any]]] = {"plain": []}
        for i in range(runs):
            rows["plain"].append(await one_turn(conv, TURN_QUESTION, mode="plain", ctx=None))
            for name, ctx in cases.items():
                for mode in ("companion", "primed"):
                    row = await one_turn(conv, TURN_QUESTION, mode=mode, ctx=ctx)
                    rows.setdefault(f"{mode}|{name}", []).append(row)
            print(f"  run {i + 1}/{runs} done", flush=True)
        plain = summarise_turns(rows["plain"])
        out["plain"] = plain
        for name, ctx in cases.items():
            brief = ctx.brief(TURN_QUESTION, persona=conv.persona)
            entry: dict[str, Any] = {
                "position_s": ctx.position,
                "estimated_tokens": [estimate_tokens(m.content) for m in brief.messages],
                "llama_tokens": real_tokens(brief.messages),
                "passages": [p.timestamp for p in brief.passages],
            }
            for mode in ("companion", "primed"):
                s = summarise_turns(rows[f"{mode}|{name}"])
                for metric in ("first_token_s", "first_audio_s"):
                    s[f"added_{metric[:-2]}_ms"] = (
                        s[metric]["median"] - plain[metric]["median"]
                    ) * 1000
                entry[mode] = s
            out["cases"][name] = entry
        if answers:
            out["answers"] = await bench_answers(conv, episode)
    return out


def summarise_turns(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "first_token_s": stats([r["first_token_s"] for r in rows]),
        "first_audio_s": stats([r["first_audio_s"] for r in rows]),
        "reply": rows[-1]["reply"],
    }


async def bench_answers(conv: Conversation, episode: Episode) -> dict[str, Any]:
    ctx = EpisodeContext(episode, position=episode.length)
    conv.context = [ctx]
    results = []
    for question, pattern in QUESTIONS:
        conv.clear_history()
        reply = await conv.areply(question)
        results.append(
            {
                "question": question,
                "reply": reply.text,
                "right": bool(re.search(pattern, reply.text, re.I)),
            }
        )
    return {"right": sum(r["right"] for r in results), "asked": len(results), "results": results}


# -- report ---------------------------------------------------------------------------------------
def report(data: dict[str, Any]) -> None:
    ix = data["index"]
    print(
        f"\nsynthetic episode: {ix['episode_minutes']} min, {ix['segments']} segments, "
        f"{ix['passages']} passages, {ix['words']} words, {ix['vocabulary']} stems"
    )
    print(f"index (lexical):       median {ix['lexical_s']['median'] * 1000:8.1f} ms")
    if "embed_passages_s" in ix:
        print(
            f"embed passages:        median {ix['embed_passages_s']['median'] * 1000:8.1f} ms "
            f"(model load {ix['embedder_load_s'] * 1000:.0f} ms, once)"
        )
    print(
        f"\n{'search':<10}{'p50 ms':>9}{'p95 ms':>9}{'context p50/p95 ms':>22}   "
        "recall@5 (question / paraphrase / hard)"
    )
    for mode, s in data["search"].items():
        r = s["recall_at_5"]
        c = s["context_ms"]
        print(
            f"{mode:<10}{s['latency_ms']['median']:>9.3f}{s['latency_ms']['p95']:>9.3f}"
            f"{c['median']:>13.2f} / {c['p95']:<6.2f}   "
            f"{r['question']} / {r['paraphrase']} / {r['hard paraphrase']}"
        )
    z = data["zipf"]
    print(
        f"\nZipf-vocabulary 3-hour episode: {z['words']} words, {z['vocabulary']} stems, "
        f"{z['passages']} passages: index {z['index_s'] * 1000:.0f} ms, search p50 "
        f"{z['lexical_latency_ms']['median']:.3f} ms, p95 "
        f"{z['lexical_latency_ms']['p95']:.3f} ms"
    )
    turns = data.get("turns")
    if turns:
        plain = turns["plain"]
        print(
            f"\ntyped question, {plain['first_audio_s']['n']} interleaved runs, medians "
            "(llama.cpp SmolLM2-135M + Piper):"
        )
        print(
            f"  {'plain turn':<34} first token {plain['first_token_s']['median']:6.3f} s, "
            f"first audio {plain['first_audio_s']['median']:6.3f} s"
        )
        for name, entry in turns["cases"].items():
            tokens = "+".join(str(t) for t in entry["llama_tokens"])
            print(f"  {name} (context {tokens} llama tokens, passages {entry['passages']}):")
            for mode in ("companion", "primed"):
                s = entry[mode]
                print(
                    f"    {mode:<10} first token {s['first_token_s']['median']:6.3f} s "
                    f"({s['added_first_token_ms']:+6.0f} ms), first audio "
                    f"{s['first_audio_s']['median']:6.3f} s ({s['added_first_audio_ms']:+6.0f} ms)"
                )
        if "answers" in turns:
            a = turns["answers"]
            print(f"\nanswers containing the fact: {a['right']}/{a['asked']}")
    print()
    for name, limit in TARGETS.items():
        value = data.get("targets", {}).get(name)
        if value is not None:
            verdict = "met" if value <= limit else "MISSED"
            print(f"target {name} <= {limit:g}: {value:.1f} -> {verdict}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--index-runs", type=int, default=5)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--runs", type=int, default=5, help="interleaved turns per mode")
    parser.add_argument(
        "--budgets",
        default=str(DEFAULT_BUDGET_TOKENS),
        help="comma-separated context budgets (tokens) to compare",
    )
    parser.add_argument("--answers", action="store_true", help="measure the answer rate too")
    parser.add_argument("--skip-turns", action="store_true", help="no model turns")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", type=Path, default=HERE / "results" / "episode.json")
    args = parser.parse_args(argv)

    data: dict[str, Any] = {
        "benchmark": "episode",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "python": sys.version.split()[0],
            "cpus": os.cpu_count(),
        },
    }
    print("indexing a 3-hour synthetic episode ...", flush=True)
    data["index"], syn = bench_index(args.index_runs)
    print("searching ...", flush=True)
    data["search"] = bench_search(syn, args.queries)
    data["zipf"] = bench_zipf(args.queries)
    targets = {"lexical_p95_ms": data["search"]["lexical"]["latency_ms"]["p95"]}
    if "hybrid" in data["search"]:
        targets["hybrid_p95_ms"] = data["search"]["hybrid"]["latency_ms"]["p95"]
    if not args.skip_turns:
        if is_installed("llama_cpp") and is_installed("piper"):
            budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
            print("turns with the offline models ...", flush=True)
            data["turns"] = asyncio.run(bench_turns(args.runs, budgets, args.answers, args.seed))
            default = data["turns"]["cases"].get(f"end, budget {budgets[0]}", {})
            if "primed" in default:
                targets["companion_added_ms"] = default["primed"]["added_first_audio_ms"]
        else:
            print('note: turns need the local extra (pip install "lexperience[local]"): skipped')
    data["targets"] = targets
    report(data)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
