"""Piper's timing, for lip sync: phoneme durations from the voice itself, or from espeak-ng.

* :func:`with_alignment_output` exposes a Piper (VITS) voice's per-phoneme durations by marking its
  ``Ceil`` tensor as a graph output, editing the ONNX protobuf in memory (what
  ``piper.patch_voice_with_alignment`` does with the ``onnx`` package, without needing it).
* :func:`track_from_alignments` turns those durations into a viseme track of one sentence.
* :class:`EspeakFallback` maps espeak-ng's timed phoneme events onto Piper's sentences when the
  voice cannot report its alignments.
* :func:`spans` cuts a sentence's audio into near-equal chunks.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Iterator
from typing import Any

import numpy as np

from ..errors import LexperienceError
from ..visemes import phoneme_to_viseme
from . import _espeak
from ._local import VisemeTrack

__all__ = [
    "AlreadyAligned",
    "EspeakFallback",
    "spans",
    "track_from_alignments",
    "with_alignment_output",
]

_LOGGER = logging.getLogger("lexperience.backends.piper_tts")

_SILENT = set("^$_.,;:!?¡¿—–-…\"'()[]«»“”")  # BOS/EOS, pad and punctuation: the mouth closes
_STRESS = set("ˈˌ")  # belongs to the phoneme that follows


def spans(n: int, seconds: float, rate: int) -> list[tuple[int, int]]:
    """Split ``n`` samples into near-equal spans of about ``seconds``."""
    pieces = max(1, round(n / max(1.0, seconds * rate)))
    edges = np.linspace(0, n, pieces + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in itertools.pairwise(edges) if b > a]


def track_from_alignments(alignments: Any, n_samples: int, rate: int) -> VisemeTrack:
    """Viseme boundaries from Piper's per-phoneme sample counts (scaled to the audio length).

    Piper's phonemes are single code points: stress marks start the phoneme that follows them;
    length marks, diacritics, word spaces and symbols without a mouth shape lengthen the one
    before; punctuation, BOS and EOS close the mouth.
    """
    total = sum(int(a.num_samples) for a in alignments)
    scale = n_samples / total if total > 0 else 1.0
    track = VisemeTrack(rate)
    at = 0
    pending: int | None = None  # where a stress mark started the next phoneme
    previous: str | None = None
    for alignment in alignments:
        phoneme = str(alignment.phoneme)
        start = round(at * scale)
        at += int(alignment.num_samples)
        if phoneme in _STRESS:
            pending = start if pending is None else pending
            continue
        if phoneme in _SILENT:
            viseme = "sil"
        else:
            viseme = phoneme_to_viseme(phoneme)
            if viseme == "sil":  # a word space, length mark, diacritic: hold the mouth
                continue
        begin = pending if pending is not None else start
        pending = None
        if viseme != previous:
            track.add(begin, viseme)
            previous = viseme
    if previous != "sil":
        track.add(n_samples, "sil")
    return track


class EspeakFallback:
    """espeak-ng phoneme timings for one text, mapped onto Piper's sentences and scaled."""

    def __init__(self, voice: Any, text: str, *, espeak_voice: str, sample_rate: int) -> None:
        self.espeak_voice = espeak_voice
        self.sample_rate = sample_rate
        self.voice = voice
        self.text = text
        self._timeline: _espeak.Timeline | None = None
        self._counts: list[int] | None = None
        self._failed = False

    def _prepare(self) -> bool:
        if self._failed:
            return False
        if self._timeline is None:
            try:
                self._timeline = _espeak.phoneme_timeline(self.text, voice=self.espeak_voice)
                self._counts = [len(p) for p in self.voice.phonemize(self.text) if p]
            except (LexperienceError, OSError) as exc:
                _LOGGER.warning("no viseme timings for Piper (espeak-ng: %s)", exc)
                self._failed = True
                return False
        return True

    def track(self, index: int, n_phonemes: int, n_samples: int) -> VisemeTrack | None:
        if not self._prepare():
            return None
        timeline, counts = self._timeline, self._counts
        assert timeline is not None and counts is not None
        if len(counts) == len(timeline.sentences) and index < len(counts):
            start, end, phonemes = timeline.sentences[index]
        else:  # sentence splits disagree: cut the whole timeline by phoneme counts
            total_ph = max(1, sum(counts))
            done = sum(counts[:index])
            here = counts[index] if index < len(counts) else n_phonemes
            start = round(timeline.total_samples * done / total_ph)
            end = round(timeline.total_samples * min(1.0, (done + here) / total_ph))
            phonemes = [p for p in timeline.phonemes() if start <= p[0] < end]
        span = max(1, end - start)
        track = VisemeTrack(self.sample_rate)
        for sample, ipa in phonemes:
            track.add(round((sample - start) * n_samples / span), phoneme_to_viseme(ipa))
        track.add(n_samples, "sil")
        return track


# -- exposing the alignment output of a Piper ONNX model without the onnx package ------------------
# A Piper (VITS) graph computes per-phoneme frame counts in its single ``Ceil`` node. Marking that
# tensor as a graph output (what ``piper.patch_voice_with_alignment`` does with the onnx package)
# makes ONNX Runtime return it; times the hop length it gives samples per phoneme id. The model is
# protobuf: ModelProto.graph is field 7; GraphProto.node is 1, GraphProto.output is 12;
# NodeProto.output is 2, NodeProto.op_type is 4; ValueInfoProto.name is 1.


class AlreadyAligned(Exception):
    """The model already lists its alignment tensor as an output."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("malformed protobuf varint")


def _fields(buf: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int, int]]:
    """Yield ``(number, payload_start, payload_end, field_start, field_end)``."""
    pos = start
    while pos < end:
        begin = pos
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(buf, pos)
            yield number, pos, pos, begin, pos
        elif wire == 1:
            pos += 8
            yield number, pos, pos, begin, pos
        elif wire == 5:
            pos += 4
            yield number, pos, pos, begin, pos
        elif wire == 2:
            size, pos = _varint(buf, pos)
            yield number, pos, pos + size, begin, pos + size
            pos += size
        else:
            raise ValueError(f"unsupported protobuf wire type {wire}")
        if pos > end:
            raise ValueError("truncated protobuf message")


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _encode_varint(number << 3 | 2) + _encode_varint(len(payload)) + payload


def with_alignment_output(model: bytes) -> bytes:
    """The serialized model with its ``Ceil`` tensor added as a graph output."""
    view = memoryview(model)
    graph = [(s, e) for n, s, e, _, _ in _fields(model, 0, len(model)) if n == 7]
    if len(graph) != 1:
        raise ValueError("no ONNX graph found")
    g_start, g_end = graph[0]
    ceil: set[str] = set()
    outputs: set[str] = set()
    for number, start, end, _, _ in _fields(model, g_start, g_end):
        if number == 1:
            op_type, produced = "", []
            for n, s, e, _, _ in _fields(model, start, end):
                if n == 4:
                    op_type = bytes(view[s:e]).decode("utf-8", "replace")
                elif n == 2:
                    produced.append(bytes(view[s:e]).decode("utf-8", "replace"))
            if op_type == "Ceil":
                ceil.update(produced)
        elif number == 12:
            for n, s, e, _, _ in _fields(model, start, end):
                if n == 1:
                    outputs.add(bytes(view[s:e]).decode("utf-8", "replace"))
    if len(ceil) != 1:
        raise ValueError(f"expected one Ceil node (phoneme durations), found {len(ceil)}")
    name = next(iter(ceil))
    if name in outputs:
        raise AlreadyAligned(name)
    new_graph = bytes(view[g_start:g_end]) + _field(12, _field(1, name.encode()))
    parts = []
    for number, _, _, begin, end in _fields(model, 0, len(model)):
        parts.append(_field(7, new_graph) if number == 7 else bytes(view[begin:end]))
    return b"".join(parts)
