"""The prototype's original flow, streamed: OpenAI STT -> OpenAI LLM -> ElevenLabs TTS -> DreamTalk.

The prototype ran each stage to completion (Whisper, an Assistants run, one ElevenLabs clip, one
Replicate DreamTalk video): about a minute per answer. The same services here are chained by
lexperience.Conversation: the LLM streams, each finished sentence goes to ElevenLabs at once,
and each sentence's audio goes to its own DreamTalk prediction, so the first words (and then the
first clip) come while the rest of the answer is still being made.

    export OPENAI_API_KEY=... ELEVENLABS_API_KEY=... REPLICATE_API_TOKEN=...
    pip install "lexperience[openai,elevenlabs,replicate]"
    python examples/prototype_flow.py examples/question.wav out/ --portrait host.jpg

Writes reply.wav, reply.mp4 (with the "AI-generated" mark) and reply.json into the output dir.
Costs money on all three services (see docs/backends/*.md for rough figures).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from pathlib import Path

from lexperience import (
    Audio,
    AudioEvent,
    Conversation,
    LexperienceError,
    Persona,
    SentenceEvent,
    TextDelta,
    TranscriptEvent,
    TurnDone,
    VideoEvent,
)

KEYS = {
    "OPENAI_API_KEY": "OpenAI (speech to text and the chat model): https://platform.openai.com/api-keys",
    "ELEVENLABS_API_KEY": "ElevenLabs (the voice): https://elevenlabs.io/app/settings/api-keys",
    "REPLICATE_API_TOKEN": "Replicate (DreamTalk video): https://replicate.com/account/api-tokens",
}

PROMPT = (
    "You are Theo Calloway, the fictional host of 'Slow Signals', a podcast about curious ideas "
    "in science and everyday life. A listener paused the episode to ask a question: answer it "
    "directly, warmly and briefly, as the host would."
)


def missing_keys(with_avatar: bool) -> list[str]:
    wanted = [k for k in KEYS if with_avatar or k != "REPLICATE_API_TOKEN"]
    return [k for k in wanted if not os.environ.get(k, "").strip()]


def build(args: argparse.Namespace) -> Conversation:
    # Imported here so that a missing extra is reported as the pip command to run.
    from lexperience.backends.elevenlabs_tts import DEFAULT_VOICE, ElevenLabsTTS
    from lexperience.backends.openai_llm import OpenAILLM
    from lexperience.backends.openai_stt import OpenAISTT

    persona = Persona(
        name="Theo Calloway",
        prompt=PROMPT,
        portrait=args.portrait,
        voices={"elevenlabs": args.voice or os.environ.get("ELEVENLABS_VOICE_ID", DEFAULT_VOICE)},
        max_sentences=args.max_sentences,
    )
    avatar = None
    if args.portrait is not None:
        from lexperience.backends.replicate_avatar import ReplicateAvatar

        avatar = ReplicateAvatar(portrait=args.portrait, model=args.avatar_model)
    return Conversation(
        stt=OpenAISTT(),
        llm=OpenAILLM(model=args.llm_model),
        tts=ElevenLabsTTS(voice=persona.voices["elevenlabs"]),
        avatar=avatar,
        persona=persona,
    )


async def run(args: argparse.Namespace) -> int:
    question = Audio.load(args.question)
    conv = build(args)
    started = time.perf_counter()

    def stamp() -> str:
        return f"[{(time.perf_counter() - started) * 1000:6.0f} ms]"

    first_audio = first_video = False
    async with conv:
        async for event in conv.stream(question, encode_video=True):
            if isinstance(event, TranscriptEvent):
                print(f"{stamp()} You: {event.transcript.text}")
                print(f"{stamp()} {conv.persona.name}: ", end="", flush=True)
            elif isinstance(event, TextDelta):
                print(event.text, end="", flush=True)
            elif isinstance(event, SentenceEvent):
                print(f"\n{stamp()}   sentence {event.index} -> ElevenLabs", flush=True)
            elif isinstance(event, AudioEvent) and not first_audio:
                first_audio = True
                print(f"{stamp()}   first audio chunk", flush=True)
            elif isinstance(event, VideoEvent) and not first_video:
                first_video = True
                print(f"{stamp()}   first video frame (DreamTalk clip of sentence 0)", flush=True)
            elif isinstance(event, TurnDone):
                saved = event.reply.save(args.out)
                print(f"\n{event.reply.metrics.summary()}")
                print(f"wrote {saved.mp4 or saved.wav} and {saved.json_path}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(
        description="The prototype's flow (OpenAI + ElevenLabs + Replicate DreamTalk), streamed."
    )
    parser.add_argument("question", type=Path, help="the question, as an audio file (wav, mp3...)")
    parser.add_argument("out", type=Path, help="output folder for reply.wav/mp4/json")
    parser.add_argument("--portrait", type=Path, help="the face to animate (no video without it)")
    parser.add_argument("--voice", help="ElevenLabs voice id (default $ELEVENLABS_VOICE_ID)")
    parser.add_argument("--llm-model", default="gpt-4.1-mini")
    parser.add_argument(
        "--avatar-model", default="dreamtalk", help="dreamtalk, sadtalker, owner/model"
    )
    parser.add_argument("--max-sentences", type=int, default=3)
    args = parser.parse_args()

    if not args.question.is_file():
        print(f"error: question file not found: {args.question}", file=sys.stderr)
        return 2
    if args.portrait is not None and not args.portrait.is_file():
        print(f"error: portrait not found: {args.portrait}", file=sys.stderr)
        return 2
    missing = missing_keys(with_avatar=args.portrait is not None)
    if missing:
        print("error: set these environment variables first:", file=sys.stderr)
        for name in missing:
            print(f"  {name:20} {KEYS[name]}", file=sys.stderr)
        return 2
    if args.portrait is None:
        print("note: no --portrait given: audio only (DreamTalk needs a face to animate)")
    try:
        return asyncio.run(run(args))
    except LexperienceError as exc:
        print(f"\nerror: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
