"""What counts as words in a transcript: :func:`normalise`, :func:`has_words` and
:func:`is_backchannel` (used to tell a real interruption from noise or a "mhm", and to compare
a preemptive transcript with the final one)."""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["has_words", "is_backchannel", "normalise", "same_words"]

_ANNOTATION = re.compile(r"[\[\(\*][^\]\)\*]*[\]\)\*]")  # [BLANK_AUDIO], (coughs), *cough*
_WORD = re.compile(r"[a-z0-9]+(?:['-][a-z0-9]+)*")
# hums and hesitations STT writes in many spellings: mmm, hmm, mhm, uh-huh, mm-hmm, um, erm, ah
_FILLER = re.compile(r"^(?:m+|h+m+|m+h+m+|u+h+|u+m+|e+r+m*|a+h+|o+h+|e+h+|u+h+-?h+u+h+|m+-?h+m+)$")


def normalise(text: str) -> str:
    """Lower-case words without punctuation or annotations, single-spaced."""
    lowered = _ANNOTATION.sub(" ", text.lower().replace("’", "'"))
    return " ".join(_WORD.findall(lowered))


def same_words(a: str, b: str) -> bool:
    """Whether two transcripts say the same words (case, punctuation and spacing aside)."""
    return normalise(a) == normalise(b)


def has_words(text: str) -> bool:
    """Whether ``text`` holds any word that is not a hum or a hesitation."""
    return any(not _FILLER.match(w) for w in normalise(text).split())


def is_backchannel(text: str, backchannels: Iterable[str], *, max_words: int = 3) -> bool:
    """Whether ``text`` is empty, a hum, or only a few backchannel words ("mhm", "yeah, right")."""
    words = normalise(text).split()
    if not words:
        return True
    if len(words) > max_words:
        return False
    known = {normalise(b) for b in backchannels}
    joined = " ".join(words)
    if joined in known:
        return True
    return all(_FILLER.match(w) or w in known for w in words)
