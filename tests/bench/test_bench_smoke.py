"""Smoke test of the benchmarks: scenario B of ``benchmarks/latency.py`` and
``benchmarks/load.py`` with tiny settings (latencies scaled to a tenth, one measured run, two
conversations), through their ``main`` functions, against their local latency server.

It checks the shape of the JSON they write, that streaming reaches the first audio sooner than
the sequential flow, and that the load run lost nothing and mixed nothing up. The real figures
come from the full runs documented in docs/performance.md.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

import pytest

pytestmark = pytest.mark.cloud

pytest.importorskip("openai")
pytest.importorskip("starlette")
pytest.importorskip("uvicorn")

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SUMMARY_KEYS = {"n", "median", "p95", "min", "max", "values"}


def _load(name: str) -> ModuleType:
    """Import benchmarks/<name>.py under a name that cannot clash with other modules."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCHMARKS / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it is being run
    spec.loader.exec_module(module)
    return module


def test_latency_scenario_b_streams_sooner_than_the_sequential_flow(tmp_path: Path) -> None:
    latency = _load("latency")
    out = tmp_path / "latency.json"
    args = ["--scenario", "B", "--runs", "1", "--warmup", "1", "--scale", "0.1", "--no-avatar",
            "--json", str(out), "--no-chart"]  # fmt: skip
    assert latency.main(args) == 0

    data = json.loads(out.read_text())
    assert data["benchmark"] == "latency"
    b = data["scenarios"]["B"]
    assert b["runs"] == 1 and b["profile"]["stt_s"] == pytest.approx(0.035)
    assert {"cpus", "platform", "python"} <= set(b["machine"])
    for mode in ("streaming", "sequential"):
        for metric in ("first_audio_s", "first_video_s", "total_s", "loop_stall_s"):
            assert set(b[mode][metric]) >= SUMMARY_KEYS, (mode, metric)
        assert b[mode]["first_audio_s"]["n"] == 1
        assert b[mode]["first_video_s"]["n"] == 0  # no avatar in this run
        assert b[mode]["sentences"], mode
    # both modes spoke the same reply (one TTS call per piece, or one for all: the same length,
    # give or take the spaces between the pieces)
    assert b["streaming"]["sentences"] == b["sequential"]["sentences"]
    assert b["streaming"]["reply_audio_s"]["median"] == pytest.approx(
        b["sequential"]["reply_audio_s"]["median"], rel=0.02
    )
    streaming = b["streaming"]["first_audio_s"]["median"]
    sequential = b["sequential"]["first_audio_s"]["median"]
    assert streaming < sequential
    assert b["ratios"]["first_audio_s"] > 1.0
    overhead = b["overhead"]
    assert overhead["first_piece_tokens"] > 0
    for key in ("vs_profile_s", "vs_server_measured_s", "in_process_twins_s"):
        assert set(overhead[key]) >= SUMMARY_KEYS
        assert overhead[key]["n"] == 1
    assert overhead["targets_s"] == {"issue_6": 0.1, "issue_5": 0.02}


def test_load_two_conversations_lose_nothing_and_keep_their_own_replies(tmp_path: Path) -> None:
    load = _load("load")
    out = tmp_path / "load.json"
    args = ["--levels", "2", "--turns", "1", "--min-samples", "1", "--think", "0",
            "--scale", "0.1", "--no-isolate", "--json", str(out)]  # fmt: skip
    assert load.main(args) == 0

    data = json.loads(out.read_text())
    assert data["benchmark"] == "load"
    run = data["transports"]["http"]
    assert run["config"]["avatar"] is False and run["config"]["transport"] == "http"
    [level] = run["levels"]
    assert level["conversations"] == 2
    assert level["turns_expected"] == level["turns_completed"] == 2
    assert level["lost"] == 0 and level["crosstalk"] == 0 and level["problems"] == []
    assert set(level["first_audio_s"]) >= SUMMARY_KEYS and level["first_audio_s"]["n"] == 2
    assert level["throughput_turns_per_s"] > 0 and level["peak_rss_mb"] > 0
    assert {r["qid"] for r in level["records"]} == {1, 1001}
    assert level["server_cpu_s_per_turn"] >= 0
    assert run["target"]["no_crosstalk_no_loss"] is True
