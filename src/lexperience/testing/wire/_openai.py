"""OpenAI's wire protocol: transcriptions (JSON or SSE), Chat Completions and the Responses API
(SSE), speech (streamed 24 kHz PCM).

Behaviour options: chat ``finish_reason`` (e.g. ``"content_filter"``) ends the reply with that
reason; responses ``fail`` (an error code) ends the stream with ``response.failed``.
"""

from __future__ import annotations

import itertools
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ._core import WireBase, read_wav, sse
from ._model import OPENAI_VOICE_HZ, PCM_PIECE_S, speech_seconds, tokenize, tone

__all__ = ["OpenAIService"]

_SERVICE = "openai"


class OpenAIService(WireBase):
    """The OpenAI endpoints (endpoint names for :meth:`script`: ``transcribe``, ``chat``,
    ``responses``, ``speech``)."""

    def openai_routes(self) -> list[Route]:
        return [
            Route("/v1/audio/transcriptions", self.transcribe, methods=["POST"]),
            Route("/v1/chat/completions", self.chat, methods=["POST"]),
            Route("/v1/responses", self.responses, methods=["POST"]),
            Route("/v1/audio/speech", self.speech, methods=["POST"]),
        ]

    async def transcribe(self, request: Request) -> Response:
        ex, early = await self.exchange("transcribe", "stt", _SERVICE, request)
        if early is not None:
            return early
        fields = {k: v[1].decode() for k, v in ex.form.items() if v[0] is None}
        wav = ex.form.get("file", (None, b""))[1]
        if not wav.startswith(b"RIFF"):
            return self.json(ex, {"error": {"message": "no WAV file"}}, status=400)
        pcm, rate = read_wav(wav)
        text, info = self.dialogue.transcribe(pcm, rate)
        ex.rec.info.update(info)
        if fields.get("stream") != "true":
            await self.until(ex.rec, self.profile.stt_s)
            if ex.behaviour.malformed:
                return Response(b'{"text": "broken', media_type="application/json")
            return self.json(ex, {"text": text, "usage": {"type": "duration", "seconds": 2}})
        words = text.split(" ")
        pieces = [
            sse({"type": "transcript.text.delta", "delta": (" " if i else "") + w})
            for i, w in enumerate(words)
        ]
        if ex.behaviour.malformed:
            pieces.insert(1, b"data: {not json\n\n")
        pieces.append(sse({"type": "transcript.text.done", "text": text}))
        at = self.profile.stt_s
        return self.stream(ex, [(at, p) for p in pieces], "text/event-stream", service=_SERVICE)

    async def chat(self, request: Request) -> Response:
        ex, early = await self.exchange("chat", "llm", _SERVICE, request)
        if early is not None:
            return early
        req = ex.json()
        tokens = tokenize(
            self.dialogue.answer(req.get("messages", [])), self.profile.llm_token_chars
        )
        limit = req.get("max_tokens") or req.get("max_completion_tokens")
        if isinstance(limit, int):
            tokens = tokens[:limit]
        ex.rec.info["tokens"] = len(tokens)
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": req.get("model", "m")}  # fmt: skip

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            return sse({**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})

        p = self.profile
        pieces: list[tuple[float, bytes]] = []
        for i, token in enumerate(tokens):
            data = chunk({"content": token})
            if i == 0:  # the role chunk carries no text: it goes with the first token
                data = chunk({"role": "assistant", "content": ""}) + data
            if ex.behaviour.malformed and i == 1:
                data += b'data: {"id": "chatcmpl-1", "choices": [\n\n'
            pieces.append((p.token_offset(i), data))
        end = p.token_offset(max(0, len(tokens) - 1))
        finish = str(ex.behaviour.options.get("finish_reason", "stop"))
        pieces.append((end, chunk({}, finish) + b"data: [DONE]\n\n"))
        return self.stream(ex, pieces, "text/event-stream", service=_SERVICE)

    async def responses(self, request: Request) -> Response:
        ex, early = await self.exchange("responses", "llm", _SERVICE, request)
        if early is not None:
            return early
        req = ex.json()
        resp = {"id": "resp_1", "object": "response", "created_at": 1, "model": req.get("model"),
                "status": "in_progress", "output": []}  # fmt: skip
        seq = itertools.count()
        created = sse({"type": "response.created", "sequence_number": next(seq), "response": resp},
                      "response.created")  # fmt: skip
        messages = [
            {"role": "system" if m.get("role") == "developer" else m.get("role"),
             "content": m.get("content")}
            for m in req.get("input", []) if isinstance(m, dict)
        ]  # fmt: skip
        tokens = tokenize(self.dialogue.answer(messages), self.profile.llm_token_chars)
        p = self.profile
        pieces: list[tuple[float, bytes]] = []
        for i, token in enumerate(tokens):
            event = {"type": "response.output_text.delta", "sequence_number": next(seq),
                     "item_id": "msg_1", "output_index": 0, "content_index": 0,
                     "delta": token, "logprobs": []}  # fmt: skip
            data = sse(event, "response.output_text.delta")
            pieces.append((p.token_offset(i), created + data if i == 0 else data))
        end = p.token_offset(max(0, len(tokens) - 1))
        fail = ex.behaviour.options.get("fail")
        if fail:
            failed = {**resp, "status": "failed", "error": {"code": fail, "message": "it broke"}}
            last = sse({"type": "response.failed", "sequence_number": next(seq),
                        "response": failed}, "response.failed")  # fmt: skip
        else:
            done = {**resp, "status": "completed"}
            last = sse({"type": "response.completed", "sequence_number": next(seq),
                        "response": done}, "response.completed")  # fmt: skip
        pieces.append((end, last))
        return self.stream(ex, pieces, "text/event-stream", service=_SERVICE)

    async def speech(self, request: Request) -> Response:
        ex, early = await self.exchange("speech", "tts", _SERVICE, request)
        if early is not None:
            return early
        req = ex.json()
        if req.get("response_format") != "pcm":
            return self.json(ex, {"error": {"message": "this server speaks pcm only"}}, status=400)
        text = str(req.get("input", ""))
        ex.rec.info["chars"] = len(text)
        pcm = tone(speech_seconds(text, self.profile), 24_000, OPENAI_VOICE_HZ).tobytes()
        step = int(PCM_PIECE_S * 24_000) * 2
        pieces = [
            (self.profile.audio_offset(k * PCM_PIECE_S), pcm[start : start + step])
            for k, start in enumerate(range(0, len(pcm), step))
        ]
        return self.stream(ex, pieces, "application/octet-stream", service=_SERVICE)
