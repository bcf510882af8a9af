"""Nothing heavy runs on the event loop: decoding input, checking long clips, watermarking frames,
encoding the reply video and closing backends all stay off it or cheap.

The probe measures each loop step in thread CPU time, which does not grow when other processes
load the machine, so these checks do not flake on a busy 2-core runner.
"""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest

from lexperience import Audio, Conversation
from lexperience.output.watermark import Watermark, _text_mask
from lexperience.testing import FakeAvatar, FakeLLM, FakeSTT, FakeTTS
from lexperience.testing.loop_probe import LoopProbe

#: The most CPU one step of the loop may take in the core's own code.
STEP_BUDGET_S = 0.020


def long_speech_wav(seconds: float) -> bytes:
    rng = np.random.default_rng(1)
    n = int(16_000 * seconds)
    t = np.arange(n) / 16_000
    voice = 0.3 * np.sin(2 * np.pi * 180 * t) * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t))
    noisy = voice + rng.normal(0, 0.01, n)
    return Audio(noisy.astype(np.float32), 16_000).to_wav_bytes()


async def test_a_turn_never_blocks_the_loop_for_more_than_20_ms() -> None:
    pytest.importorskip("av")  # the reply video is encoded as it streams
    question = long_speech_wav(120.0)  # two minutes: decoding and checking it is real work
    conv = Conversation(
        stt=FakeSTT(),
        llm=FakeLLM(" ".join(["A sentence of the answer."] * 6)),
        tts=FakeTTS(),
        avatar=FakeAvatar(size=(512, 512)),  # watermarked on the loop, encoded in a thread
    )
    await conv.aopen()
    gc.collect()
    gc.disable()  # a collection pause is the interpreter's, not the core's
    try:
        with LoopProbe() as probe:
            reply = await conv.areply(question)
    finally:
        gc.enable()
    assert reply.video is not None and reply.video.frames > 50
    assert probe.steps > 100
    worst = probe.worst(3)
    assert probe.max_cpu < STEP_BUDGET_S, f"the loop was blocked: {worst}"


async def test_closing_a_backend_that_is_loading_does_not_block_the_loop() -> None:
    fw = pytest.importorskip("lexperience.backends.faster_whisper_stt")
    pytest.importorskip("faster_whisper")
    stt = fw.FasterWhisperSTT()
    stt._lock.acquire()  # a load in progress in another thread holds the lock
    release = threading.Timer(0.3, stt._lock.release)
    release.start()
    with LoopProbe() as probe:
        await stt.aclose()
    release.join()
    assert probe.max_cpu < STEP_BUDGET_S and probe.max_wall < 0.2  # it waited off the loop


async def test_closing_piper_while_it_loads_does_not_block_the_loop() -> None:
    pt = pytest.importorskip("lexperience.backends.piper_tts")
    pytest.importorskip("piper")
    tts = pt.PiperTTS()
    tts._load_lock.acquire()
    release = threading.Timer(0.3, tts._load_lock.release)
    release.start()
    with LoopProbe() as probe:
        await tts.aclose()
    release.join()
    assert probe.max_cpu < STEP_BUDGET_S and probe.max_wall < 0.2


def test_the_watermark_glyph_mask_is_built_once() -> None:
    mark = Watermark()
    image = np.zeros((512, 512, 3), np.uint8)
    _text_mask.cache_clear()
    for _ in range(50):
        mark.apply(image)
    info = _text_mask.cache_info()
    assert info.misses == 1 and info.hits == 49
