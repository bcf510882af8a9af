"""What the tabs of the app share: :class:`Page`, and the :class:`TabBuilder` contract.

A tab is a function that builds its components inside the page's ``gr.Blocks`` and wires its
handlers to the :class:`~lexperience.ui.runtime.UIRuntime`. Adding a tab (as the "Live" tab,
:mod:`lexperience.ui.live_tab`, was added) means writing one more such function and listing it
in :data:`lexperience.ui.app.DEFAULT_TABS`; nothing else changes. A tab that shows per-persona state
registers a :class:`PersonaReset` so that picking another persona clears it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from .runtime import UIRuntime
from .session import UISession

__all__ = ["Page", "PersonaReset", "TabBuilder", "session_of"]


@dataclass
class PersonaReset:
    """Components a tab resets when the persona changes, and the values it resets them to."""

    outputs: Sequence[Any]
    values: Callable[[UISession], Awaitable[list[Any]]]


@dataclass
class Page:
    """The page under construction: the runtime and the shared controls."""

    runtime: UIRuntime
    persona: Any  # the persona picker (gr.Dropdown)
    resets: list[PersonaReset] = field(default_factory=list)
    #: Handlers run when a page loads (a new browser session), with their outputs.
    on_load: list[tuple[Callable[..., Awaitable[list[Any]]], Sequence[Any]]] = field(
        default_factory=list
    )

    @property
    def turn_limit(self) -> int:
        """Concurrent turns over all sessions (Gradio queues the rest)."""
        return self.runtime.config.max_concurrent_turns


class TabBuilder(Protocol):
    """Builds one tab inside the page's ``gr.Blocks`` (called inside its context)."""

    def __call__(self, page: Page) -> None: ...


def session_of(runtime: UIRuntime, request: Any) -> UISession:
    """The browser session of a Gradio request (``gr.Request``)."""
    session_id = getattr(request, "session_hash", None)
    if not session_id:
        raise RuntimeError("this handler needs a browser session (a gr.Request)")
    return runtime.sessions.get(str(session_id))
