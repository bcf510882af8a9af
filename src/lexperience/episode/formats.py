"""Transcript files: WebVTT, SRT, JSON and plain text with ``[hh:mm:ss]`` stamps, in and out.

Readers return segments in file order (the :class:`Episode` sorts them) and raise
:class:`~lexperience.errors.InvalidInputError` naming the file, the line (or JSON item) and the
problem. What they normalise, on purpose:

* WebVTT: ``<v Speaker>`` voice tags give the speaker; a cue with several voices becomes one
  segment per voice, the cue's time shared out by characters; inline ``<00:01:02.500>`` timestamp
  tags give word timings; other tags (``<i>``, ``<c.x>``...) and NOTE/STYLE/REGION blocks are
  dropped; entities are decoded; cue settings are ignored.
* SRT and WebVTT cues without a voice tag, and plain text: a leading ``Name:`` (one to four
  capitalised words) is read as the speaker; pass ``speaker_labels=False`` to keep it as text.
* Plain text: each ``[12:31]`` or ``[1:02:03]`` stamp starts a segment that ends where the next
  one starts; the last one is given a length from its word count (2.5 words a second). Lines
  before the first stamp (a title) are skipped; a file without any stamp is refused.
* Cues with no text are dropped. Times may be out of order: the episode sorts them.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..errors import InvalidInputError
from ..transcript import Word
from .segments import Segment
from .timecode import format_timestamp, parse_timestamp

__all__ = ["Format", "detect_format", "read_segments", "write_srt", "write_vtt"]

Format = Literal["vtt", "srt", "json", "text"]

_TIME = r"(?:\d+:)?\d{1,2}:\d{2}[.,]\d{1,3}"
_TIMING = re.compile(rf"^\s*({_TIME})\s*-->\s*({_TIME})(?:\s+.*)?$")
_TAG = re.compile(r"<([^>]*)>")
_INLINE_TIME = re.compile(rf"^{_TIME}$")
_VOICE = re.compile(r"^v(?:\.\S+)?(?:\s+(.+))?$", re.S)
_LABEL = re.compile(r"^((?:[A-Z][\w.'\-]*)(?:\s+[A-Z][\w.'\-]*){0,3}):\s+(\S.*)$")
_STAMP = re.compile(r"^\s*\[(\d{1,2}(?::\d{1,2}){1,2}(?:[.,]\d+)?)\]\s*(.*)$")
_WORDS_PER_SECOND = 2.5


def detect_format(text: str, suffix: str = "") -> Format:
    """The transcript format from the file suffix, else from the content."""
    by_suffix: dict[str, Format] = {".vtt": "vtt", ".webvtt": "vtt", ".srt": "srt", ".json": "json"}
    if suffix.lower() in by_suffix:
        return by_suffix[suffix.lower()]
    head = text.lstrip("\ufeff").lstrip()
    if head.startswith("WEBVTT"):
        return "vtt"
    if head[:1] in "[{" and not _STAMP.match(head.splitlines()[0] if head else ""):
        return "json"
    if "-->" in head[:2000]:
        return "srt"
    return "text"


def read_segments(
    text: str, fmt: Format, *, name: str = "<text>", speaker_labels: bool = True
) -> tuple[list[Segment], dict[str, Any]]:
    """Parse a transcript; returns its segments and any metadata the file holds (JSON only)."""
    text = text.lstrip("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if fmt == "vtt":
        return _read_vtt(text, name, speaker_labels), {}
    if fmt == "srt":
        return _read_srt(text, name, speaker_labels), {}
    if fmt == "json":
        return _read_json(text, name)
    if fmt == "text":
        return _read_text(text, name, speaker_labels), {}
    raise InvalidInputError(f"unknown transcript format {fmt!r}: use vtt, srt, json or text")


# -- shared -------------------------------------------------------------------------------------
def _blocks(text: str) -> Iterator[tuple[int, list[str]]]:
    """Blocks of non-blank lines with the 1-based number of their first line."""
    block: list[str] = []
    first = 0
    for number, line in enumerate(text.split("\n"), 1):
        if line.strip():
            if not block:
                first = number
            block.append(line)
        elif block:
            yield first, block
            block = []
    if block:
        yield first, block


def _time(value: str, name: str, line: int) -> float:
    try:
        return parse_timestamp(value.replace(",", "."))
    except InvalidInputError:
        raise InvalidInputError(f"{name}, line {line}: {value!r} is not a time") from None


def _timing(line: str, name: str, number: int) -> tuple[float, float]:
    match = _TIMING.match(line)
    if match is None:
        raise InvalidInputError(
            f"{name}, line {number}: expected a cue timing like '00:01:02.500 --> 00:01:05.000', "
            f"got {line.strip()[:80]!r}"
        )
    start, end = _time(match.group(1), name, number), _time(match.group(2), name, number)
    if end < start:
        raise InvalidInputError(
            f"{name}, line {number}: the cue ends ({match.group(2)}) before it starts "
            f"({match.group(1)})"
        )
    return start, end


def _label(text: str, enabled: bool) -> tuple[str | None, str]:
    if enabled:
        match = _LABEL.match(text)
        if match and len(match.group(1)) <= 40:
            return match.group(1), match.group(2)
    return None, text


def _segment(
    start: float, end: float, text: str, speaker: str | None, words: Sequence[Word] = ()
) -> Segment | None:
    text = " ".join(text.split())
    if not text:
        return None
    return Segment(start=start, end=end, text=text, speaker=speaker, words=tuple(words))


# -- WebVTT -------------------------------------------------------------------------------------
@dataclass
class _Voice:
    speaker: str | None
    pieces: list[tuple[float | None, str]] = field(default_factory=list)  # (time tag, text)

    @property
    def text(self) -> str:
        return " ".join(" ".join(t for _, t in self.pieces).split())


def _read_vtt(text: str, name: str, speaker_labels: bool) -> list[Segment]:
    if not text.startswith("WEBVTT") or (len(text) > 6 and text[6] not in " \t\n"):
        raise InvalidInputError(f"{name} is not a WebVTT file: its first line must be 'WEBVTT'")
    segments: list[Segment] = []
    for index, (number, lines) in enumerate(_blocks(text)):
        if index == 0 or lines[0].startswith(("NOTE", "STYLE", "REGION")):
            continue  # the header block, comments, style sheets and regions
        timing_at = 0 if "-->" in lines[0] else 1
        if timing_at >= len(lines) or "-->" not in lines[timing_at]:
            raise InvalidInputError(
                f"{name}, line {number}: a cue must have a timing line 'start --> end' "
                f"(found {lines[0].strip()[:80]!r})"
            )
        start, end = _timing(lines[timing_at], name, number + timing_at)
        payload = "\n".join(lines[timing_at + 1 :])
        segments.extend(_vtt_cue(payload, start, end, name, number, speaker_labels))
    return segments


def _vtt_cue(
    payload: str, start: float, end: float, name: str, number: int, speaker_labels: bool
) -> list[Segment]:
    voices: list[_Voice] = [_Voice(None)]
    tagged = False
    timed = False
    current: float | None = None
    pos = 0
    for match in _TAG.finditer(payload):
        voices[-1].pieces.append((current, html.unescape(payload[pos : match.start()])))
        pos = match.end()
        tag = match.group(1).strip()
        voice_tag = _VOICE.match(tag)
        if voice_tag is not None:
            voices.append(_Voice(html.unescape(voice_tag.group(1) or "").strip() or None))
            tagged = True
        elif tag == "/v":
            voices.append(_Voice(None))
        elif _INLINE_TIME.match(tag):
            current = _time(tag, name, number)
            timed = True
    voices[-1].pieces.append((current, html.unescape(payload[pos:])))
    voices = [v for v in voices if v.text]
    if not voices:
        return []
    if not tagged and not timed and len(voices) == 1 and speaker_labels:
        speaker, rest = _label(voices[0].text, True)
        if speaker is not None:
            voices = [_Voice(speaker, [(None, rest)])]
    total = sum(len(v.text) for v in voices)
    out: list[Segment] = []
    done = 0  # characters of the cue before this voice
    for voice in voices:
        words = _vtt_words(voice, start, end) if timed else []
        if words:
            seg_start, seg_end = words[0].start, max(w.end for w in words)
        else:  # share the cue's time out by characters
            seg_start = start + (end - start) * done / total
            seg_end = start + (end - start) * (done + len(voice.text)) / total
        done += len(voice.text)
        seg = _segment(seg_start, min(seg_end, end), voice.text, voice.speaker, words)
        if seg is not None:
            out.append(seg)
    return out


def _vtt_words(voice: _Voice, start: float, end: float) -> list[Word]:
    """Words timed by inline timestamp tags: a word starts at the last tag before it and ends
    where the next word starts (the last one at the cue's end)."""
    raw: list[tuple[float, str]] = []
    for time, text in voice.pieces:
        for word in text.split():
            raw.append((start if time is None else max(start, min(time, end)), word))
    words = []
    for i, (t, w) in enumerate(raw):
        nxt = raw[i + 1][0] if i + 1 < len(raw) else end
        words.append(Word(text=w, start=t, end=max(t, nxt)))
    return words


# -- SRT ----------------------------------------------------------------------------------------
def _read_srt(text: str, name: str, speaker_labels: bool) -> list[Segment]:
    segments: list[Segment] = []
    for number, lines in _blocks(text):
        timing_at = 1 if lines[0].strip().isdigit() else 0
        if timing_at >= len(lines) or "-->" not in lines[timing_at]:
            raise InvalidInputError(
                f"{name}, line {number}: an SRT block must be a number, a timing line "
                f"'00:01:02,500 --> 00:01:05,000' and text (found {lines[0].strip()[:80]!r})"
            )
        start, end = _timing(lines[timing_at], name, number + timing_at)
        body = html.unescape(_TAG.sub("", " ".join(lines[timing_at + 1 :])))
        speaker, body = _label(" ".join(body.split()), speaker_labels)
        seg = _segment(start, end, body, speaker)
        if seg is not None:
            segments.append(seg)
    return segments


# -- JSON ---------------------------------------------------------------------------------------
def _read_json(text: str, name: str) -> tuple[list[Segment], dict[str, Any]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"{name} is not valid JSON: {exc}") from exc
    meta: dict[str, Any] = {}
    if isinstance(data, dict):
        if not isinstance(data.get("segments"), list):
            raise InvalidInputError(
                f"{name}: a JSON transcript is a list of segments, or an object with a "
                "'segments' list"
            )
        meta = {k: v for k, v in data.items() if k != "segments"}
        data = data["segments"]
    if not isinstance(data, list):
        raise InvalidInputError(f"{name}: a JSON transcript must be a list of segments")
    segments = []
    for i, item in enumerate(data):
        seg = _json_segment(item, f"{name}, segment {i}")
        if seg is not None:
            segments.append(seg)
    return segments, meta


def _json_time(item: dict[str, Any], key: str, where: str) -> float:
    value = item.get(key)
    if value is None:
        raise InvalidInputError(f"{where}: {key!r} is missing")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidInputError(f"{where}: {key!r} must be seconds or 'hh:mm:ss', got {value!r}")
    try:
        return parse_timestamp(value)
    except InvalidInputError as exc:
        raise InvalidInputError(f"{where}: {key!r}: {exc}") from None


def _json_segment(item: object, where: str) -> Segment | None:
    if not isinstance(item, dict):
        raise InvalidInputError(f"{where}: expected an object with start, end and text")
    start, end = _json_time(item, "start", where), _json_time(item, "end", where)
    if end < start:
        raise InvalidInputError(f"{where}: 'end' ({end:g}) is before 'start' ({start:g})")
    text = item.get("text")
    if not isinstance(text, str):
        raise InvalidInputError(f"{where}: 'text' must be a string")
    speaker = item.get("speaker")
    if speaker is not None and not isinstance(speaker, str):
        raise InvalidInputError(f"{where}: 'speaker' must be a string or absent")
    words = []
    for j, w in enumerate(item.get("words") or ()):
        if not isinstance(w, dict) or not isinstance(w.get("text", w.get("word")), str):
            raise InvalidInputError(f"{where}, word {j}: expected an object with text, start, end")
        ws, we = _json_time(w, "start", f"{where}, word {j}"), _json_time(w, "end", where)
        if we < ws:
            raise InvalidInputError(f"{where}, word {j}: it ends before it starts")
        words.append(Word(text=str(w.get("text", w.get("word"))), start=ws, end=we))
    extra = set(item) - {"start", "end", "text", "speaker", "words"}
    if extra:
        raise InvalidInputError(f"{where}: unknown field(s) {', '.join(sorted(extra))}")
    return _segment(start, end, text, speaker or None, words)


# -- plain text ---------------------------------------------------------------------------------
def _read_text(text: str, name: str, speaker_labels: bool) -> list[Segment]:
    starts: list[tuple[float, list[str], int]] = []
    for number, line in enumerate(text.split("\n"), 1):
        match = _STAMP.match(line)
        if match:
            starts.append((_time(match.group(1), name, number), [match.group(2)], number))
        elif starts and line.strip():
            starts[-1][1].append(line)
    if not starts:
        raise InvalidInputError(
            f"{name} has no [hh:mm:ss] time stamps: a plain-text transcript needs a stamp at the "
            "start of each segment, like '[12:31] Guest: ...'"
        )
    starts.sort(key=lambda s: s[0])
    segments = []
    for i, (start, lines, _) in enumerate(starts):
        speaker, body = _label(" ".join(" ".join(lines).split()), speaker_labels)
        if i + 1 < len(starts):
            end = starts[i + 1][0]
        else:
            end = start + max(1.0, len(body.split()) / _WORDS_PER_SECOND)
        seg = _segment(start, end, body, speaker)
        if seg is not None:
            segments.append(seg)
    return segments


# -- writers ------------------------------------------------------------------------------------
def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def write_vtt(segments: Sequence[Segment]) -> str:
    """WebVTT with one cue per segment and a ``<v Speaker>`` tag where the speaker is known."""
    out = ["WEBVTT", ""]
    for seg in segments:
        out.append(
            f"{format_timestamp(seg.start, precise=True)} --> "
            f"{format_timestamp(seg.end, precise=True)}"
        )
        voice = f"<v {_escape(seg.speaker)}>" if seg.speaker else ""
        out.extend([voice + _escape(seg.text), ""])
    return "\n".join(out)


def write_srt(segments: Sequence[Segment]) -> str:
    """SRT with ``Speaker: `` prefixes where the speaker is known."""
    out = []
    for i, seg in enumerate(segments, 1):
        times = [format_timestamp(t, precise=True).replace(".", ",") for t in (seg.start, seg.end)]
        label = f"{seg.speaker}: " if seg.speaker else ""
        out.extend([str(i), f"{times[0]} --> {times[1]}", label + seg.text, ""])
    return "\n".join(out)
