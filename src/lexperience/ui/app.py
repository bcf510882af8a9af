"""The Gradio app: :func:`build_blocks` lays out the page, :func:`create_app` serves it.

The page is a ``gr.Blocks`` with a shared header (the persona picker and the notice that the
host is a fictional, AI-generated persona) and one tab per :data:`DEFAULT_TABS` entry. It is
mounted on a FastAPI app next to the players' media routes (:mod:`lexperience.ui.routes`); the
app's lifespan loads the backends once and releases them at shutdown.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any, cast

import gradio as gr
from fastapi import FastAPI

from .chat_tab import build_chat_tab
from .config import UIConfig
from .episode_tab import build_episode_tab
from .live_tab import build_live_tab
from .page import Page, TabBuilder, session_of
from .routes import media_router
from .runtime import UIRuntime
from .widgets import persona_note

__all__ = ["DEFAULT_TABS", "build_blocks", "create_app"]

log = logging.getLogger(__name__)

#: The tabs of the page, in order. A new tab is one more builder here.
DEFAULT_TABS: tuple[TabBuilder, ...] = (build_chat_tab, build_live_tab, build_episode_tab)

_CSS = """
#lex-notice { font-size: 0.92em; }
#lex-notice p { margin: 0; }
"""


def build_blocks(runtime: UIRuntime, tabs: Sequence[TabBuilder] = DEFAULT_TABS) -> gr.Blocks:
    """The page of the app on ``runtime``."""
    choices = runtime.persona_choices()
    default = runtime.persona("default")
    with gr.Blocks(title=runtime.config.title) as blocks:
        with gr.Row(equal_height=True):
            gr.Markdown(f"## {runtime.config.title}", elem_id="lex-title")
            persona = gr.Dropdown(
                choices=choices, value="default", label="Persona", interactive=len(choices) > 1,
                elem_id="lex-persona", scale=0, min_width=260,
            )  # fmt: skip
        notice = gr.Markdown(persona_note(default), elem_id="lex-notice")
        page = Page(runtime=runtime, persona=persona)
        for build in tabs:
            build(page)

        async def on_persona(name: str, request: gr.Request) -> list[Any]:
            session = session_of(runtime, request)
            try:
                await runtime.set_persona(session, name)
            except Exception as exc:
                raise gr.Error(f"That persona could not be used: {exc}") from exc
            values: list[Any] = [persona_note(runtime.persona(name))]
            for reset in page.resets:
                values += await reset.values(session)
            return values

        persona.change(
            on_persona, inputs=[persona],
            outputs=[notice, *(c for reset in page.resets for c in reset.outputs)],
            concurrency_limit=None,
        )  # fmt: skip
        for handler, outputs in page.on_load:
            blocks.load(handler, outputs=list(outputs), concurrency_limit=None)

        async def on_unload(request: gr.Request) -> None:
            if request.session_hash:
                await runtime.sessions.drop(request.session_hash)

        blocks.unload(on_unload)
    return cast(gr.Blocks, blocks)


def create_app(
    config: UIConfig | None = None,
    *,
    runtime: UIRuntime | None = None,
    tabs: Sequence[TabBuilder] = DEFAULT_TABS,
    auth: tuple[str, str] | None = None,
) -> FastAPI:
    """The ASGI app: the Gradio page at ``/`` and the media routes under ``/lexperience/``.

    Pass ``runtime`` to share one (tests read its sessions); otherwise one is made from
    ``config``. ``auth`` is a user name and password the page asks for.
    """
    runtime = runtime or UIRuntime(config or UIConfig())

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.state.runtime = runtime
    app.include_router(media_router(runtime))
    blocks = build_blocks(runtime, tabs)
    blocks.queue(default_concurrency_limit=None)
    mounted = gr.mount_gradio_app(
        app,
        blocks,
        path="/",
        auth=auth,
        max_file_size=runtime.config.max_upload_bytes,
        footer_links=[],
        run_history=False,
        ssr_mode=False,
        css=_CSS,
        theme=gr.themes.Soft(primary_hue="violet"),
        mcp_server=False,
    )
    return cast(FastAPI, mounted)
