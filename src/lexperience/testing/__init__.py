"""Test helpers shipped with the library: scripted fakes of every backend protocol, and
:class:`LoopProbe`, which finds what blocks an event loop."""

from .fakes import FakeAvatar, FakeLLM, FakeStreamingSTT, FakeSTT, FakeTTS, speech_like
from .loop_probe import LoopProbe, Step

__all__ = [
    "FakeAvatar",
    "FakeLLM",
    "FakeSTT",
    "FakeStreamingSTT",
    "FakeTTS",
    "LoopProbe",
    "Step",
    "speech_like",
]
