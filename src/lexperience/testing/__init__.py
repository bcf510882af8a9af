"""Test helpers shipped with the library: scripted fakes of every backend protocol."""

from .fakes import FakeAvatar, FakeLLM, FakeSTT, FakeTTS, speech_like

__all__ = ["FakeAvatar", "FakeLLM", "FakeSTT", "FakeTTS", "speech_like"]
