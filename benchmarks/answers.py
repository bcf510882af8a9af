"""Answer quality of the offline host: a fixed set of listener questions, scored automatically.

Asks every question of :data:`QUESTIONS` (5 kinds: about the show, general knowledge, greetings,
follow-ups that need the history, off-topic or unanswerable) through ``Conversation`` with the
offline LLM (llama.cpp, the bundled model unless ``--model``) and a silent TTS, and scores each
answer on four checks (:func:`score`):

* **relevant**: the answer contains one of the question's reference keywords (word starts, so
  ``gravit`` matches "gravity" and "gravitational");
* **in persona**: no "as an AI", no assistant or model talk, no template tokens or role labels,
  and no other name than the persona's when it introduces itself;
* **no repetition**: the answer does not repeat the question (a long run of its words, or a first
  sentence that is nearly the question);
* **length**: 1 to ``max_sentences`` whole sentences, not cut off mid-sentence, at most 35 words
  per sentence of budget.

An answer passes when it passes all four; the rate is the share that pass, per kind and overall.
``--config both`` (default) runs the ``legacy`` set-up (the persona prompt, no examples and the
sampling lexperience used before issue 19) and the ``current`` one in the same process, on the
same model.

    python benchmarks/answers.py                 # all questions, legacy and current
    python benchmarks/answers.py --quick         # 2 questions per kind
    python benchmarks/answers.py --subset 3 --config current
    python benchmarks/answers.py --llm fake      # the scorer alone, on FakeLLM's echo

Writes ``benchmarks/results/answers.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import difflib
import json
import math
import os
import re
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lexperience import Conversation, Message, Persona  # noqa: E402
from lexperience.persona import DEFAULT_PERSONA  # noqa: E402
from lexperience.testing import FakeLLM, FakeTTS  # noqa: E402
from lexperience.text import split_sentences  # noqa: E402

KINDS = ("show", "general", "greeting", "followup", "offtopic")
_KNOW = ["know", "sure", "can't", "cannot", "idea", "unable", "no way", "guess", "wish"]


@dataclass(frozen=True)
class Question:
    kind: str
    text: str
    keywords: tuple[str, ...]
    history: tuple[tuple[str, str], ...] = ()


def q(kind: str, text: str, keywords: Sequence[str], *history: tuple[str, str]) -> Question:
    return Question(kind, text, tuple(keywords), tuple(history))


# fmt: off
QUESTIONS: tuple[Question, ...] = (
    # -- about the show and its host ---------------------------------------------------------
    q("show", "What's the name of this podcast?", ["slow signals", "signals", "podcast", "show"]),
    q("show", "Who are you?", ["theo", "calloway", "host"]),
    q("show", "What is your show about?", ["science", "curious", "ideas", "everyday", "signals"]),
    q("show", "Are you the host of this show?", ["host", "theo", "yes", "i am", "i'm"]),
    q("show", "What's your name?", ["theo"]),
    q("show", "Why did you start a podcast?", ["curio", "idea", "science", "podcast", "show",
                                                "love", "share", "fun", "learn"]),
    q("show", "How often do new episodes come out?", ["episode", "week", "month", "regular",
                                                      "every", *_KNOW]),
    q("show", "What kind of topics do you cover?", ["science", "idea", "everyday", "topic",
                                                    "curious", "life"]),
    # -- general knowledge -------------------------------------------------------------------
    q("general", "What is a black hole?", ["gravit", "light", "space", "star", "escape",
                                           "collapse", "mass"]),
    q("general", "Why is the sky blue?", ["light", "scatter", "sun", "wavelength", "atmospher",
                                          "air", "molecule"]),
    q("general", "How do plants make their food?", ["photosynth", "sunlight", "light", "carbon",
                                                    "water", "sugar", "lea", "energy"]),
    q("general", "What causes the seasons on Earth?", ["tilt", "axis", "sun", "orbit", "angle"]),
    q("general", "How far away is the Moon?", ["kilomet", "mile", "384", "238", "thousand",
                                               "far", "distance", "km"]),
    q("general", "What is DNA?", ["genet", "gene", "molecule", "cell", "code", "instruction",
                                  "hered", "deoxyribo"]),
    q("general", "Why do cats purr?", ["content", "happy", "vibrat", "heal", "comfort", "calm",
                                       "relax", "communicat"]),
    q("general", "How does a rainbow form?", ["light", "rain", "droplet", "water", "refract",
                                              "sun", "colo", "prism"]),
    q("general", "What makes the sound of thunder?", ["lightning", "air", "heat", "expand",
                                                      "shock", "boom"]),
    # -- greetings and small talk ------------------------------------------------------------
    q("greeting", "Hello world", ["hello", "hi", "hey", "welcome", "glad", "nice", "good"]),
    q("greeting", "Hi Theo!", ["hi", "hello", "hey", "glad", "welcome", "nice", "good"]),
    q("greeting", "Good morning.", ["morning", "hello", "hi", "good", "welcome"]),
    q("greeting", "Thanks for the show.", ["thank", "welcome", "glad", "pleasure", "enjoy",
                                           "happy"]),
    q("greeting", "How are you today?", ["well", "good", "great", "fine", "doing", "thank",
                                         "happy"]),
    q("greeting", "Hey there, nice to meet you.", ["nice", "meet", "hello", "hi", "glad",
                                                   "pleasure", "welcome"]),
    q("greeting", "Goodbye!", ["bye", "thank", "care", "soon", "later", "again", "next"]),
    q("greeting", "I love your podcast.", ["thank", "glad", "love", "happy", "kind", "enjoy"]),
    # -- follow-ups that need the history ----------------------------------------------------
    q("followup", "Could one swallow the Earth?", ["earth", "no", "unlikely", "far", "swallow",
                                                   "safe", "sun", "never"],
      ("What is a black hole?", "A black hole is a place where gravity is so strong that not "
       "even light escapes. It forms when a huge star collapses.")),
    q("followup", "Then why are sunsets red?", ["red", "orange", "sunset", "light", "longer",
                                                "scatter", "atmospher", "air"],
      ("Why is the sky blue?", "Sunlight scatters off the air, and blue light scatters the "
       "most. So the sky looks blue.")),
    q("followup", "So why are they contagious?", ["yawn", "contagio", "empath", "social", "brain",
                                                  "mirror", "copy", "see"],
      ("What was the last episode about?", "It was about yawning, and why yawns spread from "
       "one person to the next.")),
    q("followup", "How long would it take to drive there?", ["drive", "car", "hour", "day",
                                                             "month", "year", "week", "speed"],
      ("How far away is the Moon?", "The Moon is about 384,000 kilometres away.")),
    q("followup", "What are they made of?", ["ice", "rock", "dust", "particle", "water"],
      ("What's your favourite planet?", "I'd say Saturn, because of its beautiful rings.")),
    q("followup", "How do they talk to each other?", ["danc", "waggle", "smell", "scent",
                                                      "pheromone", "signal", "communicat"],
      ("Tell me about honeybees.", "Honeybees live in colonies and make honey from flower "
       "nectar. They also pollinate many crops.")),
    q("followup", "And what does its name mean?", ["slow", "signal", "idea", "time", "name",
                                                   "curious"],
      ("What's your show called?", "It's called Slow Signals, and I'm your host, Theo.")),
    q("followup", "Where is it kept in the body?", ["cell", "nucle"],
      ("What is DNA?", "DNA is the molecule that carries the instructions for building a "
       "living thing.")),
    # -- off-topic or unanswerable -----------------------------------------------------------
    q("offtopic", "What did I eat for breakfast this morning?", ["breakfast", *_KNOW]),
    q("offtopic", "What will the winning lottery numbers be?", ["predict", "random", "luck",
                                                                *_KNOW]),
    q("offtopic", "What is my password?", ["private", "never", "share", "safe", "password",
                                           *_KNOW]),
    q("offtopic", "The quick brown fox jumps over the lazy dog", ["fox", "dog", "sentence",
                                                                  "letter", "alphabet",
                                                                  "pangram"]),
    q("offtopic", "Can you fix my car's engine?", ["mechanic", "sorry", "engine", "car", "repair",
                                                   *_KNOW]),
    q("offtopic", "What will the stock market do tomorrow?", ["predict", "market", "stock",
                                                              "gamble", "invest", "price",
                                                              *_KNOW]),
    q("offtopic", "Write me a poem about socks.", ["sock", "poem", "feet", "foot", "warm", "toe",
                                                    "pair", "wool", "shoe"]),
    q("offtopic", "Who will win the next election?", ["predict", "vote", "election", *_KNOW]),
)
# fmt: on

# -- scoring ----------------------------------------------------------------------------------
_OUT_OF_PERSONA = [
    r"\bas an ai\b",
    r"\bi(?: am|'m) (?:just |only )?an? (?:ai|a\.i\.|artificial|language model|chatbot|bot|"
    r"computer program|virtual|digital assistant|assistant)\b",
    r"\b(?:ai|virtual|digital) assistant\b",
    r"\blanguage model\b",
    r"\bhow (?:can|may) i (?:assist|help) you\b",
    r"\b(?:openai|chatgpt|smollm|hugging ?face|llama)\b",
    r"<\|?|\|>|im_start|im_end",
    r"(?:^|\s)(?:user|assistant|listener|host|theo|question|answer)\s*:",
]
_NAME_INTRO = re.compile(
    r"\b(?i:my name is|i am|i'm|call me)\s+(?:(?:Dr|Mr|Mrs|Ms|Prof)\.?\s+)?([A-Z][a-z]{2,})"
)
_WORD = re.compile(r"[a-z0-9']+")


@dataclass
class Score:
    relevant: bool
    in_persona: bool
    no_repetition: bool
    length_ok: bool
    notes: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return self.relevant and self.in_persona and self.no_repetition and self.length_ok


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower().replace("’", "'"))


def _has_keyword(answer: str, keyword: str) -> bool:
    kw = keyword.lower()
    if " " in kw or "'" in kw:
        return kw in " ".join(_words(answer))
    return any(w.startswith(kw) for w in _words(answer))


def _longest_common_run(a: list[str], b: list[str]) -> int:
    match = difflib.SequenceMatcher(None, a, b, autojunk=False).find_longest_match(
        0, len(a), 0, len(b)
    )
    return match.size


def repeats_question(question: str, answer: str) -> bool:
    """Whether ``answer`` repeats ``question``: most of its words in a row, or a first sentence
    that is nearly the question."""
    qw, aw = _words(question), _words(answer)
    if len(qw) >= 4 and _longest_common_run(qw, aw) >= max(4, math.ceil(0.8 * len(qw))):
        return True
    first = split_sentences(answer)[:1]
    if first and len(qw) >= 3:
        ratio = difflib.SequenceMatcher(None, " ".join(qw), " ".join(_words(first[0]))).ratio()
        return ratio >= 0.8
    return False


def out_of_persona(answer: str, persona: Persona) -> str | None:
    """The phrase that breaks character, or ``None``."""
    lowered = answer.lower()
    for pattern in _OUT_OF_PERSONA:
        m = re.search(pattern, lowered)
        if m:
            return m.group().strip()
    allowed = {w for w in re.findall(r"[A-Za-z]+", persona.name)} | {"Slow", "Signals"}
    for m in _NAME_INTRO.finditer(answer):
        if m.group(1) not in allowed and m.group(1).lower() not in _COMMON:
            return m.group()
    return None


# Capitalised words after "I'm"/"this is" that are not names
_COMMON = {"glad", "happy", "sorry", "not", "here", "sure", "afraid", "the", "your", "just",
           "really", "very", "always", "delighted", "thrilled", "doing", "fine", "great", "well",
           "good", "going", "excited", "curious", "honestly", "still", "also", "what", "how",
           "why", "that", "one", "a", "an", "so", "too"}  # fmt: skip


def relevance_keywords(item: Question) -> list[str]:
    """The reference keywords that count: outside greetings, one that only matches the question's
    own words ("rain" in "How does a rainbow form?") would reward an echo, so it is left out."""
    if item.kind == "greeting":
        return list(item.keywords)
    asked = _words(item.text)
    return [k for k in item.keywords if not any(w.startswith(k.lower()) for w in asked)]


def score(item: Question, answer: str, persona: Persona) -> Score:
    notes: list[str] = []
    relevant = any(_has_keyword(answer, k) for k in relevance_keywords(item))
    if not relevant:
        notes.append("no reference keyword")
    broke = out_of_persona(answer, persona)
    if broke:
        notes.append(f"out of persona: {broke!r}")
    repeated = repeats_question(item.text, answer)
    if repeated:
        notes.append("repeats the question")
    sentences = split_sentences(answer)
    budget = persona.max_sentences
    complete = bool(re.search(r"[.!?…][\"'”’)]*\s*$", answer.strip()))
    words = len(_words(answer))
    length_ok = 1 <= len(sentences) <= budget and complete and 0 < words <= 35 * budget
    if not length_ok:
        notes.append(f"length: {len(sentences)} sentences, {words} words, complete={complete}")
    return Score(relevant, broke is None, not repeated, length_ok, notes)


# -- configurations ---------------------------------------------------------------------------
LEGACY_PROMPT = (
    "You are Theo Calloway, the fictional host of 'Slow Signals', an invented podcast about "
    "curious ideas in science and everyday life. You are warm, curious and concise. A "
    "listener has paused the episode to ask you a question: answer it directly and kindly, "
    "as the host would. If you do not know something, say so."
)
#: The persona and llama.cpp sampling before issue 19.
LEGACY = {"temperature": 0.6, "repeat_penalty": 1.1, "top_p": 0.9}


def legacy_persona() -> Persona:
    return DEFAULT_PERSONA.model_copy(update={"prompt": LEGACY_PROMPT, "examples": ()})


def subset(items: Sequence[Question], per_kind: int | None) -> list[Question]:
    if per_kind is None:
        return list(items)
    out: list[Question] = []
    for kind in KINDS:
        out += [i for i in items if i.kind == kind][:per_kind]
    return out


async def ask_all(
    conv: Conversation, items: Sequence[Question], *, verbose: bool = False
) -> list[dict[str, Any]]:
    rows = []
    for item in items:
        conv.clear_history()
        if item.history:
            conv.load_history(
                [m for u, a in item.history for m in (Message.user(u), Message.assistant(a))]
            )
        started = time.perf_counter()
        reply = await conv.areply(item.text)
        s = score(item, reply.text, conv.persona)
        rows.append({"kind": item.kind, "question": item.text, "answer": reply.text,
                     "passed": s.passed, **{k: v for k, v in asdict(s).items()},
                     "seconds": time.perf_counter() - started})  # fmt: skip
        if verbose:
            mark = "ok " if s.passed else "BAD"
            print(f"  {mark} [{item.kind}] {item.text!r} -> {reply.text!r} {s.notes or ''}")
    return rows


def rates(rows: Sequence[dict[str, Any]]) -> dict[str, Any]:
    def rate(sel: Sequence[dict[str, Any]], key: str) -> float:
        return sum(bool(r[key]) for r in sel) / len(sel) if sel else 0.0

    keys = ("passed", "relevant", "in_persona", "no_repetition", "length_ok")
    out: dict[str, Any] = {"overall": {k: rate(rows, k) for k in keys}, "n": len(rows)}
    out["kinds"] = {
        kind: {k: rate([r for r in rows if r["kind"] == kind], k) for k in keys}
        for kind in KINDS
        if any(r["kind"] == kind for r in rows)
    }
    return out


def print_rates(label: str, summary: dict[str, Any]) -> None:
    print(f"\n{label}: {summary['n']} questions")
    print(f"{'kind':<10}{'pass':>7}{'relevant':>10}{'persona':>9}{'no rep':>8}{'length':>8}")
    for kind, r in [*summary["kinds"].items(), ("overall", summary["overall"])]:
        print(f"{kind:<10}{r['passed']:>7.0%}{r['relevant']:>10.0%}{r['in_persona']:>9.0%}"
              f"{r['no_repetition']:>8.0%}{r['length_ok']:>8.0%}")  # fmt: skip


def make_llm(args: argparse.Namespace) -> Any:
    if args.llm == "fake":
        return FakeLLM()  # echoes the question: the scorer must fail it on repetition
    from lexperience.backends.llama_cpp_llm import LlamaCppLLM

    return LlamaCppLLM(args.model, seed=args.seed)


def configure(llm: Any, config: str, args: argparse.Namespace) -> Persona:
    if config == "legacy":
        sampling: dict[str, float] = dict(LEGACY)
        persona = legacy_persona()
    else:
        sampling = {}
        for name in ("temperature", "repeat_penalty", "top_p"):
            value = getattr(args, name)
            if value is not None:
                sampling[name] = value
        persona = DEFAULT_PERSONA
    if not isinstance(llm, FakeLLM):
        defaults = getattr(llm, "_defaults", None)
        if defaults is None:
            defaults = {n: getattr(llm, n) for n in ("temperature", "repeat_penalty", "top_p")}
            llm._defaults = defaults
        for name, value in {**defaults, **sampling}.items():
            setattr(llm, name, float(value))
        if hasattr(llm, "reset"):
            llm.reset()  # the other configuration's prompt is no longer a prefix
    return persona


async def main_async(args: argparse.Namespace) -> dict[str, Any]:
    items = subset(QUESTIONS, args.subset)
    llm = make_llm(args)
    configs = ("legacy", "current") if args.config == "both" else (args.config,)
    results: dict[str, Any] = {}
    for config in configs:
        persona = configure(llm, config, args)
        conv = Conversation(llm=llm, tts=FakeTTS(seconds_per_char=0.001), persona=persona)
        await conv.aopen()
        print(f"{config}: asking {len(items)} questions ...", flush=True)
        started = time.perf_counter()
        rows = await ask_all(conv, items, verbose=args.verbose)
        summary = rates(rows)
        summary["seconds"] = time.perf_counter() - started
        summary["sampling"] = {n: getattr(llm, n, None)
                               for n in ("temperature", "repeat_penalty", "top_p")}  # fmt: skip
        print_rates(config, summary)
        results[config] = {"summary": summary, "rows": rows}
    if hasattr(llm, "aclose"):
        await llm.aclose()
    return {
        "benchmark": "answers",
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "llm": args.llm,
        "model": str(getattr(llm, "model_path", "fake")),
        "seed": args.seed,
        "questions": len(items),
        "results": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--subset", type=int, default=None, metavar="N",
                        help="the first N questions of each kind")  # fmt: skip
    parser.add_argument("--quick", action="store_true", help="same as --subset 2")
    parser.add_argument("--config", choices=("both", "legacy", "current"), default="both")
    parser.add_argument("--llm", choices=("llama-cpp", "fake"), default="llama-cpp")
    parser.add_argument("--model", type=Path, default=None, help="a GGUF (default: bundled)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--temperature", type=float, default=None, help="current config only")
    parser.add_argument("--repeat-penalty", type=float, default=None, dest="repeat_penalty")
    parser.add_argument("--top-p", type=float, default=None, dest="top_p")
    parser.add_argument("--verbose", "-v", action="store_true", help="print every answer")
    parser.add_argument("--json", type=Path, default=HERE / "results" / "answers.json")
    args = parser.parse_args(argv)
    if args.quick and args.subset is None:
        args.subset = 2
    if args.subset is not None and args.subset < 1:
        parser.error("--subset must be at least 1")
    result = asyncio.run(main_async(args))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", "utf-8")
    print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
