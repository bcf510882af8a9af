"""Smoke test of ``benchmarks/dreamtalk.py`` on the stand-in network (tiny settings): it runs, is
labelled as the stand-in, and writes the figures a GPU owner would read."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_dreamtalk", BENCHMARKS / "dreamtalk.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_the_benchmark_runs_on_the_standin(tmp_path: Path, capsys: object) -> None:
    bench = _load()
    out = tmp_path / "dreamtalk.json"
    args = ["--standin", "--runs", "1", "--warmup", "0", "--seconds", "1.5", "--steps", "5", "2",
            "--json", str(out)]  # fmt: skip
    assert bench.main(args) == 0
    data = json.loads(out.read_text())
    assert data["benchmark"] == "dreamtalk" and data["setup"] == "standin"
    assert data["label"].startswith("STAND-IN")
    assert [(r["steps"], r["precision"]) for r in data["results"]] == [(5, "fp32"), (2, "fp32")]
    for row in data["results"]:
        assert row["frames"] == round(data["speech_s"] * 25)
        assert 0 < row["first_clip_s"] <= row["reply_s"]
        assert {"load_s", "frames_per_s", "x_realtime", "runs"} <= set(row)
        assert row["features_s"] > 0 and row["sample_s"] > 0 and row["render_s"] > 0
        assert row["features_s"] + row["sample_s"] + row["render_s"] <= row["reply_s"]
        assert "gpu_peak_mib" not in row  # the CPU has none
