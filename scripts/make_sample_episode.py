"""Generate the sample podcast episode in ``examples/episode/`` with lexperience's PiperTTS.

Reads ``examples/episode/dialogue.txt`` (a fictional episode of the fictional show "Slow
Signals": host Theo Calloway, guest Tamsin Okoro), speaks it sentence by sentence, and writes:

* ``slow-signals-12.ogg``: the audio, 16 kHz mono Opus at 24 kbit/s (small enough to commit);
* ``slow-signals-12.vtt``: the transcript with real cue timings and ``<v Speaker>`` tags;
* ``slow-signals-12.json``: the same as an :class:`~lexperience.Episode` with its metadata;
* ``question.wav``: a listener's spoken question about it (16 kHz mono WAV), for
  ``lexperience reply --episode ... --at ...``.

Both voices are the bundled Piper voice (en_US-joe-medium); the guest's is raised in pitch (the
audio is resampled as if played faster, with Piper speaking slower to keep the pace), so the
two speakers are easy to tell apart. No generator noise: the output is reproducible. Needs
``pip install "lexperience[local]"``::

    python scripts/make_sample_episode.py
"""

from __future__ import annotations

import argparse
import asyncio
import re
from fractions import Fraction
from pathlib import Path

import numpy as np

from lexperience import Audio
from lexperience.backends.piper_tts import PiperTTS
from lexperience.episode import Episode, Segment

ROOT = Path(__file__).resolve().parent.parent
FOLDER = ROOT / "examples" / "episode"
RATE = 16_000
QUESTION = "What did Tamsin say about the storm drain?"
GUEST_PITCH = 1.18  # the guest's voice, this much higher
SENTENCE_GAP, TURN_GAP = 0.25, 0.6  # seconds of silence


def read_dialogue(path: Path) -> tuple[dict[str, str], list[tuple[str, str]]]:
    meta: dict[str, str] = {}
    turns: list[tuple[str, str]] = []
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        key, _, text = line.partition(":")
        if key in ("title", "show", "host", "guest"):
            meta[key] = text.strip()
        else:
            turns.append((key.strip(), text.strip()))
    return meta, turns


async def speak(tts: PiperTTS, text: str, pitch: float) -> Audio:
    chunks = [chunk.to_audio() async for chunk in tts.stream(text)]
    speech = Audio.concatenate(chunks)
    if pitch != 1.0:  # play it faster (higher), then back at 16 kHz
        speech = Audio(speech.samples, round(speech.sample_rate * pitch))
    return speech.resample(RATE)


async def build(dialogue: Path) -> tuple[Episode, Audio]:
    meta, turns = read_dialogue(dialogue)
    host = PiperTTS(with_visemes=False, noise_scale=0.0, noise_w_scale=0.0)
    guest = PiperTTS(
        with_visemes=False, noise_scale=0.0, noise_w_scale=0.0, length_scale=GUEST_PITCH
    )
    await host.aopen()
    await guest.aopen()
    parts: list[Audio] = [Audio.silence(0.5, RATE)]
    now = 0.5
    segments: list[Segment] = []
    for speaker, text in turns:
        is_host = speaker == meta.get("host")
        for sentence in re.split(r"(?<=[.!?])\s+", text):
            clip = await speak(
                host if is_host else guest, sentence, 1.0 if is_host else GUEST_PITCH
            )
            segments.append(
                Segment(
                    start=round(now, 3),
                    end=round(now + clip.duration, 3),
                    text=sentence,
                    speaker=speaker,
                )
            )
            parts += [clip, Audio.silence(SENTENCE_GAP, RATE)]
            now += clip.duration + SENTENCE_GAP
        parts.append(Audio.silence(TURN_GAP - SENTENCE_GAP, RATE))
        now += TURN_GAP - SENTENCE_GAP
    audio = Audio.concatenate(parts)
    episode = Episode(
        title=meta.get("title"),
        show=meta.get("show"),
        host=meta.get("host"),
        guests=(meta["guest"],) if "guest" in meta else (),
        duration=round(audio.duration, 3),
        audio="slow-signals-12.ogg",
        segments=tuple(segments),
        description="A fictional episode for the lexperience examples: an acoustic ecologist "
        "maps a city's sounds after dark.",
    )
    return episode, audio


async def speak_question(text: str) -> Audio:
    tts = PiperTTS(with_visemes=False, noise_scale=0.0, noise_w_scale=0.0)
    await tts.aopen()
    pad = Audio.silence(0.25, RATE)
    return Audio.concatenate([pad, await speak(tts, text, 1.0), pad])


def write_opus(audio: Audio, path: Path, bitrate: int = 24_000) -> None:
    import av

    pcm = (np.clip(audio.samples, -1, 1) * 32767).astype(np.int16)
    with av.open(str(path), "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=RATE, layout="mono")
        stream.bit_rate = bitrate
        step = 960  # 60 ms frames at 16 kHz
        for i in range(0, len(pcm), step):
            frame = av.AudioFrame.from_ndarray(pcm[None, i : i + step], format="s16", layout="mono")
            frame.sample_rate = RATE
            frame.pts = i
            frame.time_base = Fraction(1, RATE)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--dialogue", type=Path, default=FOLDER / "dialogue.txt")
    parser.add_argument("--out", type=Path, default=FOLDER, help="output folder")
    args = parser.parse_args()
    episode, audio = asyncio.run(build(args.dialogue))
    args.out.mkdir(parents=True, exist_ok=True)
    ogg = args.out / "slow-signals-12.ogg"
    write_opus(audio, ogg)
    vtt = episode.save(args.out / "slow-signals-12.vtt")
    js = episode.save(args.out / "slow-signals-12.json")
    question = asyncio.run(speak_question(QUESTION))
    wav = question.save(args.out / "question.wav")
    (args.out / "question.txt").write_text(QUESTION + "\n", encoding="utf-8")
    print(
        f"wrote {ogg} ({audio.duration:.1f} s, {ogg.stat().st_size // 1024} KiB), {vtt}, {js}: "
        f"{len(episode)} segments; {wav} ({question.duration:.1f} s)"
    )


if __name__ == "__main__":
    main()
