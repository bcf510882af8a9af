"""House rules of the cloud code: loggers named after their modules, no secret in any log line of
a whole turn, modules of a readable size, and per-SDK skips in this test folder."""

from __future__ import annotations

import importlib
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lexperience import Audio, Conversation, Persona
from lexperience.testing.fakes import speech_like
from lexperience.testing.wire import ELEVENLABS_KEY, OPENAI_KEY, REPLICATE_KEY, WireServer

pytestmark = pytest.mark.cloud

ROOT = Path(__file__).resolve().parents[2]
LOGGING_MODULES = [
    "lexperience.backends._cloud",
    "lexperience.backends._loop_local",
    "lexperience.backends._openai_common",
    "lexperience.backends._replicate_download",
    "lexperience.backends._replicate_media",
    "lexperience.backends._replicate_predict",
    "lexperience.backends.elevenlabs_tts",
    "lexperience.backends.openai_llm",
    "lexperience.backends.openai_stt",
    "lexperience.backends.openai_tts",
    "lexperience.backends.replicate_avatar",
]
CLOUD_SOURCES = [
    *sorted((ROOT / "src/lexperience/backends").glob("_cloud*.py")),
    *sorted((ROOT / "src/lexperience/backends").glob("_openai*.py")),
    *sorted((ROOT / "src/lexperience/backends").glob("openai_*.py")),
    *sorted((ROOT / "src/lexperience/backends").glob("*elevenlabs*.py")),
    *sorted((ROOT / "src/lexperience/backends").glob("*replicate*.py")),
    ROOT / "src/lexperience/backends/_loop_local.py",
    *sorted((ROOT / "src/lexperience/testing/wire").glob("*.py")),
    *sorted((ROOT / "tests/cloud").glob("*.py")),
    *sorted((ROOT / "benchmarks").glob("latency*.py")),
    ROOT / "benchmarks/load.py",
]


@pytest.mark.parametrize("name", LOGGING_MODULES)
def test_each_module_logs_under_its_own_name(name: str) -> None:
    module = importlib.import_module(name)
    assert isinstance(module.log, logging.Logger) and module.log.name == name


@pytest.mark.parametrize("path", CLOUD_SOURCES, ids=lambda p: p.name)
def test_no_cloud_module_is_over_500_lines(path: Path) -> None:
    assert len(path.read_text().splitlines()) <= 500


async def test_a_whole_turn_logged_at_debug_never_shows_a_key(
    wire: WireServer, portrait: Path, ramp_clip: bytes, caplog: pytest.LogCaptureFixture
) -> None:
    for sdk in ("openai", "elevenlabs", "replicate", "av"):
        pytest.importorskip(sdk)
    from lexperience.backends.elevenlabs_tts import ElevenLabsTTS
    from lexperience.backends.openai_llm import OpenAILLM
    from lexperience.backends.openai_stt import OpenAISTT
    from lexperience.backends.replicate_avatar import ReplicateAvatar

    caplog.set_level(logging.DEBUG)  # every logger: lexperience, the SDKs, httpx, websockets
    samples, _ = speech_like("what is a black hole", 16_000)
    conv = Conversation(
        stt=OpenAISTT(api_key=OPENAI_KEY, base_url=wire.openai_url),
        llm=OpenAILLM(api_key=OPENAI_KEY, base_url=wire.openai_url),
        tts=ElevenLabsTTS(api_key=ELEVENLABS_KEY, base_url=wire.url),
        avatar=ReplicateAvatar(
            api_token=REPLICATE_KEY, base_url=wire.url, portrait=portrait, poll_interval=0.02,
            size=(32, 24),
        ),
        persona=Persona(name="Wren", prompt="You are Wren.", portrait=portrait),
    )  # fmt: skip
    async with conv:
        reply = await conv.areply(Audio(samples, 16_000))
    assert reply.video is not None and reply.audio is not None
    ours = [r for r in caplog.records if r.name.startswith("lexperience.backends")]
    timings = [
        r.getMessage() for r in ours if " after " in r.getMessage() or " took " in r.getMessage()
    ]
    assert timings  # request timings are logged at DEBUG
    text = caplog.text + " ".join(r.getMessage() for r in caplog.records)
    for key in (OPENAI_KEY, ELEVENLABS_KEY, REPLICATE_KEY):
        assert key not in text


def test_a_missing_sdk_skips_only_its_own_tests(tmp_path: Path) -> None:
    """With ``replicate`` unimportable, the OpenAI tests still run and the Replicate ones skip."""
    blocked = tmp_path / "blocked" / "replicate"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text(
        "raise ModuleNotFoundError(\"No module named 'replicate'\", name='replicate')\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocked.parent), os.environ.get("PYTHONPATH", "")]),
    }
    out = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs",
         "tests/cloud/test_cloud_openai.py", "tests/cloud/test_cloud_replicate.py",
         "-k", "max_completion_tokens or sample_frames"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    summary = out.stdout.strip().splitlines()[-1] if out.stdout.strip() else out.stderr
    assert "1 passed" in summary and "1 skipped" in summary, out.stdout + out.stderr
    assert "replicate" in out.stdout
