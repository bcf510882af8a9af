"""Viseme accuracy of the ``portrait`` avatar on real Piper speech, measured on the rendered frames.

``PiperTTS`` speaks a fixed set of sentences full of bilabials (p, b, m) and open vowels, with the
viseme cues it takes from the voice's own phoneme durations; the avatar animates the stream as a
conversation would. On the frames (pixels only: the dark cavity of the mouth against the rest
pose, see ``lexperience.render.measure``) it reports, per portrait:

* closed: the share of bilabial closures whose frame shows the lips shut;
* open: the share of open vowels ("aa", "oh") whose frame shows the mouth open;
* the same two figures for the same audio without cues (the loudness-only mouth), side by side;
* lip-sync r: Pearson r between the cavity area and the audio RMS of each frame, at lag 0 (what
  ``tests/avatar/test_portrait_lipsync.py`` measures) and at the lag where it peaks.

Targets: >= 90 % closed and >= 90 % open. Writes ``benchmarks/results/visemes.json``.

    python benchmarks/visemes.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lexperience.backends.piper_tts import PiperTTS
from lexperience.backends.portrait_avatar import PortraitAvatar
from lexperience.media import Audio, AudioChunk
from lexperience.render.measure import dark_area, viseme_accuracy
from lexperience.render.rig import FrameState
from lexperience.visemes import VisemeCue

SENTENCES = [
    "Maybe my mom bought a big map of Bombay.",
    "Papa's boat bobbed past the palm trees at the harbour.",
    "A warm bath and a bowl of plum pudding make me happy.",
    "Bob promised to pop by the pub before my parade.",
    "The bottom of the pond was muddy, but the lamp above it was bright.",
    "I'm a big fan of maple syrup on pancakes, but my brother prefers bananas.",
    "Black holes are regions of space where gravity is so strong that nothing can escape.",
    "Playing the banjo on a boat, Pam hummed a mellow melody.",
]
TARGETS = {"closed_rate": 0.9, "open_rate": 0.9}


async def speak(tts: PiperTTS) -> tuple[list[AudioChunk], list[VisemeCue]]:
    chunks: list[AudioChunk] = []
    cues: list[VisemeCue] = []
    at = 0.0
    for sentence in SENTENCES:
        async for chunk in tts.stream(sentence):
            chunks.append(chunk)
            cues.extend(c.shifted(at) for c in chunk.visemes)
            at += chunk.duration
    return chunks, cues


async def feed(chunks: Sequence[AudioChunk]) -> AsyncIterator[AudioChunk]:
    for chunk in chunks:
        yield chunk


def lip_sync_r(dark: np.ndarray, rms: np.ndarray) -> dict[str, float]:
    out: dict[str, float] = {}
    for lag in range(-3, 4):
        a, b = (dark[: len(dark) - lag], rms[lag:]) if lag >= 0 else (dark[-lag:], rms[:lag])
        out[str(lag)] = float(np.corrcoef(a, b)[0, 1])
    return out


def frame_rms(audio: Audio, fps: float, n: int) -> np.ndarray:
    r = audio.sample_rate
    x = audio.samples.astype(np.float64)
    parts = [x[round(i * r / fps) : round((i + 1) * r / fps)] for i in range(n)]
    return np.array([float(np.sqrt(np.mean(p**2))) if p.size else 0.0 for p in parts])


async def measure(
    portrait: Any, chunks: list[AudioChunk], cues: list[VisemeCue], fps: float
) -> dict[str, Any]:
    avatar = PortraitAvatar(portrait, fps=fps, seed=0)
    rest = avatar.preview()
    wide = avatar.render_state(FrameState(open=1.0))
    out: dict[str, Any] = {}
    for mode, stream in (
        ("cues", chunks),
        ("no_cues", [AudioChunk(c.samples, c.sample_rate) for c in chunks]),
    ):
        frames = [f.image async for f in avatar.animate(feed(stream))]
        acc = viseme_accuracy(
            frames, cues, avatar.layout, fps=fps, lead=avatar.lead, rest=rest, wide_open=wide
        )
        audio = Audio.concatenate([c.to_audio() for c in chunks])
        dark = np.array([dark_area(f, avatar.layout) for f in frames], dtype=np.float64)
        r = lip_sync_r(dark, frame_rms(audio, fps, len(frames)))
        best = max(r, key=lambda k: r[k])
        out[mode] = {
            "closures": acc.closures,
            "closed_rate": acc.closed_rate,
            "vowels": acc.vowels,
            "open_rate": acc.open_rate,
            "lip_sync_r_lag0": r["0"],
            "lip_sync_r_best": r[best],
            "best_lag_frames": int(best),
            "misses": acc.misses[:10],
        }
    return out


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    tts = PiperTTS()
    chunks, cues = await speak(tts)
    seconds = sum(c.duration for c in chunks)
    portraits: dict[str, Any] = {"builtin": None}
    try:
        from skimage import data

        portraits["astronaut"] = np.asarray(getattr(data, "astronaut")())  # noqa: B009
    except ImportError:
        pass
    results = {name: await measure(p, chunks, cues, args.fps) for name, p in portraits.items()}
    return {
        "benchmark": "portrait viseme accuracy on Piper speech",
        "config": {
            "voice": tts.model_path.name,
            "viseme_source": "alignment" if tts.aligned else "espeak",
            "speech_seconds": round(seconds, 2),
            "sentences": len(SENTENCES),
            "fps": args.fps,
            "lead_s": PortraitAvatar().lead,
            "cpus": os.cpu_count(),
            "python": sys.version.split()[0],
        },
        "targets": TARGETS,
        "results": results,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--fps", type=float, default=25.0)
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "visemes.json"
    )
    args = parser.parse_args(argv)
    report = asyncio.run(bench(args))
    cfg = report["config"]
    print(
        f"viseme accuracy: {cfg['speech_seconds']:.1f} s of Piper speech ({cfg['voice']}, "
        f"{cfg['viseme_source']} timings), {cfg['fps']:g} fps, lead {cfg['lead_s'] * 1000:.0f} ms"
    )
    header = f"{'portrait':<11}{'mode':<9}{'closed':>14}{'open':>14}{'r lag 0':>9}{'r best':>12}"
    print(header)
    print("-" * len(header))
    ok = True
    for name, modes in report["results"].items():
        for mode, m in modes.items():
            print(
                f"{name:<11}{mode:<9}{m['closed_rate']:>8.1%} ({m['closures']:>3})"
                f"{m['open_rate']:>8.1%} ({m['vowels']:>3}){m['lip_sync_r_lag0']:>9.2f}"
                f"{m['lip_sync_r_best']:>7.2f} @{m['best_lag_frames']:+d}"
            )
        m = modes["cues"]
        ok = ok and m["closed_rate"] >= TARGETS["closed_rate"]
        ok = ok and m["open_rate"] >= TARGETS["open_rate"]
    print("targets (with cues): >= 90 % of closures shut, >= 90 % of open vowels open")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.out}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
