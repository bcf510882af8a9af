"""Mouth shapes (visemes) and how phonemes and letters map to them.

The alphabet is the 15-shape set used by most lip-sync tools (Oculus/Meta's):
``sil PP FF TH DD kk CH SS nn RR aa E ih oh ou``. A TTS that knows phoneme timings (espeak-ng,
Piper) or character timings (ElevenLabs' alignment) turns them into :class:`VisemeCue` s; an avatar
turns cues into mouth shapes. :data:`VISEME_OPENNESS` gives each shape a jaw opening in [0, 1],
:data:`VISEME_WIDTH` its lip width and :data:`VISEME_TEETH` how much it shows the upper teeth on
the lower lip (f, v). How the portrait avatar blends them over time is in
:mod:`lexperience.render.articulation`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = [
    "VISEMES",
    "VISEME_OPENNESS",
    "VISEME_TEETH",
    "VISEME_WIDTH",
    "VisemeCue",
    "char_to_viseme",
    "cues_from_characters",
    "merge_cues",
    "phoneme_to_viseme",
]

VISEMES: tuple[str, ...] = (
    "sil", "PP", "FF", "TH", "DD", "kk", "CH", "SS", "nn", "RR", "aa", "E", "ih", "oh", "ou",
)  # fmt: skip

#: How far the jaw opens for each viseme, 0 (closed) to 1 (wide open).
VISEME_OPENNESS: dict[str, float] = {
    "sil": 0.0, "PP": 0.0, "FF": 0.15, "TH": 0.2, "DD": 0.2, "kk": 0.25, "CH": 0.2,
    "SS": 0.12, "nn": 0.15, "RR": 0.25, "aa": 1.0, "E": 0.7, "ih": 0.55, "oh": 0.8, "ou": 0.5,
}  # fmt: skip

#: How much of the upper teeth rest on the lower lip, 0 (none) to 1 (f, v: lower lip to teeth).
VISEME_TEETH: dict[str, float] = {
    "sil": 0.0, "PP": 0.0, "FF": 1.0, "TH": 0.3, "DD": 0.0, "kk": 0.0, "CH": 0.0,
    "SS": 0.3, "nn": 0.0, "RR": 0.0, "aa": 0.0, "E": 0.0, "ih": 0.0, "oh": 0.0, "ou": 0.0,
}  # fmt: skip

#: Relative mouth width for each viseme, 0.7 (rounded, narrow) to 1.15 (spread).
VISEME_WIDTH: dict[str, float] = {
    "sil": 1.0, "PP": 0.97, "FF": 1.0, "TH": 1.0, "DD": 1.0, "kk": 1.0, "CH": 0.85,
    "SS": 1.1, "nn": 1.0, "RR": 0.85, "aa": 1.05, "E": 1.15, "ih": 1.1, "oh": 0.8, "ou": 0.7,
}  # fmt: skip


@dataclass(frozen=True)
class VisemeCue:
    """One mouth shape held from ``start`` to ``end`` seconds (relative to its audio chunk)."""

    start: float
    end: float
    viseme: str

    def shifted(self, seconds: float) -> VisemeCue:
        return VisemeCue(self.start + seconds, self.end + seconds, self.viseme)


# IPA (as espeak-ng and Piper write it) to viseme. Longest symbols are matched first.
_IPA: dict[str, str] = {
    "p": "PP", "b": "PP", "m": "PP",
    "f": "FF", "v": "FF",
    "θ": "TH", "ð": "TH",
    "t": "DD", "d": "DD", "ɾ": "DD", "ʔ": "DD",
    "k": "kk", "ɡ": "kk", "g": "kk", "ŋ": "kk", "x": "kk", "h": "kk",
    "tʃ": "CH", "dʒ": "CH", "ʃ": "CH", "ʒ": "CH", "j": "CH",
    "s": "SS", "z": "SS",
    "n": "nn", "l": "nn", "ɫ": "nn", "n̩": "nn", "l̩": "nn",
    "r": "RR", "ɹ": "RR", "ɚ": "RR", "ɝ": "RR", "w": "ou",
    "a": "aa", "ɑ": "aa", "ɐ": "aa", "æ": "aa", "ʌ": "aa", "aɪ": "aa", "aʊ": "aa",
    "e": "E", "ɛ": "E", "eɪ": "E", "ə": "E",
    "i": "ih", "ɪ": "ih", "ɨ": "ih", "ᵻ": "ih",
    "o": "oh", "ɔ": "oh", "ɒ": "oh", "oʊ": "oh", "ɔɪ": "oh", "əʊ": "oh",
    "u": "ou", "ʊ": "ou", "y": "ou",
}  # fmt: skip
_IGNORED = set("ˈˌːˑ.‖|‿ ̃")


def phoneme_to_viseme(phoneme: str) -> str:
    """Map one IPA phoneme (stress and length marks allowed) to a viseme; unknown sounds -> ``sil``."""
    p = "".join(ch for ch in phoneme if ch not in _IGNORED)
    if not p:
        return "sil"
    if p in _IPA:
        return _IPA[p]
    for size in (2, 1):  # a diphthong or affricate first, then its first symbol
        if p[:size] in _IPA:
            return _IPA[p[:size]]
    return "sil"


_DIGRAPHS = {"th": "TH", "sh": "CH", "ch": "CH", "ph": "FF", "oo": "ou", "ee": "ih", "ng": "kk"}
_LETTERS: dict[str, str] = {
    "a": "aa", "b": "PP", "c": "kk", "d": "DD", "e": "E", "f": "FF", "g": "kk", "h": "kk",
    "i": "ih", "j": "CH", "k": "kk", "l": "nn", "m": "PP", "n": "nn", "o": "oh", "p": "PP",
    "q": "kk", "r": "RR", "s": "SS", "t": "DD", "u": "ou", "v": "FF", "w": "ou", "x": "SS",
    "y": "ih", "z": "SS",
}  # fmt: skip


def char_to_viseme(text: str) -> str:
    """Map a letter or digraph to a viseme (spelling is a rough guide to sound; good enough to
    animate a mouth from character timings); anything else -> ``sil``."""
    t = text.lower()
    return _DIGRAPHS.get(t) or _LETTERS.get(t[:1], "sil")


def cues_from_characters(
    characters: Sequence[str], starts: Sequence[float], ends: Sequence[float]
) -> list[VisemeCue]:
    """Turn character-level alignment (ElevenLabs' ``alignment``) into merged viseme cues."""
    cues: list[VisemeCue] = []
    i = 0
    n = len(characters)
    while i < n:
        pair = "".join(characters[i : i + 2])
        if i + 1 < n and pair.lower() in _DIGRAPHS:
            vis, j = _DIGRAPHS[pair.lower()], i + 2
        else:
            vis, j = char_to_viseme(characters[i]), i + 1
        start, end = float(starts[i]), float(ends[j - 1])
        if cues and cues[-1].viseme == vis and abs(cues[-1].end - start) < 1e-3:
            cues[-1] = VisemeCue(cues[-1].start, end, vis)
        else:
            cues.append(VisemeCue(start, end, vis))
        i = j
    return cues


def merge_cues(cues: Iterable[VisemeCue]) -> list[VisemeCue]:
    """Sort cues and join neighbours that repeat the same viseme."""
    out: list[VisemeCue] = []
    for cue in sorted(cues, key=lambda c: c.start):
        if out and out[-1].viseme == cue.viseme and cue.start - out[-1].end < 1e-3:
            out[-1] = VisemeCue(out[-1].start, max(out[-1].end, cue.end), cue.viseme)
        else:
            out.append(cue)
    return out
