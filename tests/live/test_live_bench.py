"""The live-mode benchmark runs end to end (with in-process fakes on a real-time room)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_the_live_benchmark_runs_with_fakes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "live.py"), "--runs", "1", "--stack", "fake",
         "--no-save"],
        capture_output=True, text=True, timeout=300, check=True,
    )  # fmt: skip
    out = done.stdout
    for line in ("(a) reply() on the clip", "(b) live", "(c) live, preemptive",
                 "barge-in to interrupted", "(b) - (a) ="):  # fmt: skip
        assert line in out, out
