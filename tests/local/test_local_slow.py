"""Long runs of the real offline stack (``pytest -m slow``): the main job from the shell, a
multi-turn conversation with an interruption, and a five-minute question.

They take a minute or two together on two cores, so the default run skips them; CI's default
suite covers every piece of them in shorter form.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from local_support import recall, word_error_rate, workers_finished

from lexperience import Audio, Conversation, Hooks, TurnCancelledError
from lexperience.backends.faster_whisper_stt import FasterWhisperSTT
from lexperience.backends.llama_cpp_llm import LlamaCppLLM
from lexperience.backends.piper_tts import PiperTTS

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_the_main_job_from_the_shell(tmp_path: Path, question_wav: Path) -> None:
    """What `make demo` runs: the CLI answers the sample question offline into an MP4."""
    pytest.importorskip("av")
    pytest.importorskip("cv2")
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "lexperience", "reply", str(question_wav), "-o", str(tmp_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr
    info = json.loads((tmp_path / "reply.json").read_text("utf-8"))
    assert "black hole" in info["transcript"]["text"].lower()
    assert info["text"] and info["video_frames"] == round(info["audio_seconds"] * info["fps"])
    import av

    with av.open(str(tmp_path / "reply.mp4")) as container:
        assert container.metadata.get("ai_generated") == "true"
        frames = sum(1 for _ in container.decode(container.streams.video[0]))
    assert frames == info["video_frames"]


async def test_a_multi_turn_offline_conversation_with_an_interruption(
    stt: FasterWhisperSTT, llm: LlamaCppLLM, piper: PiperTTS, question_wav: Path
) -> None:
    pytest.importorskip("cv2")
    speaking = asyncio.Event()
    hooks = Hooks(on_audio=lambda event: speaking.set())
    conv = Conversation(stt=stt, llm=llm, tts=piper, avatar="portrait", hooks=hooks)
    async with conv:
        first = await conv.areply(question_wav)
        assert first.video is not None and first.video.frames > 0
        speaking.clear()
        task = asyncio.ensure_future(conv.areply("Tell me everything you know about stars."))
        await speaking.wait()  # the second answer is being spoken
        await conv.interrupt(played_seconds=0.8)
        with pytest.raises(TurnCancelledError) as info:
            await task
        partial = info.value.reply
        assert partial is not None and partial.interrupted  # type: ignore[attr-defined]
        third = await conv.areply("And what about the moon?")
        assert third.text and not third.interrupted
    roles = [(m.role, m.interrupted) for m in conv.history]
    assert roles[:2] == [("user", False), ("assistant", False)]
    assert roles[2] == ("user", False)
    assert roles[-2:] == [("user", False), ("assistant", False)]
    assert all(m.interrupted for m in conv.history[3:-2])  # only the heard part, marked
    assert await workers_finished()


async def test_a_five_minute_question(stt: FasterWhisperSTT, piper: PiperTTS) -> None:
    """The longest input a turn accepts (300 s) goes through Whisper's standard 30-s windows."""
    sentences = [
        "The harbour was quiet before the storm came in from the west.",
        "Fishermen pulled their boats high onto the stones and tied them down.",
        "By evening the wind had turned and the lights of the town were out.",
    ]
    clips = []
    for sentence in sentences:
        clips.append(Audio.concatenate([c.to_audio() async for c in piper.stream(sentence)]))
    one_round = Audio.concatenate([*clips, Audio.silence(1.0, clips[0].sample_rate)])
    repeats = int(295 // one_round.duration)
    long = Audio.concatenate([one_round] * repeats)
    assert 240 < long.duration <= 300
    transcript = await stt.transcribe(long)
    assert stt.last_decode == "standard"
    text = " ".join(sentences)
    assert recall(text, transcript.text) > 0.9
    assert word_error_rate(" ".join([text] * repeats), transcript.text) < 0.25
