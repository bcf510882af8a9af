"""What ``lexperience ui`` runs: :class:`UIConfig`."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from ..config import Settings
from ..live.options import LiveOptions

__all__ = ["UIConfig", "sample_episode"]


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def sample_episode() -> tuple[Path, Path] | None:
    """The sample episode of ``examples/episode`` (transcript with metadata, audio), when this
    is a source checkout or the examples are in the working directory."""
    here = Path(__file__).resolve()
    for root in (Path.cwd(), *here.parents):
        folder = root / "examples" / "episode"
        transcript, audio = folder / "slow-signals-12.json", folder / "slow-signals-12.ogg"
        if transcript.is_file() and audio.is_file():
            return transcript, audio
    return None


class UIConfig(BaseModel):
    """Settings of the Gradio app.

    Attributes:
        stack: the backends and persona (the same :class:`~lexperience.config.Settings` as
            ``lexperience reply --config``); default the offline stack.
        personas_dir: a folder of persona files offered in the persona picker, besides the
            stack's persona (the built-in host unless ``stack.persona`` names a file).
        episode: the transcript the episode player opens with (default: the sample episode,
            when it is there).
        episode_audio: its audio (default: the transcript's ``audio`` field, or a file with the
            transcript's name and an audio suffix).
        max_concurrent_turns: turns computing at once over all browser sessions; more wait in
            Gradio's queue (default: the CPU cores, at least 2).
        session_ttl: seconds a browser session may stay idle before its conversations are
            dropped (closing the tab drops them at once).
        max_upload_bytes: the largest uploaded or recorded file.
        title: the page title.
        live: the "Live" tab's turn-taking and barge-in knobs
            (:class:`~lexperience.live.LiveOptions`).
    """

    model_config = ConfigDict(extra="forbid")

    stack: Settings = Field(default_factory=Settings)
    personas_dir: Path | None = None
    episode: Path | None = None
    episode_audio: Path | None = None
    max_concurrent_turns: int = Field(default_factory=lambda: max(2, _cores()), ge=1)
    session_ttl: float = Field(default=3600.0, gt=0)
    max_upload_bytes: int = Field(default=50 * 1024 * 1024, ge=1024)
    title: str = "lexperience"
    live: LiveOptions = Field(default_factory=LiveOptions)

    def default_episode(self) -> tuple[Path, Path | None] | None:
        """The transcript and audio the episode tab opens with."""
        if self.episode is not None:
            return self.episode, self.episode_audio
        return sample_episode()
