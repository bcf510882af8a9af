"""The players as Gradio components: :func:`reply_player` and :func:`episode_player`.

Both are ``gr.HTML`` components with a fixed template (so Gradio never re-renders the media
element) and a small script (``static/player.js``, loaded once per page). The Python side sets
their ``value``; the script watches it:

* reply player: ``{"url": ..., "turn": n}``. A new URL starts a new reply: the script fetches the
  growing fragmented MP4 (:mod:`lexperience.ui.livemp4`) and appends it to a Media Source
  Extensions buffer as the bytes arrive, so the first sentence plays while the rest is made.
  In the browser, ``window.lexperience.player(id)`` has ``arm()`` (the question ended),
  ``position()`` and ``stop()`` (both return the reply seconds heard), and ``stats`` (times of
  the first bytes, the first playback, the end of the stream).
* episode player: ``{"src": ..., "position": s}``, an ``<audio>`` element whose ``pause`` and
  ``play`` events reach Python as the component's ``pause`` / ``play`` events, with the
  position (``gr.EventData``: ``position``, and ``played`` of the reply player it stopped).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import gradio as gr

__all__ = ["episode_player", "player_script", "reply_player"]

_STATIC = Path(__file__).with_name("static")


@cache
def player_script() -> str:
    """The players' JavaScript."""
    return (_STATIC / "player.js").read_text("utf-8")


@cache
def _css() -> str:
    return (_STATIC / "player.css").read_text("utf-8")


def _head() -> str:
    return f"<script>{player_script()}</script>"


def reply_player(player_id: str, *, audio_only: bool = False) -> Any:
    """A reply player (``gr.HTML``) registered in the page as ``player_id``."""
    css_class = "lex-player lex-audio-only" if audio_only else "lex-player"
    # no native controls: they would cover the "AI-generated" mark at the bottom of the frames
    template = (
        f'<div class="{css_class}" data-player="{player_id}">'
        '<video playsinline preload="auto"></video>'
        '<div class="lex-controls">'
        '<button type="button" class="lex-toggle" disabled>Pause</button>'
        '<button type="button" class="lex-replay" disabled>Replay</button>'
        '<span class="lex-caption" aria-live="polite"></span></div></div>'
    )
    return gr.HTML(
        value={"url": None},
        html_template=template,
        css_template=_css(),
        js_on_load=f"window.lexperience.mountReply(element, {json.dumps(player_id)}, props, watch);",
        head=_head(),
        elem_id=f"lex-reply-{player_id}",
        apply_default_css=False,
    )


def episode_player(player_id: str) -> Any:
    """An episode player (``gr.HTML``) registered in the page as ``player_id``."""
    template = (
        f'<div class="lex-episode" data-episode="{player_id}">'
        '<audio controls preload="auto"></audio></div>'
    )
    return gr.HTML(
        value={"src": None},
        html_template=template,
        css_template=_css(),
        js_on_load=(
            f"window.lexperience.mountEpisode(element, {json.dumps(player_id)}, props, watch, "
            "trigger);"
        ),
        head=_head(),
        elem_id=f"lex-episode-{player_id}",
        apply_default_css=False,
    )


def js_call(expression: str, *names: str) -> str:
    """A Gradio ``js=`` function taking ``names`` (the event's inputs) and returning the list
    ``expression`` builds from them (the inputs the Python handler then gets)."""
    return (
        f"async ({', '.join(names)}) => {{ const lx = window.lexperience; return {expression}; }}"
    )
