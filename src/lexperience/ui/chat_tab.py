"""The "Conversation" tab: ask by voice, file or text; the reply plays while it is made."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import gradio as gr

from ..errors import LexperienceError
from .page import Page, PersonaReset, session_of
from .player import js_call, reply_player
from .session import UISession
from .widgets import METRIC_HEADERS, metrics_rows, question_from

__all__ = ["PLAYER_ID", "build_chat_tab"]

log = logging.getLogger(__name__)

PLAYER_ID = "chat"


def build_chat_tab(page: Page) -> None:
    """Build the tab (inside the page's ``gr.Blocks``)."""
    runtime = page.runtime
    pid = repr(PLAYER_ID)

    with gr.Tab("Conversation", id="chat", elem_id="lex-tab-chat"):
        with gr.Row(equal_height=False):
            with gr.Column(scale=2, min_width=300):
                player = reply_player(PLAYER_ID, audio_only=runtime.stack.avatar is None)
                metrics = gr.Dataframe(
                    headers=METRIC_HEADERS, value=[], label="Last turn (TurnMetrics)",
                    interactive=False, elem_id="lex-chat-metrics",
                )  # fmt: skip
            with gr.Column(scale=3, min_width=320):
                chatbot = gr.Chatbot(
                    label="Conversation", height=380, elem_id="lex-chat-log", buttons=["copy"],
                    feedback_options=None, placeholder="Ask the host something.",
                )  # fmt: skip
                text = gr.Textbox(
                    label="Type a question", placeholder="What is a black hole?", lines=1,
                    elem_id="lex-chat-text",
                )  # fmt: skip
                audio = gr.Audio(
                    sources=["microphone", "upload"], type="filepath",
                    label="…or record / upload it (recording stops: the host answers)",
                    elem_id="lex-chat-audio",
                )  # fmt: skip
                with gr.Row():
                    ask = gr.Button("Ask", variant="primary", elem_id="lex-chat-ask")
                    stop = gr.Button("Stop", variant="stop", elem_id="lex-chat-stop")
        played = gr.Number(visible=False)

    async def on_ask(
        audio_path: Any, question_text: str | None, heard: float | None, request: gr.Request
    ) -> AsyncIterator[tuple[Any, ...]]:
        question = question_from(audio_path, question_text)
        if question is None:
            raise gr.Error("Type a question, or record or upload one.")
        session = session_of(runtime, request)
        try:
            view = await runtime.chat(session)
        except LexperienceError as exc:
            raise gr.Error(f"The backends could not be loaded: {exc}") from exc
        first = True
        # closed for sure if Gradio drops the event (the page went away): the turn stops then
        async with contextlib.aclosing(view.ask(question, played=heard)) as updates:
            async for _ in updates:
                clear = ("", None) if first else (gr.skip(), gr.skip())
                first = False
                yield (view.messages(), view.player_state(), metrics_rows(view.metrics), *clear)

    async def on_stop(heard: float | None, request: gr.Request) -> Any:
        session = session_of(runtime, request)
        if session.chat is None:
            return gr.skip()
        changed = await session.chat.stop(heard)
        return session.chat.messages() if changed else gr.skip()

    # The browser hands over where the player stood: the question cut the reply there.
    ask_js = js_call(f"[a, t, (lx.player({pid}).arm(), lx.player({pid}).stop())]", "a", "t", "p")
    gr.on(
        triggers=[ask.click, text.submit, audio.stop_recording], fn=on_ask,
        inputs=[audio, text, played], outputs=[chatbot, player, metrics, text, audio], js=ask_js,
        show_progress="hidden", trigger_mode="multiple", concurrency_limit=page.turn_limit,
        concurrency_id="lexperience-turns",
    )  # fmt: skip
    stop.click(
        on_stop, inputs=[played], outputs=[chatbot], js=js_call(f"[lx.player({pid}).stop()]", "p"),
        show_progress="hidden", concurrency_limit=None,
    )  # fmt: skip

    async def on_open(request: gr.Request) -> list[Any]:
        # a new tab: its conversation opens now, while the listener thinks of a question
        try:
            await runtime.chat(session_of(runtime, request))
        except LexperienceError as exc:
            log.warning("the conversation could not be prepared: %s", exc)
        return []

    page.on_load.append((on_open, []))

    async def on_clear(request: gr.Request) -> list[Any]:
        session = session_of(runtime, request)
        if session.chat is not None:
            await session.chat.clear()
        return [{"url": None}, []]

    chatbot.clear(on_clear, outputs=[player, metrics], concurrency_limit=None)

    async def reset(session: UISession) -> list[Any]:
        return [[], {"url": None}, []]

    page.resets.append(PersonaReset(outputs=[chatbot, player, metrics], values=reset))
