"""First-playback latency of the Gradio app, measured in a real headless Chromium.

What a listener waits for: from the end of the question (the click on Ask after uploading
``examples/question.wav``) to the first sample of the reply *playing* in the browser (the media
element's first ``playing`` event), for two stacks in one run:

* ``fake``: the shipped fake backends with scripted latency (STT 0.2 s, LLM first token 0.15 s
  then 25 words/s, TTS 0.5 s of work per second of speech, a 96x96 avatar), the same as the browser tests;
* ``offline``: the local stack (faster-whisper tiny.en, SmolLM2-135M through llama.cpp, Piper,
  the portrait avatar), skipped with a note when the ``local`` extra is missing.

Each figure is split where the time goes, on one wall clock (browser and server share the
machine): *dispatch* (click -> the Gradio handler starts the turn), *server* (the turn's own
``first_audio_s``, i.e. what ``Conversation.stream()`` takes in-process for this turn),
*deliver* (the first audio exists -> its first bytes reach the browser: waiting for the first
video frame, reported apart as ``first_frame_wait``, then encoding and HTTP) and *buffer* (first bytes -> playback starts: Media Source
Extensions and the decoder). After one warm-up turn, ``--runs`` turns per stack; medians.

    python benchmarks/ui.py --runs 5
    python benchmarks/ui.py --runs 5 --stack fake

Needs Chromium at /usr/bin/chromium (scripts/install-system-deps.sh) and playwright. Prints a
table and writes ``benchmarks/results/ui.json``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT / "tests" / "ui"))

from ui_support import (  # noqa: E402
    open_app,
    player_stats,
    served,
    slow_fake_stack,
    upload_question,
    wait_until,
)

from lexperience._optional import is_installed  # noqa: E402
from lexperience.config import Settings  # noqa: E402
from lexperience.ui import UIConfig  # noqa: E402

RESULTS = HERE / "results" / "ui.json"
QUESTION = ROOT / "examples" / "question.wav"
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


def one_turn(page: Any, runtime: Any) -> dict[str, float]:
    """Upload the question, ask, wait for playback and the end; the turn's figures (ms)."""
    upload_question(page, QUESTION)
    turns = player_stats(page)["turns"]
    page.click("#lex-chat-ask")
    stats = wait_until(
        lambda: (s := player_stats(page))["turns"] > turns and s["firstPlayingAt"] and s,
        timeout=120, what="playback",
    )  # fmt: skip
    origin = page.evaluate("() => performance.timeOrigin")
    view = next(s.chat for s in runtime.sessions.sessions() if s.chat and s.chat.reply)
    wait_until(lambda: not view.running, timeout=120, what="the turn to end")
    reply, metrics = view.reply, view.metrics
    wall = lambda ms: (origin + ms) / 1000.0  # noqa: E731 - browser ms -> epoch seconds
    armed, playing = wall(stats["armedAt"]), wall(stats["firstPlayingAt"])
    first_bytes = wall(stats["firstBytesAt"])
    server_first_audio = reply.asked_at + metrics.first_audio_s
    return {
        "first_playback_ms": (playing - armed) * 1000,
        "dispatch_ms": (reply.asked_at - armed) * 1000,
        "server_first_audio_ms": metrics.first_audio_s * 1000,
        # of "deliver": waiting for the avatar's first frame (the stream starts with one)
        "first_frame_wait_ms": max(
            0.0, (metrics.first_video_s or metrics.first_audio_s) - metrics.first_audio_s
        )
        * 1000,
        "deliver_ms": (first_bytes - server_first_audio) * 1000,
        "buffer_ms": (playing - first_bytes) * 1000,
        "turn_total_ms": metrics.total_s * 1000,
        "played_before_turn_end": float(
            stats["streamEndAt"] is None or stats["firstPlayingAt"] < stats["streamEndAt"]
        ),
    }


def run_stack(name: str, stack: Settings, runs: int, browser: Any) -> dict[str, Any]:
    rows: list[dict[str, float]] = []
    with served(UIConfig(stack=stack)) as (url, runtime):
        context, page = open_app(browser, url)
        wait_until(lambda: runtime.ready or runtime.load_error, timeout=180, what="the models")
        if runtime.load_error:
            raise SystemExit(f"{name}: {runtime.load_error}")
        for i in range(runs + 1):
            row = one_turn(page, runtime)
            tag = "warm-up" if i == 0 else f"run {i}/{runs}"
            print(f"  {name:<8} {tag:>9}  first playback {row['first_playback_ms']:6.0f} ms  "
                  f"(dispatch {row['dispatch_ms']:4.0f} + server {row['server_first_audio_ms']:5.0f}"
                  f" + deliver {row['deliver_ms']:4.0f} [frame {row['first_frame_wait_ms']:.0f}]"
                  f" + buffer {row['buffer_ms']:4.0f})",
                  flush=True)  # fmt: skip
            if i:
                rows.append(row)
            time.sleep(0.5)
        context.close()
    return {
        "runs": rows,
        "median": {k: statistics.median(r[k] for r in rows) for k in rows[0]},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--stack", choices=("fake", "offline", "both"), default="both")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    stacks: dict[str, Settings] = {}
    if args.stack in ("fake", "both"):
        stacks["fake"] = slow_fake_stack()
    if args.stack in ("offline", "both"):
        if is_installed("llama_cpp") and is_installed("faster_whisper") and is_installed("piper"):
            stacks["offline"] = Settings()
        else:
            print('offline stack skipped: pip install "lexperience[local]"')
    results: dict[str, Any] = {
        "date": datetime.date.today().isoformat(),
        "question": str(QUESTION.relative_to(ROOT)),
        "runs": args.runs,
        "stacks": {},
    }
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for name, stack in stacks.items():
            results["stacks"][name] = run_stack(name, stack, args.runs, browser)
        browser.close()
    print(f"\nmedians of {args.runs} runs (ms)")
    print(f"{'stack':<9}{'first playback':>15}{'dispatch':>10}{'server':>9}{'deliver':>9}"
          f"{'buffer':>8}{'turn total':>12}")  # fmt: skip
    for name, data in results["stacks"].items():
        m = data["median"]
        print(f"{name:<9}{m['first_playback_ms']:>15.0f}{m['dispatch_ms']:>10.0f}"
              f"{m['server_first_audio_ms']:>9.0f}{m['deliver_ms']:>9.0f}{m['buffer_ms']:>8.0f}"
              f"{m['turn_total_ms']:>12.0f}")  # fmt: skip
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=1) + "\n")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
