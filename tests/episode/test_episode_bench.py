"""Smoke test of benchmarks/episode.py without model turns: it runs and writes its figures."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_the_episode_benchmark_runs(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("bench_episode", BENCHMARKS / "episode.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    out = tmp_path / "episode.json"
    args = ["--skip-turns", "--index-runs", "1", "--queries", "20", "--json", str(out)]
    assert module.main(args) == 0
    data = json.loads(out.read_text())
    assert data["index"]["episode_minutes"] >= 179 and data["index"]["passages"] > 500
    lexical = data["search"]["lexical"]
    assert lexical["latency_ms"]["n"] == 20 and lexical["recall_at_5"]["question"] == "33/33"
    assert data["zipf"]["vocabulary"] > 1000 and "lexical_p95_ms" in data["targets"]
