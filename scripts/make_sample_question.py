"""Generate ``examples/question.wav`` (and ``examples/question.txt``) with lexperience's PiperTTS.

The clip is the listener question the tests, the examples and ``benchmarks/offline.py`` use. It is
written as 16 kHz mono 16-bit WAV to keep it small. Needs ``pip install "lexperience[local]"``::

    python scripts/make_sample_question.py [--text "..."] [--out examples/question.wav]
"""

from __future__ import annotations

import argparse
import asyncio
from pathlib import Path

from lexperience import Audio
from lexperience.backends.piper_tts import PiperTTS

QUESTION = "What is a black hole, and could one ever swallow the Earth?"
ROOT = Path(__file__).resolve().parent.parent


async def synthesize(text: str) -> Audio:
    # No generator noise: the same text always gives the same file, so the clip is reproducible.
    tts = PiperTTS(with_visemes=False, noise_scale=0.0, noise_w_scale=0.0)
    await tts.aopen()
    chunks = [chunk.to_audio() async for chunk in tts.stream(text)]
    speech = Audio.concatenate(chunks)
    # A little silence either side, as a microphone recording would have.
    pad = Audio.silence(0.25, speech.sample_rate)
    return Audio.concatenate([pad, speech, pad]).resample(16_000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", default=QUESTION, help="the question to speak")
    parser.add_argument("--out", type=Path, default=ROOT / "examples" / "question.wav")
    args = parser.parse_args()
    audio = asyncio.run(synthesize(args.text))
    wav = audio.save(args.out)
    txt = wav.with_suffix(".txt")
    txt.write_text(args.text + "\n", encoding="utf-8")
    print(f"wrote {wav} ({audio.duration:.2f} s, {wav.stat().st_size // 1024} KiB) and {txt}")


if __name__ == "__main__":
    main()
