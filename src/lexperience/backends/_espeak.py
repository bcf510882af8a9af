"""A small ctypes binding to libespeak-ng (from the ``espeakng-loader`` package).

It synthesises speech with *timed phoneme events*: every phoneme comes with the sample at which it
starts, in IPA. :mod:`.espeak_tts` speaks with it; :mod:`.piper_tts` uses its phoneme timings for
lip sync when a Piper voice cannot report its own alignments.

libespeak-ng keeps global state (one voice, one set of parameters, one callback), so every call
goes through :data:`LOCK`; and every call blocks, so callers run it in a worker thread.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from .._optional import require
from ..errors import BackendError, ConfigurationError

__all__ = [
    "LOCK",
    "SAMPLE_RATE",
    "EspeakEvent",
    "Timeline",
    "check_voice",
    "phoneme_timeline",
    "synthesize",
]

#: Serialises every call into libespeak-ng (its state is process-wide).
LOCK = threading.RLock()

#: espeak-ng's formant synthesiser always speaks at 22,050 Hz.
SAMPLE_RATE = 22_050

# speak_lib.h
_AUDIO_OUTPUT_SYNCHRONOUS = 2
_INIT_PHONEME_EVENTS = 0x0001
_INIT_PHONEME_IPA = 0x0002
_INIT_DONT_EXIT = 0x8000
_CHARS_UTF8 = 1
_POS_CHARACTER = 1
_EVENT_LIST_TERMINATED = 0
_EVENT_WORD = 1
_EVENT_SENTENCE = 2
_EVENT_END = 5
_EVENT_MSG_TERMINATED = 6
_EVENT_PHONEME = 7
_PARAM_RATE = 1
_PARAM_VOLUME = 2
_PARAM_PITCH = 3
_BUFFER_MS = 100


class _Event(ctypes.Structure):
    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", ctypes.c_char * 8),  # a union; phoneme events hold the IPA name here
    ]


_Callback = ctypes.CFUNCTYPE(
    ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event)
)


class EspeakEvent(NamedTuple):
    """One timed event: ``kind`` is ``"phoneme"``, ``"word"``, ``"sentence"`` or ``"end"``;
    ``sample`` counts from the start of the text; ``phoneme`` is IPA (``""`` for a pause)."""

    kind: str
    sample: int
    phoneme: str = ""


#: Called from inside espeak with each buffer of int16 samples and the events that came with it;
#: return False to stop synthesis.
Sink = Callable[[np.ndarray, list[EspeakEvent]], bool]


class _Engine:
    """The loaded library, initialised once per process."""

    def __init__(self) -> None:
        loader = require("espeakng_loader", "local", feature="espeak-ng speech and phoneme timings")
        try:
            lib_path = Path(loader.get_library_path())
            data_path = Path(loader.get_data_path())
        except Exception as exc:  # the package raises RuntimeError when its data is missing
            raise ConfigurationError(
                f"espeakng-loader is installed without its data ({exc}). Fix: reinstall it with "
                'pip install --force-reinstall "lexperience[local]"'
            ) from exc
        try:
            lib = ctypes.CDLL(str(lib_path))
        except OSError as exc:
            raise ConfigurationError(
                f"cannot load libespeak-ng from {lib_path} ({exc}). Fix: reinstall espeakng-loader"
            ) from exc
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_Callback]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_Synth.argtypes = [
            ctypes.c_void_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int, ctypes.c_uint,
            ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p,
        ]  # fmt: skip
        lib.espeak_Synth.restype = ctypes.c_int
        options = _INIT_PHONEME_EVENTS | _INIT_PHONEME_IPA | _INIT_DONT_EXIT
        rate = lib.espeak_Initialize(
            _AUDIO_OUTPUT_SYNCHRONOUS, _BUFFER_MS, str(data_path.parent).encode(), options
        )
        if rate <= 0:
            raise ConfigurationError(
                f"libespeak-ng could not initialise with its data in {data_path} (code {rate}). "
                "Fix: reinstall espeakng-loader"
            )
        self.lib: Any = lib
        self.sample_rate = int(rate)
        self.voice: str | None = None
        self.sink: Sink | None = None
        self.error: BaseException | None = None
        self.aborted = False
        # Kept referenced for the life of the process: espeak holds the pointer.
        self._callback = _Callback(self._on_audio)
        lib.espeak_SetSynthCallback(self._callback)

    def _on_audio(self, wav: Any, count: int, events: Any) -> int:
        try:
            found: list[EspeakEvent] = []
            i = 0
            while events[i].type != _EVENT_LIST_TERMINATED:
                ev = events[i]
                if ev.type == _EVENT_PHONEME:
                    name = bytes(ev.id).split(b"\0", 1)[0].decode("utf-8", "ignore")
                    found.append(EspeakEvent("phoneme", int(ev.sample), name))
                elif ev.type == _EVENT_WORD:
                    found.append(EspeakEvent("word", int(ev.sample)))
                elif ev.type == _EVENT_SENTENCE:
                    found.append(EspeakEvent("sentence", int(ev.sample)))
                elif ev.type in (_EVENT_END, _EVENT_MSG_TERMINATED):
                    found.append(EspeakEvent("end", int(ev.sample)))
                i += 1
            if count > 0 and wav:
                samples = np.ctypeslib.as_array(wav, shape=(count,)).copy()
            else:
                samples = np.zeros(0, dtype=np.int16)
            if self.sink is not None and not self.sink(samples, found):
                self.aborted = True
                return 1
            return 0
        except BaseException as exc:  # never let an exception unwind through C
            self.error = exc
            self.aborted = True
            return 1

    def set_voice(self, voice: str) -> None:
        if voice == self.voice:
            return
        code = self.lib.espeak_SetVoiceByName(voice.encode())
        if code != 0:
            self.voice = None
            raise ConfigurationError(
                f"espeak-ng has no voice {voice!r}. Fix: use a language code it knows, such as "
                "'en-us', 'en-gb', 'en', 'fr', 'de', 'es' (see `espeak-ng --voices`)"
            )
        self.voice = voice


_ENGINE: _Engine | None = None


def _engine() -> _Engine:
    global _ENGINE
    with LOCK:
        if _ENGINE is None:
            _ENGINE = _Engine()
        return _ENGINE


def check_voice(voice: str) -> None:
    """Raise :class:`ConfigurationError` if espeak-ng has no voice ``voice`` (blocking)."""
    with LOCK:
        _engine().set_voice(voice)


def synthesize(
    text: str,
    *,
    voice: str,
    sink: Sink,
    rate: int | None = None,
    pitch: int | None = None,
    volume: int | None = None,
) -> int:
    """Speak ``text`` (blocking), calling ``sink`` with each buffer of int16 samples and events.

    Returns the number of samples produced. Raises :class:`ConfigurationError` for an unknown
    voice and :class:`BackendError` when espeak-ng fails.
    """
    data = text.replace("\x00", "").encode("utf-8")
    with LOCK:
        engine = _engine()
        engine.set_voice(voice)
        # The parameters are global too: always set all three (espeak-ng's defaults when None).
        for param, value in (
            (_PARAM_RATE, 175 if rate is None else rate),
            (_PARAM_PITCH, 50 if pitch is None else pitch),
            (_PARAM_VOLUME, 100 if volume is None else volume),
        ):
            engine.lib.espeak_SetParameter(param, int(value), 0)
        total = 0

        def counting(samples: np.ndarray, events: list[EspeakEvent]) -> bool:
            nonlocal total
            total += int(samples.shape[0])
            return sink(samples, events)

        engine.sink, engine.error, engine.aborted = counting, None, False
        buffer = ctypes.create_string_buffer(data)
        try:
            code = engine.lib.espeak_Synth(
                buffer, len(data) + 1, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None
            )
        finally:
            engine.sink = None
        if engine.error is not None:
            error, engine.error = engine.error, None
            raise error
        if code != 0 and not engine.aborted:
            raise BackendError(f"espeak-ng failed to speak the text (error code {code})")
        return total


@dataclass
class Timeline:
    """Phoneme timings of a text, split into sentences as espeak-ng splits them.

    ``sentences[i]`` is ``(start_sample, end_sample, [(sample, ipa), ...])``; samples count from the
    start of the whole text at :attr:`sample_rate`.
    """

    sample_rate: int
    total_samples: int
    sentences: list[tuple[int, int, list[tuple[int, str]]]] = field(default_factory=list)

    def phonemes(self) -> list[tuple[int, str]]:
        """Every phoneme of every sentence, in order."""
        return [p for _, _, phonemes in self.sentences for p in phonemes]


def phoneme_timeline(text: str, *, voice: str, rate: int | None = None) -> Timeline:
    """Synthesise ``text`` with espeak-ng (discarding the audio) and return its phoneme timings.

    Blocking; about 10 ms per second of speech.
    """
    starts: list[int] = []
    phonemes: list[tuple[int, str]] = []

    def sink(samples: np.ndarray, events: list[EspeakEvent]) -> bool:
        for ev in events:
            if ev.kind == "sentence":
                starts.append(ev.sample)
            elif ev.kind == "phoneme":
                phonemes.append((ev.sample, ev.phoneme))
        return True

    total = synthesize(text, voice=voice, sink=sink, rate=rate)
    if not starts or starts[0] > (phonemes[0][0] if phonemes else 0):
        starts.insert(0, 0)
    bounds = [*starts[1:], total]
    sentences: list[tuple[int, int, list[tuple[int, str]]]] = []
    for start, end in zip(starts, bounds, strict=True):
        mine = [p for p in phonemes if start <= p[0] < end or (end == total and p[0] == end)]
        sentences.append((start, end, mine))
    return Timeline(_engine().sample_rate, total, [s for s in sentences if s[1] > s[0] or s[2]])
