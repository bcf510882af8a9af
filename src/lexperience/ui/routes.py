"""The two HTTP routes the players fetch, beside Gradio's own.

* ``GET /lexperience/media/{key}.mp4``: a reply as a fragmented MP4, streamed while it is made
  (chunked; ``X-Lexperience-Mime`` names the codecs for Media Source Extensions,
  ``X-Lexperience-Offset`` the seconds before reply position 0). ``204`` when the turn ended
  without audio; ``404`` for a key that is not (or no longer) live.
* ``GET /lexperience/episode/{session}/{name}``: the episode audio of a browser session (byte
  ranges, so the player can seek).
* ``POST /lexperience/played/{key}``: the Live tab's player reports how much of a reply it
  played (``{"url": ..., "seconds": ...}``), for the live session's playback clock.

Both keys are secrets made per browser session (``secrets.token_urlsafe``): knowing one is the
only way in, as with Gradio's own session files.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from fastapi import APIRouter, HTTPException, Response
from fastapi.responses import FileResponse, StreamingResponse
from pydantic import BaseModel, Field

from .runtime import UIRuntime
from .stream import ReplyStream

__all__ = ["media_router"]

_NO_STORE = {"Cache-Control": "no-store"}


class Played(BaseModel):
    """A player's report: it has played ``seconds`` of the reply at ``url``."""

    url: str = Field(max_length=300)
    seconds: float = Field(ge=0, le=24 * 3600)


def media_router(runtime: UIRuntime) -> APIRouter:
    router = APIRouter(prefix="/lexperience", include_in_schema=False)

    @router.get("/media/{key}.mp4")
    async def reply_media(key: str) -> Response:
        stream = runtime.stream(key)
        if stream is None:
            raise HTTPException(status_code=404, detail="no such reply")
        await stream.wait_started()
        if stream.mime_type is None:
            return Response(status_code=204, headers=_NO_STORE)
        headers = {
            **_NO_STORE,
            "X-Lexperience-Mime": stream.mime_type,
            "X-Lexperience-Offset": f"{stream.start_offset:.6f}",
            "X-Accel-Buffering": "no",  # a reverse proxy must not hold the stream back
        }
        return StreamingResponse(_body(stream), media_type="video/mp4", headers=headers)

    @router.get("/episode/{session_key}/{name}")
    async def episode_audio(session_key: str, name: str) -> Response:
        path = runtime.episode_audio(session_key)
        if path is None or path.name != name or not path.is_file():
            raise HTTPException(status_code=404, detail="no such episode audio")
        return FileResponse(path)

    @router.post("/played/{key}")
    async def played(key: str, report: Played) -> Response:
        view = runtime.live_view(key)
        if view is None:
            raise HTTPException(status_code=404, detail="no such live session")
        stream_key = report.url.rsplit("/", 1)[-1].removesuffix(".mp4")
        view.report(stream_key, report.seconds)
        return Response(status_code=204, headers=_NO_STORE)

    return router


async def _body(stream: ReplyStream) -> AsyncIterator[bytes]:
    async for chunk in stream.read():
        yield chunk
