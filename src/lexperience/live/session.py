"""The live session: a continuous microphone stream in, turns and their events out.

:class:`LiveSession` reads the microphone (one task), runs Silero VAD on 32 ms frames (in a worker
thread), and decides, frame by frame, in *session time* (seconds of microphone audio consumed):

* **turns**: speech starts (``SpeechStarted``), ends (``SpeechEnded`` after
  ``speech_end_silence``), and the user's turn ends after ``end_of_turn_silence``; then its audio
  (with a little before and after) is transcribed and answered by a conversation turn whose
  events follow. A turn whose transcript has no words (noise the VAD took for speech) is dropped.
* **barge-in**: speech over the host's reply that lasts ``barge_in_min_speech`` cuts the reply at
  once (before the next microphone chunk is read): the history keeps what was heard (from the
  playback clock), queued media are dropped, one ``TurnInterrupted`` goes out. Shorter speech over
  the reply is transcribed when it ends and interrupts only if it has real words.
* **false interruptions**: when the speech that cut the reply ends and had no words, or only a
  backchannel, the reply is resumed from the sentence that was cut (``FalseInterruption``, then a
  new turn speaking the rest), or ended there (``false_interruption="end"``).
* **preemption**: when speech ends, the audio so far is transcribed and a speculative reply starts
  on it, its events held back; at the end of the turn it is released if the final transcript has
  the same words, otherwise discarded without a trace (no history, no event, no hook). A reply
  whose audio nobody heard yet is also discarded if the user goes on speaking: the next turn
  answers all of what they said.

Every turn's history commit waits until its reply has been heard (a ``TurnDone`` goes out once
the reply's audio has played, by the playback clock), so a barge-in after the pipeline finished
still trims the history to what was heard.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, AsyncIterable, Callable
from typing import Any

from .._aio import cancel_and_wait
from ..errors import (
    ConfigurationError,
    ConversationBusyError,
)
from ..events import (
    AudioEvent,
    ErrorEvent,
    Event,
    FalseInterruption,
    InterimTranscript,
    SpeechEnded,
    SpeechStarted,
)
from ..media import Audio
from ..transcript import Transcript
from .detector import SpeechDetector, Transition
from .frontend import Frontend
from .options import LiveOptions
from .outbox import Outbox
from .playback import PlaybackClock
from .reply import ReplayLLM, ReplyRun, amend_commit
from .transcripts import Transcripts
from .userturn import Barged, UserTurn, as_error, is_local
from .vad import VAD, SileroVAD
from .words import has_words, is_backchannel, same_words

__all__ = ["LiveSession"]

log = logging.getLogger(__name__)

RATE = 16_000


class LiveSession:
    """Continuous conversation over a microphone stream (see the module docstring).

    Args:
        conversation: the conversation that answers (it needs an STT backend).
        options: see :class:`LiveOptions`.
        vad: the voice activity detector (default :class:`SileroVAD`).
        played: ``played(turn_id) -> seconds`` of that turn's reply heard so far (default: the
            :class:`PlaybackClock` assumes real-time playback from each reply's first audio).

    ``async for event in session.run(mic): ...``; :attr:`now` is the session time.
    """

    def __init__(
        self,
        conversation: Any,
        options: LiveOptions | None = None,
        *,
        vad: VAD | None = None,
        played: Callable[[int], float] | None = None,
    ) -> None:
        if conversation.backends.stt is None:
            raise ConfigurationError("live mode needs a conversation with an STT backend")
        self.conversation = conversation
        self.options = options or LiveOptions()
        self.vad = vad
        self.clock = PlaybackClock(played)
        self.preemptive = (
            self.options.preemptive
            if self.options.preemptive is not None
            else is_local(conversation, "llm")
        )
        cloud = not is_local(conversation, "stt") and not is_local(conversation, "llm")
        self.preemptive_silence = self.options.preemptive_pause(cloud)
        self.interim = (
            self.options.interim_transcripts
            if self.options.interim_transcripts is not None
            else is_local(conversation, "stt")
        )
        self.now = 0.0
        self.last_turn_id = 0
        self.outbox = Outbox(conversation.options.event_queue)
        self.user: UserTurn | None = None
        self.reply: ReplyRun | None = None
        self.front: Frontend | None = None
        self._detector: SpeechDetector | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self.transcripts = Transcripts(self)
        self._running = False
        self._closing = False

    # -- the public loop ------------------------------------------------------------------------
    async def run(self, audio_in: AsyncIterable[Any]) -> AsyncGenerator[Event, None]:
        """Listen to ``audio_in`` and yield every event, until it ends (the last turn is answered
        first) or the caller stops iterating (everything is cancelled, the history keeps what was
        heard)."""
        if self._running:
            raise ConversationBusyError("this live session is already running")
        self._running = True
        await self.conversation.aopen()
        if self.vad is None:
            self.vad = await asyncio.to_thread(SileroVAD)
        self.vad.reset()  # a detector shared between sessions starts afresh
        opts = self.options
        self.front = Frontend(self.vad, opts)
        frame_s = self.vad.frame_samples / self.vad.sample_rate
        self._detector = SpeechDetector(
            frame_seconds=frame_s, threshold=opts.vad_threshold, release=opts.vad_release,
            min_speech=opts.min_speech, end_silence=opts.speech_end_silence,
        )  # fmt: skip
        reader = asyncio.ensure_future(self._read(audio_in))
        reader.add_done_callback(lambda _: self.outbox.close())
        try:
            while True:
                event = await self.outbox.get()
                if event is None:
                    break
                if isinstance(event, AudioEvent):
                    self.clock.released(event.turn_id, event.chunk.duration, self.now)
                await self.conversation.hooks.dispatch(event)
                yield event
            if not reader.cancelled() and reader.exception() is not None:
                raise reader.exception()  # type: ignore[misc]
        finally:
            self._closing = True
            await cancel_and_wait(reader)
            await self._shutdown()

    async def _shutdown(self) -> None:
        await cancel_and_wait(*self._tasks)
        runs = {r for r in (self.reply, self.user.spec if self.user else None) if r is not None}
        for run in runs:
            played = self.clock.played(run.turn_id, self.now) if run.turn_id else 0.0
            await run.close(played)
        self.reply = None
        self.user = None

    # -- reading the microphone -----------------------------------------------------------------
    async def _read(self, audio_in: AsyncIterable[Any]) -> None:
        assert self.front is not None and self._detector is not None
        async for item in audio_in:
            for probability in await self.front.push(item):
                self.now = self.front.seconds
                await self._on_frame(self._detector.push(probability, self.now))
                await self._tick()  # the end of the turn, to the frame
        await self._finish_input()

    def _audio(self, start: float, end: float) -> Audio:
        assert self.front is not None
        return self.front.audio(start, end)

    # -- frame by frame -------------------------------------------------------------------------
    async def _on_frame(self, transition: Transition | None) -> None:
        assert self._detector is not None
        opts = self.options
        if transition is not None and transition.kind == "start":
            speaking = self._host_speaking()
            user = self.user
            if user is None:
                user = self.user = UserTurn(start=transition.at, overlap=speaking)
            else:
                user.revision += 1
                user.end = None
            self._emit(SpeechStarted, at=transition.at, while_replying=speaking)
        user = self.user
        if user is not None and self._detector.speaking:
            speech = user.speech + self._detector.speech_seconds(self.now)
            if speech >= opts.barge_in_min_speech:
                await self._long_speech(user)
            if (
                self.interim
                and self.now - max(user.start, user.interim_at) >= opts.interim_interval
                and not self.transcripts.busy
            ):
                user.interim_at = self.now
                self.transcripts.start(user, user.revision, self.now, interim=True)
        if user is not None and self._detector.speaking:
            self._maybe_preempt(user)
        if transition is not None and transition.kind == "end" and user is not None:
            user.end = transition.at
            user.speech += transition.duration
            self._emit(SpeechEnded, at=transition.at, duration=transition.duration)
            self._speech_ended(user)

    async def _long_speech(self, user: UserTurn) -> None:
        """The current speech has lasted ``barge_in_min_speech``: it takes the floor."""
        run = self.reply
        if run is None or run.closed or not self.options.barge_in:
            user.overlap = False
            return
        if run.audio_released:
            if not self._host_speaking():
                user.overlap = False  # the reply is over: this is the user's turn
                return
            played = self.clock.played(run.turn_id or 0, self.now)
            log.debug("barge-in at %.2f s: reply %s cut at %.2f s", self.now, run.turn_id, played)
            await run.cut(played)
            self.reply = None
            user.overlap = False
            user.barged = Barged(run, played)
            user.decided = False
        else:  # nothing of that reply was heard: the user is not done, answer all of it later
            log.debug("the user goes on speaking: reply %s dropped unheard", run.turn_id)
            await run.discard()
            self.reply = None
            if run is user.answer:
                user.answer = None
                user.eot = False
            user.overlap = False

    def _maybe_preempt(self, user: UserTurn) -> None:
        """A pause of ``preemptive_silence`` while still speaking: transcribe what was said and
        start a speculative reply on it; speech that goes on makes it a new revision."""
        assert self._detector is not None
        silence = self._detector.silence
        if user.preempted == user.revision and silence == 0.0:
            user.revision += 1  # the user went on: what was transcribed is not all any more
            return
        if (
            not self.preemptive
            or user.preempted == user.revision
            or silence < self.preemptive_silence - 1e-9
            or user.overlap
            or user.barged is not None
            or user.eot
            or self.reply is not None
        ):
            return
        user.preempted = user.revision
        end = min(self.now, self._detector.last_speech + self.options.post_roll)
        self.transcripts.start(user, user.revision, end)
        self._spawn(self._preempt(user, user.revision, end))

    def _speech_ended(self, user: UserTurn) -> None:
        rev, end = user.revision, self._stt_end(user)
        if user.overlap:
            self._spawn(self._check_overlap(user, rev, end))
        elif user.barged is not None and not user.decided:
            self._spawn(self._check_barge_in(user, rev, end))
        elif self.preemptive and not user.eot and self.reply is None and user.preempted != rev:
            self._spawn(self._preempt(user, rev, end))

    def _stt_end(self, user: UserTurn) -> float:
        end = user.end if user.end is not None else self.now
        return min(self.now, end + self.options.post_roll)

    async def _tick(self) -> None:
        user, opts = self.user, self.options
        assert self._detector is not None
        if (
            user is not None
            and self._detector.speaking
            and self.now - user.start >= (opts.max_turn_seconds)
        ):
            self._detector.reset()
            user.end = self.now
            self._emit(SpeechEnded, at=self.now, duration=self.now - user.start)
        if (
            user is not None
            and not self._detector.speaking
            and not self._detector.pending  # speech may be starting again
            and user.end is not None
            and not user.eot
            and self.now - user.end >= opts.end_of_turn_silence - 1e-9
        ):
            if user.overlap:  # sounds over the reply that did not interrupt it: forgotten
                self.user = None
            else:
                user.eot = True
                self._spawn(self._end_of_turn(user))
        run = self.reply
        if run is not None and run.closed and run.pipeline_done:
            # ended from outside (Conversation.interrupt(), a failure): keep what was heard
            run.gate.confirm()
            self.reply = None
            run = None
        if (
            run is not None
            and run.done_event is not None
            and not self.clock.playing(run.turn_id or 0, self.now)
        ):
            self.reply = None
            await run.finish()
        if run is not None and run.audio_released and user is not None and user.answer is run:
            self.user = None  # its reply is being heard: the user's turn is over

    # -- decisions --------------------------------------------------------------------------------
    async def _preempt(self, user: UserTurn, revision: int, end: float) -> None:
        transcript = await self.transcripts.get(user, revision)
        if (
            transcript is None
            or user is not self.user
            or user.revision != revision
            or user.eot
            or self.reply is not None
            or not has_words(transcript.text)
        ):
            return
        self._emit(InterimTranscript, text=transcript.text.strip(), until=end)
        if user.spec is not None:
            if same_words(user.spec.transcript.text, transcript.text):
                return  # what was added ("um") changed no word: the reply under way stands
            await user.spec.discard()
        user.spec = self._start(user, transcript, end, released=False)

    async def _end_of_turn(self, user: UserTurn) -> None:
        revision = user.revision
        end = self._stt_end(user)
        transcript = await self.transcripts.get(user, revision)
        if user is not self.user or user.revision != revision or not user.eot:
            return  # the user spoke again meanwhile: the next end of turn decides
        if transcript is None or not has_words(transcript.text):
            if user.barged is not None and not user.decided:
                await self._false_interruption(user, transcript)
                return
            if user.spec is not None:
                await user.spec.discard()
            self.user = None
            return
        if user.barged is not None and not user.decided:
            user.decided = True  # a real interruption: the words are answered
        spec, user.spec = user.spec, None
        if spec is not None and same_words(spec.transcript.text, transcript.text):
            run = spec
            log.debug("preemptive reply %s kept", spec.turn_id)
        else:
            if spec is not None:
                log.debug("preemptive reply %s dropped: the transcript changed", spec.turn_id)
                await spec.discard()
            run = self._start(user, transcript, end, released=True)
        user.answer = run
        self.reply = run
        run.release()

    def _start(
        self, user: UserTurn, transcript: Transcript, end: float, *, released: bool
    ) -> ReplyRun:
        speech_end = user.end if user.end is not None else end
        started_at = time.perf_counter() - max(0.0, self.now - speech_end)
        audio = self._audio(user.start - self.options.pre_roll, end)
        return ReplyRun(
            self, audio=audio, transcript=transcript, started_at=started_at, released=released
        )

    async def _check_overlap(self, user: UserTurn, revision: int, end: float) -> None:
        """Short speech over the reply ended: interrupt only if it had real words."""
        transcript = await self.transcripts.get(user, revision)
        if user is not self.user or not user.overlap or user.revision != revision:
            return
        text = transcript.text if transcript is not None else ""
        if has_words(text) and not is_backchannel(text, self.options.backchannels):
            run = self.reply
            if run is not None and not run.closed and self._host_speaking():
                played = self.clock.played(run.turn_id or 0, self.now)
                await run.cut(played)
                self.reply = None
            user.overlap = False
            user.decided = True
        # else: a "mhm" over the reply: the host goes on (forgotten at the end of the turn,
        # unless the user goes on speaking)

    async def _check_barge_in(self, user: UserTurn, revision: int, end: float) -> None:
        """The speech that cut the reply ended: was it a real interruption?"""
        transcript = await self.transcripts.get(user, revision)
        if user is not self.user or user.revision != revision or user.decided:
            return
        text = transcript.text if transcript is not None else ""
        if not has_words(text) or is_backchannel(text, self.options.backchannels):
            await self._false_interruption(user, transcript)

    async def _false_interruption(self, user: UserTurn, transcript: Transcript | None) -> None:
        barged = user.barged
        assert barged is not None
        user.decided = True
        self.user = None
        run = barged.run
        sentences = run.all_sentences()
        cut = run.cut_index(barged.played)
        rest = sentences[cut:] if cut >= 0 else []
        resume = self.options.false_interruption == "resume" and bool(rest) and self.reply is None
        self._emit(
            FalseInterruption, interrupted_turn_id=run.turn_id or 0,
            transcript=transcript.text.strip() if transcript is not None else "", resumed=resume,
        )  # fmt: skip
        if not resume:
            return
        prefix = " ".join(p for p in (run.prefix, *sentences[:cut]) if p)
        text = " ".join(rest)
        log.debug("false interruption: resuming reply %s at sentence %d", run.turn_id, cut)
        resumed = ReplyRun(
            self, audio=run.audio, transcript=run.transcript, started_at=time.perf_counter(),
            released=True, llm=ReplayLLM(text), commit=amend_commit(self, prefix), prefix=prefix,
        )  # fmt: skip
        self.reply = resumed

    # -- helpers ----------------------------------------------------------------------------------
    def _host_speaking(self) -> bool:
        run = self.reply
        if run is None or not run.audio_released or run.closed:
            return False
        return run.done_event is None or self.clock.playing(run.turn_id or 0, self.now)

    def _emit(self, event_type: type[Any], **fields: Any) -> None:
        self.outbox.put_session(event_type(turn_id=self.last_turn_id, t=self.now, **fields))

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None and not self._closing:
            log.error("live session task failed", exc_info=task.exception())
            self._emit(ErrorEvent, error=as_error(task.exception()), stage=None)

    async def _finish_input(self) -> None:
        """The microphone stream ended: answer what was said, let the last reply finish."""
        assert self._detector is not None
        user = self.user
        if user is not None and self._detector.speaking:
            self._detector.reset()
            user.end = self._detector.last_speech
            self._emit(SpeechEnded, at=user.end, duration=user.end - self._detector.onset)
        if user is not None and user.end is not None and not user.eot and not user.overlap:
            user.eot = True
            self._spawn(self._end_of_turn(user))
        while self._tasks:
            await asyncio.wait(set(self._tasks))
        run = self.reply
        if run is not None:
            await asyncio.wait({run.pump})
            await asyncio.wait({run.forward})
            self.reply = None
            await run.finish()
