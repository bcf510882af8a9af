"""Text helpers for streaming speech: an incremental sentence splitter and speech clean-up.

The splitter is what lets TTS start before the LLM finishes: it is fed the LLM's deltas and hands
out each sentence the moment its end is certain.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["SentenceSplitter", "clean_for_speech", "split_sentences"]

_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "sr",
        "jr",
        "st",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "a.m",
        "p.m",
        "u.s",
        "u.k",
        "approx",
        "dept",
        "est",
        "fig",
        "inc",
        "ltd",
        "co",
        "no",
        "vol",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "mt",
        "ft",
    ]
)
_CLOSERS = "\"'”’)]}»"
_TERMINATORS = ".!?…"
_CLAUSE = ",;:—–"


class SentenceSplitter:
    """Split streamed text into sentences as soon as each one is certainly complete.

    Args:
        min_chars: a sentence shorter than this is joined to the next one ("Oh. Hello there.")
            so TTS gets enough context for natural prosody.
        max_chars: a run of text with no sentence end is cut at the last clause mark or space
            once it reaches this length, so a run-on reply still streams.
        first_clause_words: when > 0, the *first* piece may end at a clause mark (comma,
            semicolon, colon, dash) once it has this many words, so the first audio starts sooner.

    Feed deltas with :meth:`push`, which returns the sentences completed so far; call
    :meth:`flush` at the end of the stream for the rest.
    """

    def __init__(
        self, *, min_chars: int = 6, max_chars: int = 240, first_clause_words: int = 6
    ) -> None:
        if min_chars < 0 or max_chars < 20:
            raise ValueError("min_chars must be >= 0 and max_chars >= 20")
        self.min_chars = min_chars
        self.max_chars = max_chars
        self.first_clause_words = first_clause_words
        self._buf = ""
        self._emitted = 0
        self._clause_cut = False

    def push(self, delta: str) -> list[str]:
        """Add ``delta`` and return every sentence it completed (possibly none)."""
        return [piece for piece, _ in self.push_pieces(delta)]

    def push_pieces(self, delta: str) -> list[tuple[str, bool]]:
        """:meth:`push`, with each piece's kind: ``(text, True)`` for a first clause cut at a
        clause mark (the start of a sentence, not a whole one), ``(text, False)`` otherwise."""
        self._buf += delta
        out: list[tuple[str, bool]] = []
        while True:
            self._clause_cut = False
            cut = self._find_cut()
            if cut is None:
                break
            piece, self._buf = self._buf[:cut].strip(), self._buf[cut:].lstrip()
            if piece:
                out.append((piece, self._clause_cut))
                self._emitted += 1
        return out

    def flush(self) -> list[str]:
        """Return whatever text is left (as at most one sentence) and reset."""
        rest, self._buf = self._buf.strip(), ""
        if rest:
            self._emitted += 1
            return [rest]
        return []

    @property
    def pending(self) -> str:
        """Text received but not yet handed out."""
        return self._buf

    # -- internals ----------------------------------------------------------------------------
    def _find_cut(self) -> int | None:
        buf = self._buf
        for m in re.finditer(r"[.!?…]+", buf):
            end = m.end()
            while end < len(buf) and buf[end] in _CLOSERS:
                end += 1
            if end >= len(buf) or not buf[end].isspace():
                continue  # "3.14", "e.g.x": or we cannot see what follows yet
            nxt = end
            while nxt < len(buf) and buf[nxt].isspace():
                nxt += 1
            newline = "\n" in buf[end:nxt]
            if nxt >= len(buf) and not newline:
                return None  # wait for the next character to rule out "Dr. smith"-like cases
            if not newline and nxt < len(buf) and buf[nxt].islower():
                continue  # "approx. five", "e.g. this"
            if m.group() == "." and self._is_abbreviation(buf[: m.start()]):
                continue
            if len(buf[:end].strip()) < self.min_chars and nxt < len(buf):
                continue  # too short to speak well on its own: join with the next sentence
            return end
        # a paragraph break ends a piece even without punctuation (lists, headings)
        para = buf.find("\n\n")
        if para > 0 and len(buf[:para].strip()) >= self.min_chars:
            return para + 2
        if self._emitted == 0 and self.first_clause_words > 0:
            for m in re.finditer(rf"[{_CLAUSE}]\s", buf):
                if len(buf[: m.start()].split()) >= self.first_clause_words:
                    self._clause_cut = True
                    return m.end()
        if len(buf) >= self.max_chars:
            head = buf[: self.max_chars]
            for pattern in (rf"[{_CLAUSE}]\s", r"\s"):
                spots = [m.end() for m in re.finditer(pattern, head)]
                if spots and spots[-1] > self.max_chars // 3:
                    return spots[-1]
            return self.max_chars
        return None

    @staticmethod
    def _is_abbreviation(before: str) -> bool:
        word = before.rsplit(None, 1)[-1] if before.strip() else ""
        word = word.lstrip("\"'(“‘").lower()
        if not word:
            return False
        if word in _ABBREVIATIONS:
            return True
        # single initials ("J. R. R. Tolkien") and dotted acronyms ("U.S")
        return (len(word) == 1 and word.isalpha()) or bool(re.fullmatch(r"(?:[a-z]\.)+[a-z]", word))


def split_sentences(text: str, **options: int) -> list[str]:
    """Split a whole text into sentences with the same rules as :class:`SentenceSplitter`."""
    splitter = SentenceSplitter(**{"first_clause_words": 0, **options})
    return splitter.push(text) + splitter.flush()


_MARKDOWN = re.compile(r"(\*\*|__|\*|`+|^#+\s*|^\s*[-*+]\s+|^\s*\d+\.\s+)", re.MULTILINE)
_LINK = re.compile(r"\[([^\]]+)\]\([^)]+\)")
_URL = re.compile(r"https?://\S+")


def clean_for_speech(text: str) -> str:
    """Strip what a voice should not read aloud: markdown marks, link targets, URLs, emoji."""
    text = _LINK.sub(r"\1", text)
    text = _URL.sub("a link", text)
    text = _MARKDOWN.sub("", text)
    text = "".join(ch for ch in text if unicodedata.category(ch) not in ("So", "Cs", "Co", "Cn"))
    return re.sub(r"\s+", " ", text).strip()
