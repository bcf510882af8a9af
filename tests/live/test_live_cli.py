"""``lexperience live`` without an audio device (this machine has none): a clear message and
exit code 3; and the sound device's duplex plumbing against a stand-in PortAudio."""

from __future__ import annotations

import asyncio
import sys
import types

import numpy as np
import pytest

from lexperience.cli import main
from lexperience.errors import ConfigurationError
from lexperience.events import AudioEvent, TurnInterrupted
from lexperience.media import AudioChunk
from lexperience.reply import Reply


def test_live_without_an_audio_device_says_so(capsys) -> None:
    assert main(["live"]) == 3
    err = capsys.readouterr().err
    if "pip install" in err:  # sounddevice itself is not installed here
        assert 'pip install "lexperience[live]"' in err
    else:  # PortAudio is missing, or lists no device
        assert "configuration error: no audio device:" in err and "--list-devices" in err


def test_a_bad_turn_taking_flag_fails_before_the_device_is_opened(capsys) -> None:
    assert main(["live", "--end-of-turn", "0"]) == 3
    assert "configuration error: --end-of-turn 0.0:" in capsys.readouterr().err


class FakePortAudio(types.ModuleType):
    """A stand-in ``sounddevice``: a device list, settings checks and a duplex stream that runs
    its callback when asked."""

    def __init__(self, devices: list[dict[str, object]]) -> None:
        super().__init__("sounddevice")
        self.devices = devices
        self.streams: list[FakePortAudio.Stream] = []
        outer = self

        class Stream:
            def __init__(self, *, callback, blocksize, **kwargs) -> None:
                self.callback, self.blocksize = callback, blocksize
                outer.streams.append(self)

            def __enter__(self):
                return self

            def __exit__(self, *exc) -> None:
                return None

            def tick(self, samples: np.ndarray) -> np.ndarray:
                out = np.zeros((self.blocksize, 1), np.float32)
                self.callback(samples.reshape(-1, 1), out, self.blocksize, None, None)
                return out[:, 0]

        self.Stream = Stream

    def query_devices(self):
        return self.devices

    def check_input_settings(self, **kwargs) -> None:
        if not any(d.get("max_input_channels") for d in self.devices):
            raise RuntimeError("Error querying device -1")

    def check_output_settings(self, **kwargs) -> None:
        return None


def test_no_device_listed_or_no_microphone(monkeypatch, capsys) -> None:
    from lexperience.live.device import SoundDevice

    monkeypatch.setitem(sys.modules, "sounddevice", FakePortAudio([]))
    with pytest.raises(ConfigurationError, match="no audio device: PortAudio lists no devices"):
        SoundDevice()
    assert main(["live", "--list-devices"]) == 0
    assert "no audio devices: PortAudio lists none" in capsys.readouterr().out
    monkeypatch.setitem(sys.modules, "sounddevice", FakePortAudio([{"max_input_channels": 0}]))
    assert main(["live"]) == 3
    assert "no audio device: Error querying device -1" in capsys.readouterr().err


def test_a_missing_sounddevice_names_the_extra(monkeypatch, capsys) -> None:
    monkeypatch.setitem(sys.modules, "sounddevice", None)  # import fails: not installed
    assert main(["live"]) == 3
    assert 'pip install "lexperience[live]"' in capsys.readouterr().err


async def test_the_device_plays_the_reply_and_records_it_as_the_reference(monkeypatch) -> None:
    from lexperience.live.device import SoundDevice

    fake = FakePortAudio([{"max_input_channels": 1, "max_output_channels": 1}])
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    device = SoundDevice(block_seconds=0.01)
    tone = np.full(24_000 // 10, 0.5, np.float32)  # 0.1 s at 24 kHz: resampled to 16 kHz
    device.hear(AudioEvent(turn_id=1, t=0.0, chunk=AudioChunk(tone, 24_000), offset=0.0))
    mic = device.microphone()
    first = asyncio.ensure_future(mic.__anext__())
    await asyncio.sleep(0)
    (stream,) = fake.streams
    played = stream.tick(np.full(160, 0.1, np.float32))
    item = await first
    assert np.allclose(item.mic.samples, 0.1) and np.array_equal(item.playback.samples, played)
    assert played.max() > 0.4 and device.played(1) == pytest.approx(0.01)
    device.hear(TurnInterrupted(turn_id=1, t=0.0, heard_text="", played_seconds=0.01,
                                reply=Reply(turn_id=1, user_text="q", text="")))  # fmt: skip
    assert not stream.tick(np.zeros(160, np.float32)).any()  # the rest of turn 1 was dropped
    await mic.aclose()
