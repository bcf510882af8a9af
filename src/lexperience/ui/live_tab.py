"""The "Live" tab: talk continuously; the host answers when you stop and stops when you speak.

The microphone is a streaming ``gr.Audio``: while it records, Gradio sends a chunk every
:data:`STREAM_EVERY` seconds to :func:`on_chunk`, which queues it for the tab's
:class:`~lexperience.ui.live_view.LiveView` (its :class:`~lexperience.live.LiveSession` starts
with the first chunk). Starting the recording also starts a second, long-running event that
sends the view's changes (the chat log, the status log, the player) as they happen. Stopping the
recording ends the input (the last turn is still answered); Stop ends everything at once.

Echo: Gradio's recorder asks the browser for ``getUserMedia({audio: true})``, so the browser's
own audio processing applies, whose defaults in Chrome, Firefox and Safari include
``echoCancellation`` (and noise suppression, auto gain): the reply playing in the same page is
removed from the microphone by the browser. The server gets no loudspeaker signal on this path,
so the session's own echo canceller (:class:`~lexperience.live.DuplexChunk`) is not used here;
with loudspeakers and a browser whose echo cancellation is off, use headphones.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr

from ..errors import LexperienceError
from .page import Page, PersonaReset, session_of
from .player import reply_player
from .session import UISession

__all__ = ["PLAYER_ID", "STREAM_EVERY", "build_live_tab"]

log = logging.getLogger(__name__)

PLAYER_ID = "live"
#: Seconds of microphone audio per chunk the browser sends (the barge-in reacts within a chunk).
STREAM_EVERY = 0.25
_NO_STT = "Live mode needs a speech-to-text backend: this app's stack has none."


def build_live_tab(page: Page) -> None:
    """Build the tab (inside the page's ``gr.Blocks``)."""
    runtime = page.runtime
    has_stt = runtime.stack.stt is not None

    with gr.Tab("Live", id="live", elem_id="lex-tab-live"):
        gr.Markdown(
            "Start the microphone and talk: the host answers when you stop, and stops when you "
            "speak over it. Headphones help if your browser does not cancel echo."
            if has_stt else _NO_STT,
            elem_id="lex-live-help",
        )  # fmt: skip
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                player = reply_player(PLAYER_ID, audio_only=runtime.stack.avatar is None)
                mic = gr.Audio(
                    sources=["microphone"], streaming=True, type="numpy", label="Microphone",
                    interactive=has_stt, elem_id="lex-live-mic",
                )  # fmt: skip
                stop = gr.Button("Stop", variant="stop", elem_id="lex-live-stop")
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(
                    label="Live conversation", height=320, elem_id="lex-live-log",
                    feedback_options=None, placeholder="Start the microphone and say something.",
                )  # fmt: skip
                status = gr.Markdown("**off**", elem_id="lex-live-status")

    outputs = [chatbot, player, status]
    handlers = LiveHandlers(page)
    mic.start_recording(
        handlers.on_listen, outputs=outputs, show_progress="hidden", concurrency_limit=None
    )
    mic.stream(
        handlers.on_chunk, inputs=[mic], outputs=None, stream_every=STREAM_EVERY,
        time_limit=None, concurrency_limit=None, show_progress="hidden",
    )  # fmt: skip
    mic.stop_recording(handlers.on_mic_off, show_progress="hidden", concurrency_limit=None)
    stop.click(
        handlers.on_stop, outputs=outputs, show_progress="hidden", concurrency_limit=None,
        js=f"() => {{ window.lexperience.player({PLAYER_ID!r}).stop(); return []; }}",
    )  # fmt: skip
    chatbot.clear(handlers.on_clear, outputs=outputs, concurrency_limit=None)
    page.resets.append(PersonaReset(outputs=outputs, values=handlers.reset))


class LiveHandlers:
    """The tab's Gradio handlers (plain methods, so tests call them with a request)."""

    def __init__(self, page: Page) -> None:
        self.runtime = page.runtime

    async def _view(self, request: gr.Request) -> Any:
        session = session_of(self.runtime, request)
        try:
            return await self.runtime.live(session)
        except LexperienceError as exc:
            raise gr.Error(f"Live mode is not available: {exc}") from exc

    @staticmethod
    def render(view: Any) -> tuple[Any, ...]:
        return (view.messages(), dict(view.player), view.status())

    async def on_listen(self, request: gr.Request) -> AsyncIterator[tuple[Any, ...]]:
        """The recording started: listen, and send every change until the session ends."""
        view = await self._view(request)
        view.start()
        async for _ in view.updates():
            yield self.render(view)

    async def on_chunk(self, chunk: Any, request: gr.Request) -> None:
        """A microphone chunk."""
        view = await self._view(request)
        view.push(chunk)

    async def on_mic_off(self, request: gr.Request) -> None:
        session = session_of(self.runtime, request)
        if session.live is not None:
            session.live.end_input()

    async def on_stop(self, request: gr.Request) -> tuple[Any, ...]:
        session = session_of(self.runtime, request)
        if session.live is None:
            return (gr.skip(), {"url": None}, gr.skip())
        await session.live.stop()
        return self.render(session.live)

    async def on_clear(self, request: gr.Request) -> tuple[Any, ...]:
        session = session_of(self.runtime, request)
        if session.live is None:
            return ([], {"url": None}, "**off**")
        await session.live.clear()
        return self.render(session.live)

    async def reset(self, session: UISession) -> list[Any]:
        return [[], {"url": None}, "**off**"]
