"""The podcast companion: an episode's timed transcript, searchable up to the listener's
position (no spoilers), and the context provider that gives it to the persona.

* :class:`Episode` - segments + metadata; ``load`` (WebVTT, SRT, JSON, ``[hh:mm:ss]`` text),
  ``transcribe`` (from audio, any STT), ``save``, ``search(question, before=..., k=5)``.
* :class:`EpisodeContext` - a :class:`~lexperience.ContextProvider` with a movable ``position``.
* :class:`Segment`, :class:`Passage` - the timed pieces; :func:`parse_timestamp` and
  :func:`format_timestamp` for ``"12:34"`` <-> ``754.0``.
"""

from .bm25 import BM25Index, terms, tokenize
from .companion import DEFAULT_BUDGET_TOKENS, DEFAULT_PASSAGE_TOKENS, EpisodeBrief, EpisodeContext
from .episode import Episode
from .formats import Format
from .index import Embedder, EpisodeIndex
from .segments import CUT_MARGIN_SECONDS, Passage, Segment
from .stemmer import stem
from .timecode import format_timestamp, parse_timestamp
from .transcribe import TranscriptionProgress

__all__ = [
    "CUT_MARGIN_SECONDS",
    "DEFAULT_BUDGET_TOKENS",
    "DEFAULT_PASSAGE_TOKENS",
    "BM25Index",
    "Embedder",
    "Episode",
    "EpisodeBrief",
    "EpisodeContext",
    "EpisodeIndex",
    "Format",
    "Passage",
    "Segment",
    "TranscriptionProgress",
    "format_timestamp",
    "parse_timestamp",
    "stem",
    "terms",
    "tokenize",
]
