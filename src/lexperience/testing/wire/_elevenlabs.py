"""ElevenLabs' wire protocol: ``/stream`` (raw PCM), ``/stream/with-timestamps`` (NDJSON with
base64 PCM and character timings) and the ``stream-input`` websocket.

Behaviour options: ``relative_times`` (HTTP) gives character times per piece instead of from
the start; websocket ``error`` answers with a quota error, ``drop`` cuts the connection without a
close frame (code 1006) after the first audio, and a ``status`` other than 200 closes it with
1011 before any audio.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from ._core import WireBase
from ._model import (
    ELEVENLABS_KEY,
    ELEVENLABS_VOICE_HZ,
    PCM_PIECE_S,
    Recorded,
    speech_seconds,
    tone,
)

__all__ = ["ElevenLabsService"]

_SERVICE = "elevenlabs"


class ElevenLabsService(WireBase):
    """The ElevenLabs endpoints (endpoint names for :meth:`script`: ``el_stream``,
    ``el_timestamps``, ``el_ws``). What the websocket received is in :attr:`ws_messages`."""

    ws_messages: list[dict[str, Any]]
    ws_events: list[tuple[str, float]]

    def elevenlabs_routes(self) -> list[BaseRoute]:
        return [
            Route(
                "/v1/text-to-speech/{voice}/stream/with-timestamps",
                self.el_stream,
                methods=["POST"],
            ),
            Route("/v1/text-to-speech/{voice}/stream", self.el_stream, methods=["POST"]),
            WebSocketRoute("/v1/text-to-speech/{voice}/stream-input", self.el_websocket),
        ]

    def _el_audio(self, text: str, rate: int) -> tuple[bytes, float]:
        per = self.profile.speech_s_per_char
        return tone(speech_seconds(text, self.profile), rate, ELEVENLABS_VOICE_HZ).tobytes(), per

    async def el_stream(self, request: Request) -> Response:
        timestamps = request.url.path.endswith("/with-timestamps")
        endpoint = "el_timestamps" if timestamps else "el_stream"
        ex, early = await self.exchange(endpoint, "tts", _SERVICE, request)
        if early is not None:
            return early
        req = ex.json()
        fmt = ex.rec.query.get("output_format", "mp3_44100_128")
        if not fmt.startswith("pcm_"):
            return self.json(ex, {"detail": "pcm only here"}, status=422, service=_SERVICE)
        rate = int(fmt.split("_")[1])
        text = str(req.get("text", ""))
        ex.rec.info["chars"] = len(text)
        pcm, per = self._el_audio(text, rate)
        step = int(PCM_PIECE_S * rate) * 2
        relative = bool(ex.behaviour.options.get("relative_times"))
        pieces: list[tuple[float, bytes]] = []
        for k, start in enumerate(range(0, len(pcm), step)):
            audio = pcm[start : start + step]
            offset = self.profile.audio_offset(k * PCM_PIECE_S)
            if not timestamps:
                pieces.append((offset, audio))
                continue
            t0, t1 = k * PCM_PIECE_S, (k + 1) * PCM_PIECE_S
            chars = [j for j in range(len(text)) if t0 <= j * per < t1]
            base = t0 if relative else 0.0
            line = {
                "audio_base64": base64.b64encode(audio).decode(),
                "alignment": {
                    "characters": [text[j] for j in chars],
                    "character_start_times_seconds": [j * per - base for j in chars],
                    "character_end_times_seconds": [(j + 1) * per - base for j in chars],
                },
                "normalized_alignment": None,
            }
            raw = json.dumps(line).encode() + b"\n"
            if ex.behaviour.malformed and k >= 1:
                raw = raw[: len(raw) // 2] + b"\n"  # a line the SDK cannot parse (and skips)
            pieces.append((offset, raw))
        media = "application/x-ndjson" if timestamps else "audio/pcm"
        return self.stream(ex, pieces, media, service=_SERVICE)

    async def el_websocket(self, ws: WebSocket) -> None:
        behaviour = self._next("el_ws")
        headers = {k.lower(): v for k, v in ws.headers.items()}
        query = dict(ws.query_params)
        rec = Recorded("el_ws", "WS", ws.url.path, headers, query, b"", stage="tts",
                       arrived=time.perf_counter())  # fmt: skip
        with self._lock:
            self.requests.append(rec)
        if self.check_keys and headers.get("xi-api-key") != ELEVENLABS_KEY:
            await ws.close(code=1008, reason="Invalid API key")
            return
        if behaviour.status != 200:
            await ws.close(code=1011, reason=f"scripted {behaviour.status}")
            return
        await ws.accept()
        rate = int(query.get("output_format", "pcm_16000").split("_")[1])
        sent_audio = False
        try:
            while True:
                message = json.loads(await ws.receive_text())
                self.ws_messages.append(message)
                self.ws_events.append(("recv", time.monotonic()))
                text = message.get("text")
                if text == "":
                    break
                if not text or not text.strip():
                    continue
                if behaviour.options.get("error"):
                    await ws.send_text(json.dumps({"message": "quota exceeded", "error": "quota_exceeded",
                                                   "code": 1008}))  # fmt: skip
                    await ws.close(code=1008)
                    return
                if behaviour.options.get("drop") and sent_audio:
                    return  # no close frame: the server goes away (the client sees 1006)
                if not sent_audio and self.profile.tts_first_byte_s:
                    await asyncio.sleep(self.profile.tts_first_byte_s)
                pcm, per = self._el_audio(text, rate)
                reply = {
                    "audio": base64.b64encode(pcm).decode(),
                    "isFinal": None,
                    "alignment": {
                        "chars": list(text),
                        "charStartTimesMs": [round(i * per * 1000) for i in range(len(text))],
                        "charDurationsMs": [round(per * 1000)] * len(text),
                    },
                }
                await ws.send_text(json.dumps(reply))
                sent_audio = True
                rec.sent.append(time.perf_counter() - rec.arrived)
                self.ws_events.append(("send", time.monotonic()))
            if behaviour.options.get("drop"):
                return
            await ws.send_text(json.dumps({"isFinal": True}))
            await ws.close()
            rec.finished = True
        except WebSocketDisconnect:
            pass
