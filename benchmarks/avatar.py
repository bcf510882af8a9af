"""Benchmark of the ``portrait`` avatar: render speed, speed with H.264 encoding, latencies.

Over about 10 s of speech (Piper's Joe voice with its phoneme-aligned viseme cues, as ``PiperTTS``
streams it, when installed; else the FakeTTS voice-like signal and its cues), streamed to the
avatar in 0.2 s chunks, it measures for each portrait (the built-in host, and the public-domain
NASA astronaut photo from scikit-image when installed):

* frames only: audio seconds / wall seconds to get every frame out of ``animate`` (x real time),
  and the process's CPU time per frame (less sensitive than wall time to other jobs on the machine);
* with encoding: the same while every frame and chunk goes into an H.264 + AAC MP4
  (``Mp4Writer``) as it arrives, as a streaming consumer would do;
* first frame: milliseconds from handing over the first audio chunk to getting the first frame;
* loop lag: the longest and the median gap of a 5 ms ticker on the event loop while frames render
  (rendering runs in worker threads, so the loop stays free);
* conversation: in a ``Conversation`` (FakeLLM, FakeTTS), milliseconds from the first audio chunk
  to the first video frame of the reply;
* portrait analysis: the one-off cost of building the rig (face finding, warp fields; cached).

``--baseline DIR`` measures another source tree (e.g. ``git worktree add /tmp/base main``) side by
side: every run alternates the two in fresh processes on the same speech, so both see the same
machine load. It reports the median of ``--runs`` runs, prints a table and writes
``benchmarks/results/avatar.json``. Targets: >= 5x real time frames only, >= 3x with encoding,
first frame <= 100 ms.

    python benchmarks/avatar.py --runs 5
    python benchmarks/avatar.py --runs 5 --baseline /tmp/base
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

TEXT = (
    "Black holes are regions of space where gravity is so strong that nothing, not even light, "
    "can escape. They form when very massive stars collapse at the end of their lives, and they "
    "can grow by swallowing gas and other stars."
)
TARGETS = {"frames_x_realtime": 5.0, "encoded_x_realtime": 3.0, "first_frame_ms": 100.0}
SRC = Path(__file__).resolve().parents[1] / "src"


# -- speech, made once and shared with the worker processes ---------------------------------------
def make_speech(seconds: float, chunk_seconds: float = 0.2) -> tuple[list[Any], str]:
    """About ``seconds`` of speech in chunks with viseme cues: PiperTTS if installed, else FakeTTS."""
    from lexperience.media import Audio, AudioChunk
    from lexperience.visemes import VisemeCue

    async def collect(tts: Any) -> list[AudioChunk]:
        return [c async for c in tts.stream(TEXT)]

    try:
        from lexperience.backends.piper_tts import PiperTTS

        chunks, source = asyncio.run(collect(PiperTTS())), "piper en_US-joe-medium (aligned cues)"
    except ImportError:
        from lexperience.testing import FakeTTS

        chunks, source = asyncio.run(collect(FakeTTS(sample_rate=22_050))), "FakeTTS speech_like"
    rate = chunks[0].sample_rate
    cues: list[VisemeCue] = []
    at = 0.0
    for c in chunks:
        cues.extend(v.shifted(at) for v in c.visemes)
        at += c.duration
    audio = Audio.concatenate([c.to_audio() for c in chunks])
    reps = 1
    while audio.duration * reps < seconds:
        reps += 1
    samples = np.tile(audio.samples, reps)[: round(seconds * rate)]
    all_cues = [c.shifted(k * audio.duration) for k in range(reps) for c in cues]
    step = round(chunk_seconds * rate)
    out = []
    for start in range(0, samples.shape[0], step):
        block = samples[start : start + step]
        t0, t1 = start / rate, (start + block.shape[0]) / rate
        mine = tuple(
            VisemeCue(max(c.start, t0) - t0, min(c.end, t1) - t0, c.viseme)
            for c in all_cues
            if c.end > t0 and c.start < t1 and min(c.end, t1) > max(c.start, t0)
        )
        out.append(AudioChunk(block, rate, visemes=mine))
    return out, source


def save_speech(chunks: Sequence[Any], path: Path) -> None:
    data = {
        "rate": chunks[0].sample_rate,
        "chunks": [
            {"samples": c.samples.tolist(), "cues": [[v.start, v.end, v.viseme] for v in c.visemes]}
            for c in chunks
        ],
    }
    path.write_text(json.dumps(data), encoding="utf-8")


def load_speech(path: Path) -> list[Any]:
    from lexperience.media import AudioChunk
    from lexperience.visemes import VisemeCue

    data = json.loads(path.read_text(encoding="utf-8"))
    return [
        AudioChunk(
            np.asarray(c["samples"], np.float32),
            data["rate"],
            visemes=tuple(VisemeCue(a, b, v) for a, b, v in c["cues"]),
        )
        for c in data["chunks"]
    ]


# -- one run, in whichever source tree is on the path ---------------------------------------------
async def feed(chunks: Sequence[Any], log: list[float]) -> AsyncIterator[Any]:
    for chunk in chunks:
        log.append(time.perf_counter())
        yield chunk


async def run_frames(avatar: Any, chunks: list[Any]) -> dict[str, float]:
    """Rendering without encoding, with a 5 ms ticker on the loop."""
    pulled: list[float] = []
    gaps: list[float] = []
    stop = False

    async def ticker() -> None:
        last = time.perf_counter()
        while not stop:
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.ensure_future(ticker())
    first = None
    n = 0
    cpu = time.process_time()
    started = time.perf_counter()
    async for _frame in avatar.animate(feed(chunks, pulled)):
        if first is None:
            first = time.perf_counter() - pulled[0]
        n += 1
    wall = time.perf_counter() - started
    cpu = time.process_time() - cpu
    stop = True
    await tick
    return {
        "wall": wall,
        "cpu": cpu,
        "first": first or 0.0,
        "frames": n,
        "lag_max_ms": 1000 * max(gaps, default=0.0),
        "lag_median_ms": 1000 * statistics.median(gaps) if gaps else 0.0,
    }


async def run_encoded(avatar: Any, chunks: list[Any], path: Path) -> tuple[float, int]:
    """(wall seconds, frames) rendering and encoding every frame and chunk as it arrives."""
    from lexperience.output.mp4 import Mp4Writer

    writer = Mp4Writer(path, fps=avatar.fps, sample_rate=chunks[0].sample_rate)
    pulled: list[float] = []
    waiting: list[np.ndarray] = []  # audio that came before the first frame

    async def feed_and_write() -> AsyncIterator[Any]:
        async for chunk in feed(chunks, pulled):
            if writer.frames_written:
                writer.add_audio(chunk.samples)
            else:
                # Mp4Writer creates its video stream at the first frame, and muxing audio
                # before that stream exists crashes FFmpeg: hold the audio until then.
                waiting.append(chunk.samples)
            yield chunk

    n = 0
    started = time.perf_counter()
    async for frame in avatar.animate(feed_and_write()):
        writer.add_frame(frame)
        for samples in waiting:
            writer.add_audio(samples)
        waiting.clear()
        n += 1
    writer.close()
    return time.perf_counter() - started, n


async def conversation_delay_ms(size: int) -> float:
    """In a Conversation with fakes, ms from the reply's first audio to its first video frame."""
    from lexperience import Conversation
    from lexperience.backends.portrait_avatar import PortraitAvatar
    from lexperience.testing import FakeLLM, FakeTTS

    conv = Conversation(llm=FakeLLM(), tts=FakeTTS(), avatar=PortraitAvatar(size=size, seed=0))
    reply = await conv.areply("What is a black hole?")
    m = reply.metrics
    assert m.first_video_s is not None and m.first_audio_s is not None
    return 1000 * (m.first_video_s - m.first_audio_s)


def portrait_for(name: str) -> Any:
    if name == "builtin":
        return None
    if name == "astronaut":
        from skimage import data

        return np.asarray(getattr(data, "astronaut")())  # noqa: B009 (untyped)
    return Path(name)


async def run_once(args: argparse.Namespace, chunks: list[Any]) -> dict[str, Any]:
    from lexperience.backends import portrait_avatar as pa
    from lexperience.backends.portrait_avatar import PortraitAvatar

    seconds = sum(c.duration for c in chunks)
    out: dict[str, Any] = {}
    for name in args.portraits:
        pa._rig_cache.clear()
        t0 = time.perf_counter()
        avatar = PortraitAvatar(portrait_for(name), fps=args.fps, size=args.size, seed=0)
        analysis = time.perf_counter() - t0
        await run_frames(avatar, chunks[:5])  # warm-up: thread pool, caches
        frames = await run_frames(avatar, chunks)
        assert frames["frames"] == round(seconds * args.fps)
        with tempfile.TemporaryDirectory() as tmp:
            enc_wall, n2 = await run_encoded(avatar, chunks, Path(tmp) / "run.mp4")
        assert n2 == frames["frames"]
        out[name] = {
            "frames_x_realtime": seconds / frames["wall"],
            "frame_ms": frames["wall"] / frames["frames"] * 1000,
            "cpu_ms_per_frame": frames["cpu"] / frames["frames"] * 1000,
            "encoded_x_realtime": seconds / enc_wall,
            "first_frame_ms": frames["first"] * 1000,
            "loop_lag_max_ms": frames["lag_max_ms"],
            "loop_lag_median_ms": frames["lag_median_ms"],
            "analysis_s": analysis,
        }
    out["conversation_first_frame_after_audio_ms"] = await conversation_delay_ms(args.size)
    return out


def worker(src: Path, speech: Path, args: argparse.Namespace) -> dict[str, Any]:
    """One run in a fresh process with ``src`` first on the path."""
    env = {**os.environ, "PYTHONPATH": str(src)}
    cmd = [
        sys.executable, __file__, "--worker", str(speech), "--size", str(args.size),
        "--fps", str(args.fps), "--portraits", *args.portraits,
    ]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"worker for {src} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def summarise(runs: list[dict[str, Any]], portraits: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in portraits:
        keys = runs[0][name].keys()
        median = {k: statistics.median(r[name][k] for r in runs) for k in keys}
        out[name] = {
            "median": median,
            "runs": [r[name] for r in runs],
            "meets_targets": {
                "frames_x_realtime": median["frames_x_realtime"] >= TARGETS["frames_x_realtime"],
                "encoded_x_realtime": median["encoded_x_realtime"] >= TARGETS["encoded_x_realtime"],
                "first_frame_ms": median["first_frame_ms"] <= TARGETS["first_frame_ms"],
            },
        }
    out["conversation_first_frame_after_audio_ms"] = statistics.median(
        r["conversation_first_frame_after_audio_ms"] for r in runs
    )
    return out


def machine() -> dict[str, Any]:
    import av
    import cv2

    return {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "av": av.__version__,
        "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
    }


def print_table(label: str, res: dict[str, Any]) -> None:
    print(f"[{label}]")
    header = f"{'portrait':<12}{'frames only':>14}{'with H.264':>14}{'first frame':>14}"
    header += f"{'ms/frame':>11}{'CPU ms/frame':>14}{'loop lag max':>15}{'analysis':>11}"
    print(header)
    print("-" * len(header))
    for name, r in res.items():
        if not isinstance(r, dict):
            continue
        m = r["median"]
        print(
            f"{name:<12}{m['frames_x_realtime']:>12.1f} x{m['encoded_x_realtime']:>12.1f} x"
            f"{m['first_frame_ms']:>11.1f} ms{m['frame_ms']:>11.2f}{m['cpu_ms_per_frame']:>14.2f}"
            f"{m['loop_lag_max_ms']:>12.1f} ms"
            f"{m['analysis_s']:>9.2f} s"
        )
    print(
        "conversation: first frame "
        f"{res['conversation_first_frame_after_audio_ms']:.1f} ms after the first audio"
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per portrait (median)")
    parser.add_argument("--size", type=int, default=512, help="output side in pixels")
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument("--seconds", type=float, default=10.0, help="speech length")
    parser.add_argument(
        "--portraits",
        nargs="+",
        default=None,
        help="builtin, astronaut (scikit-image test photo) or image paths "
        "(default: builtin and astronaut when scikit-image is installed)",
    )
    parser.add_argument(
        "--baseline", type=Path, default=None, help="another source tree to measure alongside"
    )
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "avatar.json"
    )
    args = parser.parse_args(argv)
    if args.portraits is None:
        try:
            import skimage  # noqa: F401

            args.portraits = ["builtin", "astronaut"]
        except ImportError:
            args.portraits = ["builtin"]
    if args.worker is not None:
        print(json.dumps(asyncio.run(run_once(args, load_speech(args.worker)))))
        return 0

    chunks, source = make_speech(args.seconds)
    seconds = sum(c.duration for c in chunks)
    sides = {"current": SRC}
    if args.baseline is not None:
        base = args.baseline / "src" if (args.baseline / "src").is_dir() else args.baseline
        sides["baseline"] = base
    runs: dict[str, list[dict[str, Any]]] = {k: [] for k in sides}
    with tempfile.TemporaryDirectory() as tmp:
        speech = Path(tmp) / "speech.json"
        save_speech(chunks, speech)
        for _ in range(args.runs):
            for label, src in sides.items():  # alternate, so both see the same machine load
                runs[label].append(worker(src, speech, args))
    results = {label: summarise(r, args.portraits) for label, r in runs.items()}
    report = {
        "benchmark": "portrait avatar",
        "config": {
            "size": args.size,
            "fps": args.fps,
            "audio_seconds": round(seconds, 3),
            "sample_rate": chunks[0].sample_rate,
            "chunk_seconds": 0.2,
            "speech": source,
            "runs": args.runs,
            "statistic": "median",
            "sources": {k: str(v) for k, v in sides.items()},
        },
        "machine": machine(),
        "targets": TARGETS,
        "results": results,
    }
    print(
        f"portrait avatar, {args.size}x{args.size} @ {args.fps:g} fps, {seconds:.1f} s of speech "
        f"({source}), median of {args.runs} runs, {os.cpu_count()} CPUs"
    )
    for label, res in results.items():
        print_table(label, res)
    if "baseline" in results:
        for name in args.portraits:
            cur = results["current"][name]["median"]
            old = results["baseline"][name]["median"]
            print(
                f"{name}: frames only {cur['frames_x_realtime'] / old['frames_x_realtime']:.2f}x "
                f"the baseline's speed, with H.264 "
                f"{cur['encoded_x_realtime'] / old['encoded_x_realtime']:.2f}x, CPU per frame "
                f"{cur['cpu_ms_per_frame'] / old['cpu_ms_per_frame']:.2f}x"
            )
    print(
        f"targets: >= {TARGETS['frames_x_realtime']:g}x frames only, "
        f">= {TARGETS['encoded_x_realtime']:g}x with encoding, "
        f"first frame <= {TARGETS['first_frame_ms']:g} ms"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    current = results["current"]
    ok = all(all(current[n]["meets_targets"].values()) for n in args.portraits)
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
