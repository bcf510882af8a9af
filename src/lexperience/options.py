"""Tunable limits of a turn (:class:`TurnOptions`), validated by pydantic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TurnOptions"]


class TurnOptions(BaseModel):
    """Limits and knobs of the streaming pipeline; the defaults suit spoken Q&A.

    Attributes:
        max_input_seconds: longest accepted input audio; longer input is refused up front.
        max_input_bytes: largest accepted input audio file (path or bytes), checked before it is
            read or decoded.
        max_input_chars: longest accepted typed question.
        silence_threshold_dbfs: input whose loudest 20 ms stays below this is "silence only".
        stage_timeout: seconds a backend may take to produce its next result (transcript, token,
            audio chunk) before the turn fails with ``BackendTimeoutError``; ``None`` disables.
        max_tokens: passed to the LLM as its token limit.
        sentence_queue: bounded channel size between the sentence splitter and TTS.
        audio_queue: bounded channel size between TTS and the avatar (chunks).
        event_queue: bounded channel size between the pipeline and the event consumer.
        first_clause_words: let the first piece for TTS end at a comma after this many words
            (0 disables), so the first audio starts sooner.
        context_budget_tokens: token budget shared by all context providers.
        prime_llm: while STT transcribes, let an LLM that can (``aprime``: llama-cpp) evaluate
            the prompt's known start (persona, examples, history), so the turn only evaluates
            the question.
        hold_llm_for_first_audio: an LLM that computes on this machine's CPU (``shares_cpu``:
            llama-cpp) stops reading on after the first piece until its first audio chunk, so
            that TTS gets the cores for it (the LLM is seconds ahead of the speech anyway).
        keep_frames: keep the raw video frames in the :class:`Reply` (large: about 20 MB per
            second of 512x512 video).
        encode_video: encode the reply video into ``Reply.video`` (one in-memory H.264 + AAC MP4)
            while it streams, in a worker thread (``areply``/``reply`` always do; needs the
            ``media`` extra, else the raw frames are kept).
        ai_generated_tag: write the ``ai_generated`` metadata tag into that MP4.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_input_seconds: float = Field(default=300.0, gt=0)
    max_input_bytes: int = Field(default=256 * 1024 * 1024, ge=1)
    max_input_chars: int = Field(default=4000, ge=1)
    silence_threshold_dbfs: float = Field(default=-55.0, le=0)
    stage_timeout: float | None = Field(default=60.0, gt=0)
    max_tokens: int | None = Field(default=400, ge=1)
    sentence_queue: int = Field(default=4, ge=1)
    audio_queue: int = Field(default=32, ge=1)
    event_queue: int = Field(default=64, ge=1)
    first_clause_words: int = Field(default=6, ge=0)
    context_budget_tokens: int = Field(default=1500, ge=0)
    prime_llm: bool = True
    hold_llm_for_first_audio: bool = True
    keep_frames: bool = False
    encode_video: bool = False
    ai_generated_tag: bool = True
