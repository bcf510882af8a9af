"""The knobs of live mode: :class:`LiveOptions` (validated by pydantic)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["CLOUD_PREEMPTIVE_SILENCE", "DEFAULT_BACKCHANNELS", "LiveOptions"]

#: The default ``preemptive_silence`` when the STT and the LLM both run in the cloud.
CLOUD_PREEMPTIVE_SILENCE = 0.064

#: Words that acknowledge without taking the floor: an utterance made only of these while the
#: host speaks is a backchannel, not an interruption (compared after :func:`~.words.normalise`).
DEFAULT_BACKCHANNELS: tuple[str, ...] = (
    "mhm", "mm", "mmm", "hm", "hmm", "uh", "huh", "uhhuh", "uh-huh", "mm-hmm", "mmhmm", "um",
    "ah", "oh", "yeah", "yep", "yes", "ok", "okay", "right", "sure", "alright", "i see", "wow",
    "cool", "nice", "great",
)  # fmt: skip


class LiveOptions(BaseModel):
    """How a live session listens, takes turns and lets itself be interrupted.

    Attributes:
        vad_threshold: Silero speech probability above which a 32 ms frame is speech.
        vad_release: probability below which a frame is silence again (hysteresis; the frames
            in between keep the current state).
        min_speech: seconds of speech frames before speech counts as started (a click or a
            single loud frame starts nothing).
        speech_end_silence: seconds of silence after which the speech counts as ended
            (``SpeechEnded``).
        end_of_turn_silence: seconds of silence after the speech that end the user's turn; the
            reply starts (or, preemptive, is released) then.
        pre_roll: seconds of audio before the detected start given to STT (the VAD reacts a
            frame or two late; word onsets are quiet).
        post_roll: seconds of audio after the detected end given to STT (at most
            ``speech_end_silence``).
        max_turn_seconds: the longest user turn; a longer one is answered at this length.
        interim_transcripts: run STT on the speech so far, every ``interim_interval`` seconds
            of a turn being spoken (``InterimTranscript`` events, e.g. to show the words as they
            come). Off by default: each is a full STT run (a paid request in the cloud, CPU
            time taken from the decision that ends the turn locally: a CPU-bound STT cannot be
            stopped mid-clip, so the end-of-turn transcript may wait for it). ``None``: on for
            a local STT only. Preemptive replies emit an ``InterimTranscript`` either way.
        interim_interval: seconds between interim transcripts.
        barge_in: let the user interrupt the host by speaking.
        barge_in_min_speech: seconds of speech over the host's reply that interrupt it (shorter
            sounds, a cough, a quick "mhm", do not; their transcript is checked when they end).
        false_interruption: after an interruption whose speech had no words or only a
            backchannel: ``"resume"`` the reply from the sentence that was cut, or ``"end"`` it
            there (the history keeps what was heard either way).
        backchannels: the words of a backchannel (see :data:`DEFAULT_BACKCHANNELS`).
        preemptive: start the reply after ``preemptive_silence`` of silence, during the
            end-of-turn silence, on the transcript so far; it is kept if the final transcript is the same (and released at
            the end of the turn), else cancelled without a trace. ``None`` (default): on when
            the LLM runs locally, off for a cloud LLM (a cancelled attempt costs tokens).
        preemptive_silence: the pause that starts a preemptive reply (at most
            ``speech_end_silence``; speech that goes on cancels it at the end of the turn, if its
            words changed). ``None`` (default): 64 ms (two VAD frames) when the STT and the LLM
            both run in the cloud, where an attempt at a short pause between words costs no
            local CPU; 0.1 s otherwise (a CPU-bound local STT and LLM busy with such attempts
            delay the final transcript).
        echo_cancel: subtract the loudspeaker signal from the microphone when chunks carry it
            (:class:`~lexperience.live.DuplexChunk`).
        echo_filter_seconds: length of the adaptive echo filter (the room's echo tail it
            models after the delay).
        echo_max_delay: the longest loudspeaker-to-microphone delay searched for.
        echo_margin_db: while the host speaks, a speech frame also needs this much more energy
            than the predicted echo to count as the user (double-talk check).
        hold_events: events of a speculative reply kept back until it is confirmed (the
            pipeline waits when they are full).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    vad_threshold: float = Field(default=0.5, gt=0, lt=1)
    vad_release: float = Field(default=0.35, gt=0, lt=1)
    min_speech: float = Field(default=0.064, ge=0)
    speech_end_silence: float = Field(default=0.16, gt=0)
    end_of_turn_silence: float = Field(default=0.5, gt=0)
    pre_roll: float = Field(default=0.25, ge=0, le=2)
    post_roll: float = Field(default=0.1, ge=0)
    max_turn_seconds: float = Field(default=60.0, gt=1)
    interim_transcripts: bool | None = False
    interim_interval: float = Field(default=1.0, gt=0)
    barge_in: bool = True
    barge_in_min_speech: float = Field(default=0.4, gt=0)
    false_interruption: Literal["resume", "end"] = "resume"
    backchannels: tuple[str, ...] = DEFAULT_BACKCHANNELS
    preemptive: bool | None = None
    preemptive_silence: float | None = Field(default=None, gt=0)
    echo_cancel: bool = True
    echo_filter_seconds: float = Field(default=0.064, gt=0, le=0.5)
    echo_max_delay: float = Field(default=0.4, gt=0, le=2)
    echo_margin_db: float = Field(default=6.0, ge=0)
    hold_events: int = Field(default=256, ge=8)

    @classmethod
    def with_end_of_turn(cls, seconds: float, **options: object) -> LiveOptions:
        """Options with ``end_of_turn_silence=seconds`` and the shorter silences that must not
        exceed it lowered to fit."""
        end = min(0.16, seconds)
        fitted: dict[str, object] = {"speech_end_silence": end, "post_roll": min(0.1, end)}
        if end < 0.1:
            fitted["preemptive_silence"] = end
        return cls.model_validate({**fitted, **options, "end_of_turn_silence": seconds})

    def preemptive_pause(self, cloud: bool) -> float:
        """The ``preemptive_silence`` in force (``cloud``: the STT and the LLM are remote)."""
        if self.preemptive_silence is not None:
            return self.preemptive_silence
        return min(CLOUD_PREEMPTIVE_SILENCE if cloud else 0.1, self.speech_end_silence)

    @model_validator(mode="after")
    def _check(self) -> LiveOptions:
        if self.vad_release > self.vad_threshold:
            raise ValueError("vad_release must not exceed vad_threshold")
        if self.speech_end_silence > self.end_of_turn_silence:
            raise ValueError("speech_end_silence must not exceed end_of_turn_silence")
        if self.post_roll > self.speech_end_silence:
            raise ValueError("post_roll must not exceed speech_end_silence")
        if (
            self.preemptive_silence is not None
            and self.preemptive_silence > self.speech_end_silence
        ):
            raise ValueError("preemptive_silence must not exceed speech_end_silence")
        return self
