"""The "Episode" tab: play a podcast episode, pause, ask the host about it, resume.

The episode plays in an ``<audio>`` element. Pausing sends the position to the server, which
moves the session's :class:`~lexperience.EpisodeContext` there and primes the LLM with it while
the listener asks (voice or text). The host answers about the episode up to that position, in
the reply player; the table shows the earlier moments the answer drew on (``ctx.last``).
Resuming the episode stops the host (the history keeps what was heard).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import gradio as gr

from ..episode import format_timestamp, parse_timestamp
from ..errors import InvalidInputError, LexperienceError
from .episode_state import EpisodeSession
from .page import Page, PersonaReset, session_of
from .player import episode_player, js_call, reply_player
from .session import UISession
from .widgets import METRIC_HEADERS, metrics_rows, question_from

__all__ = ["PLAYER_ID", "build_episode_tab"]

log = logging.getLogger(__name__)

PLAYER_ID = "episode"
PASSAGE_HEADERS = ["time", "speaker", "what was said", "score"]
_NO_EPISODE = "No episode loaded: open a transcript (and its audio) below."


def audio_url(session: UISession, episode: EpisodeSession) -> str | None:
    if episode.audio is None:
        return None
    # the file name only busts the browser's cache when another episode is loaded
    return f"lexperience/episode/{session.key}/{episode.audio.name}"


def _player_value(session: UISession, episode: EpisodeSession | None) -> dict[str, Any]:
    if episode is None:
        return {"src": None}
    return {"src": audio_url(session, episode), "position": episode.position}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) else None


def build_episode_tab(page: Page) -> None:
    """Build the tab (inside the page's ``gr.Blocks``)."""
    runtime = page.runtime
    pid = repr(PLAYER_ID)

    with gr.Tab("Episode", id="episode", elem_id="lex-tab-episode") as tab:
        info = gr.Markdown(_NO_EPISODE, elem_id="lex-episode-info")
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=320):
                episode = episode_player(PLAYER_ID)
                with gr.Row():
                    status = gr.Markdown("", elem_id="lex-episode-status")
                    resume = gr.Button("Resume the episode", elem_id="lex-episode-resume", scale=0)
                position = gr.Textbox(
                    label="Position (mm:ss) — set by the player when you pause", value="0:00",
                    elem_id="lex-episode-position",
                )  # fmt: skip
                chatbot = gr.Chatbot(
                    label="Ask the host about the episode", height=300,
                    elem_id="lex-episode-log", feedback_options=None,
                    placeholder="Pause the episode and ask about what was just said.",
                )  # fmt: skip
                text = gr.Textbox(
                    label="Your question", placeholder="What did the guest say about…?",
                    elem_id="lex-episode-text",
                )  # fmt: skip
                audio = gr.Audio(
                    sources=["microphone", "upload"], type="filepath",
                    label="…or ask aloud", elem_id="lex-episode-audio",
                )  # fmt: skip
                with gr.Row():
                    ask = gr.Button("Ask", variant="primary", elem_id="lex-episode-ask")
                    stop = gr.Button("Stop", variant="stop", elem_id="lex-episode-stop")
            with gr.Column(scale=2, min_width=300):
                player = reply_player(PLAYER_ID, audio_only=runtime.stack.avatar is None)
                passages = gr.Dataframe(
                    headers=PASSAGE_HEADERS, value=[], interactive=False, wrap=True,
                    column_widths=["14%", "22%", "52%", "12%"],
                    label="What the answer drew on (nothing after the position)",
                    elem_id="lex-episode-passages",
                )  # fmt: skip
                metrics = gr.Dataframe(
                    headers=METRIC_HEADERS, value=[], label="Last turn (TurnMetrics)",
                    interactive=False, elem_id="lex-episode-metrics",
                )  # fmt: skip
        with gr.Accordion("Open another episode", open=False):
            transcript_file = gr.File(
                label="Transcript (WebVTT, SRT, JSON or [mm:ss] text)",
                file_types=[".vtt", ".srt", ".json", ".txt"], type="filepath",
            )  # fmt: skip
            audio_file = gr.File(
                label="Its audio (optional)", file_types=["audio"], type="filepath"
            )
            load = gr.Button("Open", elem_id="lex-episode-open")
        played = gr.Number(visible=False)
        at = gr.Number(visible=False)

    def shown(session: UISession) -> list[Any]:
        ep = session.episode
        if ep is None:
            return [_NO_EPISODE, {"src": None}, "", "0:00"]
        return [ep.describe(), _player_value(session, ep), ep.status(),
                format_timestamp(ep.position)]  # fmt: skip

    async def on_open_default(request: gr.Request) -> list[Any]:
        session = session_of(runtime, request)
        default = runtime.config.default_episode()
        if session.episode is None and default is not None:
            try:
                await runtime.open_episode(session, *default)
            except LexperienceError as exc:
                log.warning("the default episode could not be opened: %s", exc)
        return shown(session)

    async def on_open(transcript_path: Any, audio_path: Any, request: gr.Request) -> list[Any]:
        if not transcript_path:
            raise gr.Error("Choose a transcript file first.")
        session = session_of(runtime, request)
        try:
            await runtime.open_episode(
                session, Path(transcript_path), Path(audio_path) if audio_path else None
            )
        except LexperienceError as exc:
            raise gr.Error(f"That episode could not be opened: {exc}") from exc
        return [*shown(session), [], {"url": None}, [], []]

    async def on_pause(evt: gr.EventData, request: gr.Request) -> list[Any]:
        ep = session_of(runtime, request).episode
        at_s = _number(getattr(evt, "_data", {}).get("position"))
        if ep is None or at_s is None:
            return [gr.skip(), gr.skip()]
        ep.pause(at_s)
        return [ep.status(), format_timestamp(ep.position)]

    async def on_play(evt: gr.EventData, request: gr.Request) -> list[Any]:
        ep = session_of(runtime, request).episode
        if ep is None:
            return [gr.skip(), gr.skip()]
        changed = await ep.view.stop(_number(getattr(evt, "_data", {}).get("played")))
        return [ep.view.messages() if changed else gr.skip(), "Playing…"]

    async def on_ask(
        audio_path: Any, question_text: str | None, heard: float | None,
        player_at: float | None, typed_at: str | None, request: gr.Request,
    ) -> AsyncIterator[tuple[Any, ...]]:  # fmt: skip
        question = question_from(audio_path, question_text)
        if question is None:
            raise gr.Error("Type a question, or record or upload one.")
        session = session_of(runtime, request)
        ep = session.episode
        if ep is None:
            raise gr.Error("Open an episode first.")
        where = player_at
        if where is None and typed_at:
            try:
                where = parse_timestamp(typed_at)
            except (InvalidInputError, ValueError) as exc:
                raise gr.Error(f"Not a position: {typed_at!r} (use mm:ss)") from exc
        try:
            updates = ep.ask(question, position=where, played=heard)
            async with contextlib.aclosing(updates):
                first = True
                async for _ in updates:
                    clear = ("", None, ep.status()) if first else (gr.skip(),) * 3
                    first = False
                    yield (ep.view.messages(), ep.view.player_state(), ep.passages(),
                           metrics_rows(ep.view.metrics), *clear)  # fmt: skip
        except InvalidInputError as exc:  # a position that is not a time
            raise gr.Error(str(exc)) from exc

    async def on_stop(heard: float | None, request: gr.Request) -> Any:
        ep = session_of(runtime, request).episode
        if ep is None:
            return gr.skip()
        changed = await ep.view.stop(heard)
        return ep.view.messages() if changed else gr.skip()

    head = [info, episode, status, position]
    # the sample episode (and its conversation) is prepared when the tab is first opened, not
    # with every page: a listener who only chats does not pay for it
    tab.select(on_open_default, outputs=head, concurrency_limit=None)
    load.click(
        on_open, inputs=[transcript_file, audio_file],
        outputs=[*head, chatbot, player, passages, metrics], concurrency_limit=None,
    )  # fmt: skip
    episode.pause(on_pause, outputs=[status, position], show_progress="hidden",
                  concurrency_limit=None)  # fmt: skip
    episode.play(on_play, outputs=[chatbot, status], show_progress="hidden",
                 concurrency_limit=None)  # fmt: skip
    # Asking pauses the episode (quietly: the position travels with the question) and cuts
    # any reply still playing at the point the listener heard.
    ask_js = js_call(
        f"[a, t, (lx.player({pid}).arm(), lx.player({pid}).stop()), "
        f"(lx.episode({pid}).pauseQuietly(), lx.episode({pid}).position()), w]",
        "a", "t", "p", "e", "w",
    )  # fmt: skip
    gr.on(
        triggers=[ask.click, text.submit, audio.stop_recording], fn=on_ask,
        inputs=[audio, text, played, at, position], js=ask_js,
        outputs=[chatbot, player, passages, metrics, text, audio, status],
        show_progress="hidden", trigger_mode="multiple", concurrency_limit=page.turn_limit,
        concurrency_id="lexperience-turns",
    )  # fmt: skip
    stop.click(
        on_stop, inputs=[played], outputs=[chatbot], js=js_call(f"[lx.player({pid}).stop()]", "p"),
        show_progress="hidden", concurrency_limit=None,
    )  # fmt: skip
    resume.click(None, js=f"() => {{ window.lexperience.episode({pid}).resume(); }}")

    async def on_clear(request: gr.Request) -> list[Any]:
        ep = session_of(runtime, request).episode
        if ep is not None:
            await ep.view.clear()
        return [{"url": None}, [], []]

    chatbot.clear(on_clear, outputs=[player, passages, metrics], concurrency_limit=None)

    async def reset(session: UISession) -> list[Any]:
        return [[], {"url": None}, [], []]

    page.resets.append(PersonaReset(outputs=[chatbot, player, passages, metrics], values=reset))
