"""Answer one question with lexperience and save the reply video.

python examples/quickstart.py                        # offline stack, examples/question.wav
python examples/quickstart.py --text "Why is the sky blue?"
python examples/quickstart.py --fake                 # scripted backends, no models at all
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lexperience import Conversation, Hooks, SentenceEvent, TranscriptEvent
from lexperience.testing import FakeAvatar, FakeLLM, FakeSTT, FakeTTS

HERE = Path(__file__).parent


def build(fake: bool, hooks: Hooks) -> Conversation:
    if fake:
        return Conversation(stt=FakeSTT(), llm=FakeLLM(), tts=FakeTTS(), avatar=FakeAvatar(),
                            hooks=hooks)  # fmt: skip
    return Conversation.local(hooks=hooks)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--text", help="ask in text instead of examples/question.wav")
    parser.add_argument("--fake", action="store_true", help="use the scripted fake backends")
    parser.add_argument("-o", "--out", type=Path, default=Path("out"))
    args = parser.parse_args()

    async def heard(event: TranscriptEvent) -> None:
        print(f"You: {event.transcript.text}")

    async def sentence(event: SentenceEvent) -> None:
        print(f"  [{event.t * 1000:5.0f} ms] {event.text}")

    with build(args.fake, Hooks(on_transcript=heard, on_sentence=sentence)) as conv:
        question = args.text if args.text else HERE / "question.wav"
        reply = conv.reply(question)
        saved = reply.save(args.out)
    print(f"{conv.persona.name}: {reply.text}")
    print(reply.metrics.summary())
    print(f"video: {saved.mp4}")


if __name__ == "__main__":
    main()
