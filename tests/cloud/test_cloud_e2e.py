"""The prototype's flow end to end against the local server: OpenAI STT + OpenAI LLM + ElevenLabs
TTS + Replicate DreamTalk, driven by a :class:`Conversation`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lexperience import Audio, Conversation, Persona
from lexperience.backends.elevenlabs_tts import ElevenLabsTTS
from lexperience.backends.openai_llm import OpenAILLM
from lexperience.backends.openai_stt import OpenAISTT
from lexperience.backends.replicate_avatar import ReplicateAvatar
from lexperience.testing.fakes import speech_like
from lexperience.testing.wire import (
    ELEVENLABS_KEY,
    OPENAI_KEY,
    REPLICATE_KEY,
    SECONDS_PER_CHAR,
    WireServer,
)

pytest.importorskip("openai")
pytest.importorskip("elevenlabs")
pytest.importorskip("replicate")
pytest.importorskip("av")

pytestmark = [pytest.mark.cloud, pytest.mark.usefixtures("ramp_clip")]

SENTENCES = ["Black holes are regions where gravity wins.", "Nothing gets out of them."]


def question() -> Audio:
    samples, _ = speech_like("what is a black hole", 16_000)
    return Audio(samples, 16_000)


def check_reply(wire: WireServer, reply: object, voice: str) -> None:
    assert reply.transcript is not None  # type: ignore[attr-defined]
    assert reply.transcript.text == "What is a black hole?"  # type: ignore[attr-defined]
    assert reply.sentences == SENTENCES  # type: ignore[attr-defined]
    audio = reply.audio  # type: ignore[attr-defined]
    assert audio is not None and audio.sample_rate == 24_000
    spoken = sum(len(s) for s in SENTENCES) * SECONDS_PER_CHAR
    assert audio.duration == pytest.approx(spoken, abs=0.01)
    frames = reply.frames  # type: ignore[attr-defined]
    assert len(frames) == round(audio.duration * 25)
    assert [f.index for f in frames] == list(range(len(frames)))
    metrics = reply.metrics  # type: ignore[attr-defined]
    assert metrics is not None
    # one request per stage and sentence, the persona's voice and portrait passed through
    assert len(wire.calls("transcribe")) == 1 and len(wire.calls("chat")) == 1
    calls = wire.calls("el_timestamps")
    assert [c.json()["text"] for c in calls] == SENTENCES
    assert all(f"/text-to-speech/{voice}/" in c.path for c in calls)
    assert len(wire.predictions) == 2
    portraits = [u for u in wire.calls("files") if u.form["content"][0] == "face.jpg"]
    assert len(portraits) == 1  # uploaded once, at aopen()
    assert all(p.status == "succeeded" for p in wire.predictions.values())


async def test_prototype_flow_with_backend_objects(wire: WireServer, portrait: Path) -> None:
    persona = Persona(name="Wren", prompt="You are Wren, a podcast host.", portrait=portrait)
    conv = Conversation(
        stt=OpenAISTT(api_key=OPENAI_KEY, base_url=wire.openai_url),
        llm=OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url, model="gpt-4.1-mini"),
        tts=ElevenLabsTTS(api_key=ELEVENLABS_KEY, base_url=wire.url, voice="wren-voice"),
        avatar=ReplicateAvatar(
            api_token=REPLICATE_KEY, base_url=wire.url, portrait=portrait, poll_interval=0.02,
            size=(64, 48),
        ),
        persona=persona,
    )  # fmt: skip
    async with conv:
        reply = await conv.areply(question(), keep_frames=True)
    check_reply(wire, reply, "wren-voice")
    assert reply.frames[0].image.shape == (48, 64, 3)
    messages = wire.calls("chat")[0].json()["messages"]
    assert messages[0]["role"] == "system" and "Wren" in messages[0]["content"]
    assert messages[-1] == {"role": "user", "content": "What is a black hole?"}


async def test_prototype_flow_by_registry_names_and_environment(
    wire: WireServer, portrait: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": wire.openai_url,
        "ELEVENLABS_API_KEY": ELEVENLABS_KEY, "ELEVENLABS_BASE_URL": wire.url,
        "REPLICATE_API_TOKEN": REPLICATE_KEY, "REPLICATE_BASE_URL": wire.url,
        "REPLICATE_POLL_INTERVAL": "0.02",
    }  # fmt: skip
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    persona = Persona(
        name="Wren", prompt="You are Wren.", portrait=portrait, voices={"elevenlabs": "env-voice"}
    )
    conv = Conversation(
        stt="openai", llm="openai", tts="elevenlabs", avatar="replicate", persona=persona
    )
    async with conv:
        reply = await conv.areply(question(), keep_frames=True)
    check_reply(wire, reply, "env-voice")
    assert reply.frames[0].image.shape == (512, 512, 3)


EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "prototype_flow.py"


def run_example(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(_PREFIXES)}
    return subprocess.run(
        [sys.executable, str(EXAMPLE), *args], env={**clean, **env}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip


_PREFIXES = ("OPENAI_", "ELEVENLABS_", "REPLICATE_")


def test_example_says_which_keys_are_missing(tmp_path: Path, portrait: Path) -> None:
    wav = tmp_path / "q.wav"
    question().save(wav)
    out = run_example([str(wav), str(tmp_path / "out"), "--portrait", str(portrait)], {})
    assert out.returncode == 2
    for name in ("OPENAI_API_KEY", "ELEVENLABS_API_KEY", "REPLICATE_API_TOKEN"):
        assert name in out.stderr


def test_example_runs_the_flow_against_the_local_server(
    wire: WireServer, tmp_path: Path, portrait: Path
) -> None:
    wav = tmp_path / "q.wav"
    question().save(wav)
    env = {
        "OPENAI_API_KEY": OPENAI_KEY, "OPENAI_BASE_URL": wire.openai_url,
        "ELEVENLABS_API_KEY": ELEVENLABS_KEY, "ELEVENLABS_BASE_URL": wire.url,
        "ELEVENLABS_VOICE_ID": "example-voice",
        "REPLICATE_API_TOKEN": REPLICATE_KEY, "REPLICATE_BASE_URL": wire.url,
        "REPLICATE_POLL_INTERVAL": "0.02",
    }  # fmt: skip
    out = run_example([str(wav), str(tmp_path / "out"), "--portrait", str(portrait)], env)
    assert out.returncode == 0, out.stderr
    assert "You: What is a black hole?" in out.stdout
    assert "first video frame" in out.stdout
    saved = json.loads((tmp_path / "out" / "reply.json").read_text())
    assert saved["sentences"] == SENTENCES
    assert saved["video_frames"] == round(saved["audio_seconds"] * 25)
    assert (tmp_path / "out" / "reply.mp4").stat().st_size > 1000
    assert all("/example-voice/" in c.path for c in wire.calls("el_timestamps"))
